// Package pgxcheck adapts pgx's connection pool to shakedown's invariants:
// [Pool] samples a *pgxpool.Pool under the pool vocabulary that
// properties.PoolReleased, properties.AcquireWait and
// properties.ReconnectStorm read.
//
//	pool, err := pgxpool.NewWithConfig(ctx, db.PoolConfig())
//	...
//	return sim.World{
//		Targets:  []sim.Target{db},
//		Workload: load(pool),
//		Samplers: []sim.Sampler{pgxcheck.Pool("db", pool)},
//	}
//
// It lives in a package of its own so that a check of another client never
// compiles pgx.
package pgxcheck

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shakedown/shakedown/sim"
)

// Pool samples a pgxpool.Pool through Pool.Stat, as
//
//	<name>.in_use        connections acquired now
//	<name>.idle          idle connections now
//	<name>.open          open connections now
//	<name>.wait_count    acquires that found the pool empty (cumulative)
//	<name>.wait_seconds  time those acquires waited (cumulative)
//	<name>.dials         connections opened (cumulative)
//	<name>.canceled      acquires cancelled while waiting (cumulative)
//
// In use counts what pgxpool counts as acquired, which includes
// connections being closed: pgx closes a connection whose query was cut
// short in the background, sending a cancel request and waiting up to 15s
// for the server, and the connection keeps its pool slot until then. Cut
// short during a blackhole, it holds the slot the full 15s.
func Pool(name string, pool *pgxpool.Pool) sim.Sampler {
	return sim.SamplerFunc(name, func(context.Context) (map[string]float64, error) {
		if pool == nil {
			return nil, fmt.Errorf("pgxcheck: Pool %q: pool is nil", name)
		}
		s := pool.Stat()
		return map[string]float64{
			"in_use":       float64(s.AcquiredConns()),
			"idle":         float64(s.IdleConns()),
			"open":         float64(s.TotalConns()),
			"wait_count":   float64(s.EmptyAcquireCount()),
			"wait_seconds": s.EmptyAcquireWaitTime().Seconds(),
			"dials":        float64(s.NewConnsCount()),
			"canceled":     float64(s.CanceledAcquireCount()),
		}, nil
	})
}
