package properties_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/properties/redischeck"
	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// cacheWorld is a simulated world: a fake Redis ("cache") on a sim
// Network and a go-redis client with timeouts and a pool bound, driven by
// puts and gets on three keys.
func cacheWorld(t testing.TB) sim.World {
	n := sim.NewNetwork(1)
	t.Cleanup(func() { n.Close() })
	kv, err := n.FakeKV("cache")
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{
		Addr: "cache:6379", Dialer: n.Dial,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		DialTimeout:              100 * time.Millisecond, ReadTimeout: 100 * time.Millisecond, WriteTimeout: 100 * time.Millisecond,
		// More connections than ops in flight: go-redis keeps the timers
		// of pool waits in a process-wide sync.Pool, and a timer made in
		// one synctest bubble cannot be used in another, so no op may
		// wait for a connection.
		PoolSize: 8, PoolTimeout: 100 * time.Millisecond, MaxRetries: -1,
		// One dial attempt per connection: go-redis sleeps between dial
		// attempts on timers of its own, and the ops whose retries fall
		// on the same instant would then reach the fake in an order the
		// scheduler picks (sim orders its own events, not the client's
		// timers), which the determinism self-check reports.
		DialerRetries: 1,
	})
	t.Cleanup(func() { rdb.Close() })
	key := func(r *rand.Rand) string { return fmt.Sprintf("k%d", r.IntN(3)) }
	return sim.World{
		Targets: []sim.Target{kv},
		Workload: sim.Workload{
			Driver:  sim.ClosedLoop{Workers: 4, Think: 20 * time.Millisecond},
			Timeout: 300 * time.Millisecond,
			Kinds: []sim.OpKind{
				{Name: "put", Input: func(r *rand.Rand) string { return fmt.Sprintf("%s=%d", key(r), r.IntN(1000)) },
					Do: func(ctx context.Context, in string) (string, error) {
						k, v, _ := cut(in)
						return "", rdb.Set(ctx, k, v, 0).Err()
					}},
				{Name: "get", Input: key, Do: func(ctx context.Context, k string) (string, error) {
					v, err := rdb.Get(ctx, k).Result()
					if errors.Is(err, redis.Nil) {
						return "", nil
					}
					return v, err
				}},
			},
		},
		Samplers: []sim.Sampler{redischeck.Pool("cache", rdb)},
	}
}

func cut(s string) (string, string, bool) {
	for i := range len(s) {
		if s[i] == '=' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func cacheConfig(kinds ...toxics.Kind) properties.Config {
	return properties.Config{
		Settings: sim.Settings{
			Cooldown: 2 * time.Second,
		},
		World:    cacheWorld,
		Simulate: true,
		Bounds: properties.Bounds{Targets: []properties.TargetKinds{{Name: "cache", Kinds: kinds}},
			MaxSteps: 2, Horizon: 4 * time.Second},
		Invariants: []properties.Invariant{
			properties.Linearizable{},
			properties.MaxLatency{Max: 350 * time.Millisecond},
			properties.Recovery{Within: time.Second},
			properties.PoolReleased{Pool: "cache"},
		},
	}
}

// A client with timeouts and a pool bound keeps its latency bound,
// recovers, releases its pool and stays linearizable through link faults
// and restarts of the fake Redis.
func TestCheckSimulatedRedis(t *testing.T) {
	cfg := cacheConfig(toxics.KindLatency, toxics.KindBlackhole, toxics.KindReset, toxics.KindDown, toxics.KindRestart, toxics.KindStop)
	cfg.Iterations = 15
	cfg.Parallel = 2      // its World shares nothing: runs side by side
	cfg.Dir = t.TempDir() // no corpus or summary of an earlier run
	properties.Check(t, cfg)
}

// A crash of a Redis without persistence loses acknowledged writes: the
// history stops being linearizable, and the failure shrinks to one crash.
func TestExploreSimulatedRedisCrashLosesWrites(t *testing.T) {
	cfg := cacheConfig(toxics.KindCrash)
	cfg.Invariants = []properties.Invariant{properties.Linearizable{}}
	res, err := properties.Explore(t, cfg)
	require.NoError(t, err)
	require.NotNil(t, res.Failure)
	require.Len(t, res.Failure.Schedule.Steps, 1, "shrunk to:\n%s", res.Failure.Schedule)
	require.Equal(t, toxics.KindCrash, res.Failure.Schedule.Steps[0].Fault.Kind())
	require.ErrorContains(t, res.Failure.Findings[0].Err, "no remaining op can follow")
	t.Logf("shrunk to %s in %v (%d runs, %d cached)\n%v", res.Failure.Schedule, res.Shrinking, res.Runs, res.CacheHits, res.Failure.Findings[0].Err)
}
