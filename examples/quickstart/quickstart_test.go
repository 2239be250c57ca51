package quickstart

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shakedown/shakedown/harness"
	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

func TestCacheSurvivesFaults(t *testing.T) {
	env := harness.New(t)       // one Env per test, torn down by t.Cleanup
	cache := env.Redis("cache") // a real Redis, behind a fault-injecting Link

	properties.Check(t, properties.Config{
		Reset: env.Reset, // every fault healed before each run
		Bounds: properties.Bounds{
			// Which faults the schedules may hold on which target.
			Targets: []properties.TargetKinds{{Name: "cache", Kinds: []toxics.Kind{
				toxics.KindLatency, toxics.KindBlackhole, toxics.KindReset, toxics.KindDown, toxics.KindCrash,
			}}},
			MaxSteps: 2,
			Horizon:  3 * time.Second,
		},
		Exploration: properties.Exploration{Iterations: 3},
		Settings:    sim.Settings{Cooldown: 2 * time.Second},
		// The client under test is built afresh for every run, so a run
		// that wedged it cannot spoil the next one.
		World: func(t testing.TB) sim.World {
			opts := cache.Options()
			opts.DialTimeout = 200 * time.Millisecond
			opts.ReadTimeout = 200 * time.Millisecond
			opts.WriteTimeout = 200 * time.Millisecond
			opts.PoolTimeout = 200 * time.Millisecond
			opts.MaxRetries = -1 // fail fast; the workload counts failures
			rdb := redis.NewClient(opts)
			t.Cleanup(func() { _ = rdb.Close() })
			return sim.World{
				Targets: []sim.Target{cache},
				Workload: sim.Workload{
					Driver: sim.OpenLoop{Rate: 50},
					Kinds: []sim.OpKind{{
						Name:  "set",
						Input: func(r *rand.Rand) string { return fmt.Sprint("k", r.IntN(10)) },
						Do: func(ctx context.Context, key string) (string, error) {
							return "", rdb.Set(ctx, key, "v", 0).Err()
						},
					}},
				},
			}
		},
		Invariants: []properties.Invariant{
			// No call waits much longer than the client's own timeouts
			// (a dial, a write and a read, plus a margin).
			properties.MaxLatency{Max: time.Second},
			// Once the last fault heals, the client works again within 1 s.
			properties.Recovery{Within: time.Second},
		},
	})
}
