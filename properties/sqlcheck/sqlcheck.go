// Package sqlcheck adapts database/sql to shakedown's invariants: [Pool]
// samples a *sql.DB under the pool vocabulary that
// properties.PoolReleased and properties.AcquireWait read.
//
//	db := sql.OpenDB(dials.Connector(connector)) // sim.Dials counts the connections opened
//	t.Cleanup(func() { _ = db.Close() })
//	return sim.World{
//		Targets:  []sim.Target{dep},
//		Workload: load(db),
//		Samplers: []sim.Sampler{sqlcheck.Pool("db", db), dials.Sampler("db")},
//	}
package sqlcheck

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/shakedown/shakedown/sim"
)

// Pool samples a database/sql pool through DB.Stats, as
//
//	<name>.in_use        connections in use now
//	<name>.idle          idle connections now
//	<name>.open          open connections now
//	<name>.wait_count    acquires that had to wait (cumulative)
//	<name>.wait_seconds  time those acquires waited (cumulative)
//
// database/sql does not count dials: open the DB through a sim.Dials
// connector and sample the Dials too for that.
func Pool(name string, db *sql.DB) sim.Sampler {
	return sim.SamplerFunc(name, func(context.Context) (map[string]float64, error) {
		if db == nil {
			return nil, fmt.Errorf("sqlcheck: Pool %q: db is nil", name)
		}
		s := db.Stats()
		return map[string]float64{
			"in_use":       float64(s.InUse),
			"idle":         float64(s.Idle),
			"open":         float64(s.OpenConnections),
			"wait_count":   float64(s.WaitCount),
			"wait_seconds": s.WaitDuration.Seconds(),
		}, nil
	})
}
