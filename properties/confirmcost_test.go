package properties_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shakedown/shakedown/harness"
	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// TestConfirmCostChild is the quickstart's check (examples/quickstart)
// with a client that has no read timeout, so that it hangs in a blackhole
// until the run abandons it: a real failure, as scripts/checkcost.sh
// measures what confirming it costs. It runs only with
// SHAKEDOWN_TEST_CHILD=real-hang (the script sets it), and fails then:
// the failure is the point. SHAKEDOWN_TEST_EARLY=0 confirms with whole
// runs, for the figure before the early end.
func TestConfirmCostChild(t *testing.T) {
	if os.Getenv("SHAKEDOWN_TEST_CHILD") != "real-hang" {
		t.Skip("run by scripts/checkcost.sh")
	}
	if os.Getenv("SHAKEDOWN_TEST_EARLY") == "0" {
		properties.SetEndEarly(t, false)
	}
	env := harness.New(t)
	cache := env.Redis("cache")
	properties.Check(t, properties.Config{
		Reset: env.Reset,
		Bounds: properties.Bounds{
			Targets: []properties.TargetKinds{{Name: "cache", Kinds: []toxics.Kind{
				toxics.KindLatency, toxics.KindBlackhole, toxics.KindReset, toxics.KindDown, toxics.KindCrash,
			}}},
			MaxSteps: 2,
			Horizon:  3 * time.Second,
		},
		// Up to 10 schedules: the search ends at the first failure.
		Exploration: properties.Exploration{Iterations: 10, Dir: os.Getenv("SHAKEDOWN_TEST_DIR")},
		Settings:    sim.Settings{Cooldown: 2 * time.Second},
		World: func(t testing.TB) sim.World {
			opts := cache.Options()
			opts.DialTimeout = 200 * time.Millisecond
			opts.ReadTimeout = -1 // none: a lost reply is waited for forever
			opts.WriteTimeout = 200 * time.Millisecond
			opts.PoolTimeout = 200 * time.Millisecond
			opts.MaxRetries = -1
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
			properties.MaxLatency{Max: time.Second},
			properties.Recovery{Within: time.Second},
		},
	})
}
