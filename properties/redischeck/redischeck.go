// Package redischeck adapts go-redis to shakedown's invariants: [Pool]
// samples a client's connection pool under the pool vocabulary that
// properties.PoolReleased, properties.AcquireWait and
// properties.ReconnectStorm read.
//
//	rdb := redis.NewClient(cache.Options())
//	t.Cleanup(func() { _ = rdb.Close() })
//	return sim.World{
//		Targets:  []sim.Target{cache},
//		Workload: load(rdb),
//		Samplers: []sim.Sampler{redischeck.Pool("cache", rdb)},
//	}
//
// It lives in a package of its own so that a check of another client never
// compiles go-redis.
package redischeck

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shakedown/shakedown/sim"
)

// Pool samples a go-redis client's pool (a *redis.Client, ClusterClient or
// Ring) through PoolStats, as
//
//	<name>.in_use        connections checked out now (total minus idle)
//	<name>.idle          idle connections now
//	<name>.open          open connections now
//	<name>.wait_count    gets that had to wait for a connection (cumulative)
//	<name>.wait_seconds  time those gets waited (cumulative)
//	<name>.dials         pool misses, each of which opens a connection (cumulative)
//	<name>.timeouts      gets that timed out waiting (cumulative)
func Pool(name string, client interface{ PoolStats() *redis.PoolStats }) sim.Sampler {
	return sim.SamplerFunc(name, func(context.Context) (map[string]float64, error) {
		if client == nil {
			return nil, fmt.Errorf("redischeck: Pool %q: client is nil", name)
		}
		s := client.PoolStats()
		if s == nil {
			return nil, fmt.Errorf("redischeck: Pool %q: PoolStats returned nil", name)
		}
		inUse := float64(s.TotalConns) - float64(s.IdleConns)
		return map[string]float64{
			"in_use":       max(inUse, 0),
			"idle":         float64(s.IdleConns),
			"open":         float64(s.TotalConns),
			"wait_count":   float64(s.WaitCount),
			"wait_seconds": time.Duration(s.WaitDurationNs).Seconds(),
			"dials":        float64(s.Misses),
			"timeouts":     float64(s.Timeouts),
		}, nil
	})
}
