package properties_test

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/harness"
	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// redisLoad increments counters through rdb. A read timeout of 0 leaves
// go-redis waiting on a silent server until the op's 1s deadline, which
// the run sets as a backstop; the fixed client gives up after 100ms.
func redisLoad(rdb *redis.Client) sim.Workload {
	return sim.Workload{
		Driver:  sim.ClosedLoop{Workers: 1, Think: 50 * time.Millisecond},
		Timeout: time.Second,
		Kinds: []sim.OpKind{{Name: "incr", Do: func(ctx context.Context, _ string) (string, error) {
			n, err := rdb.Incr(ctx, "visits").Result()
			return strconv.FormatInt(n, 10), err
		}}},
	}
}

func redisOptions(o *redis.Options, readTimeout time.Duration) *redis.Options {
	o.MaxRetries = -1
	o.ContextTimeoutEnabled = true
	o.ReadTimeout, o.WriteTimeout = readTimeout, readTimeout
	if readTimeout == 0 {
		o.ReadTimeout, o.WriteTimeout = -1, -1 // no deadline of its own: the context's only
	}
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return o
}

func redisConfig(target string) properties.Config {
	return properties.Config{
		Settings: sim.Settings{
			Cooldown: 300 * time.Millisecond,
			Drain:    2 * time.Second,
		},
		Bounds: properties.Bounds{
			Targets:  []properties.TargetKinds{{Name: target, Kinds: []toxics.Kind{toxics.KindLatency, toxics.KindBlackhole}}},
			MaxSteps: 1, Horizon: time.Second, Fault: properties.DurationRange{Min: 100 * time.Millisecond, Max: 500 * time.Millisecond},
			Values: properties.Values{Delay: properties.DurationRange{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond}},
		},
		Invariants:  []properties.Invariant{properties.MaxLatency{Max: 300 * time.Millisecond}},
		Exploration: properties.Exploration{Iterations: 20},
	}
}

// TestReplayOnRealRedis is TestReplayOnTheRealLink with a real Redis
// behind the harness, gated like harness's own tests (Docker with the
// image SHAKEDOWN_REDIS_IMAGE names, as make test sets it, or a local
// redis-server with SHAKEDOWN_BACKEND=process; skipped with neither): a
// go-redis client with no timeout of its own fails against a
// FakeKV in simulation, and the shrunk schedule fails against the real
// server too; the client with a read timeout holds against it.
func TestReplayOnRealRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Redis and replays schedules on the wall clock")
	}
	simulated := redisConfig("cache:6379")
	simulated.Simulate = true
	simulated.World = func(t testing.TB) sim.World {
		n := sim.NewNetwork(1)
		kv, err := n.FakeKV("cache:6379")
		require.NoError(t, err)
		rdb := redis.NewClient(redisOptions(&redis.Options{Addr: "cache:6379", Dialer: n.Dial}, 0))
		t.Cleanup(func() { rdb.Close(); n.Close() })
		return sim.World{Targets: []sim.Target{kv}, Workload: redisLoad(rdb)}
	}
	res, err := properties.Explore(t, simulated)
	require.NoError(t, err)
	require.NotNil(t, res.Failure, "a client without a timeout must fail in simulation: %s", res.Coverage)
	path := filepath.Join(t.TempDir(), "schedule.json")
	_, err = properties.SaveSchedule(path, t.Name(), res.Failure)
	require.NoError(t, err)
	t.Logf("found in simulation:\n%s\n%s", res.Failure.Schedule, res.Failure.Findings)

	env := harness.New(t)
	cache := env.Redis("cache")
	real := func(readTimeout time.Duration) properties.Config {
		rdb := redis.NewClient(redisOptions(cache.Options(), readTimeout))
		t.Cleanup(func() { rdb.Close() })
		c := redisConfig("cache")
		c.World = properties.Shared(sim.World{Targets: []sim.Target{cache}, Workload: redisLoad(rdb)})
		c.Reset = env.Reset
		return c
	}
	it, err := properties.ReplayOn(t, real(0), path, nil)
	require.NoError(t, err)
	require.True(t, it.Findings.Broken(), "the failure found in simulation must be real:\n%s", it.Findings)
	t.Logf("real too:\n%s", it.Findings)

	it, err = properties.ReplayOn(t, real(100*time.Millisecond), path, nil)
	require.NoError(t, err)
	require.False(t, it.Findings.Broken(), "with a read timeout the client holds for real:\n%s", it.Findings)
}
