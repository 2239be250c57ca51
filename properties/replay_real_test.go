package properties_test

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/harness"
	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// echoLoad is a client of the echo server: one worker, one exchange per
// op on a connection of its own. timeout is the client's own bound on an
// op (0: none; the run's end still stops it).
func echoLoad(dial dialFunc, addr string, timeout time.Duration) sim.Workload {
	return sim.Workload{
		Driver:  sim.ClosedLoop{Workers: 1, Think: 50 * time.Millisecond},
		Timeout: timeout,
		Kinds: []sim.OpKind{{Name: "echo", Do: func(ctx context.Context, _ string) (string, error) {
			c, err := dial(ctx, "tcp", addr)
			if err != nil {
				return "", err
			}
			defer c.Close()
			stop := context.AfterFunc(ctx, func() { c.Close() })
			defer stop()
			return "", exchange(ctx, c, bytes.Repeat([]byte("x"), diffPayload), false)
		}}},
	}
}

// echoConfig is the check of both worlds: at most one fault on the echo
// server within 1s, and no op may take longer than 300ms.
func echoConfig(target string) properties.Config {
	return properties.Config{
		Settings: sim.Settings{
			Cooldown: 200 * time.Millisecond,
			Drain:    500 * time.Millisecond,
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

// simulatedEcho is the simulated world: the echo handler as a FakeTCP
// named "echo:7", as a client dials it.
func simulatedEcho(timeout time.Duration) func(t testing.TB) sim.World {
	return func(t testing.TB) sim.World {
		n := sim.NewNetwork(1)
		t.Cleanup(func() { n.Close() })
		fake, err := n.FakeTCP("echo:7", echo)
		require.NoError(t, err)
		return sim.World{Targets: []sim.Target{fake}, Workload: echoLoad(n.Dial, "echo:7", timeout)}
	}
}

// TestReplayOnTheRealLink takes a schedule found failing in simulation (a
// client without a timeout meets a blackhole), saves it as Check does, and
// replays it with one call against a real harness.Link in front of the
// same echo server on 127.0.0.1: it fails there too. The client with a
// timeout holds against the same schedule, in both worlds.
func TestReplayOnTheRealLink(t *testing.T) {
	if testing.Short() {
		t.Skip("replays schedules on the wall clock for a few seconds")
	}
	cfg := echoConfig("echo:7")
	cfg.World, cfg.Simulate = simulatedEcho(0), true
	res, err := properties.Explore(t, cfg)
	require.NoError(t, err)
	require.NotNil(t, res.Failure, "a client without a timeout must fail in simulation: %s", res.Coverage)
	require.Equal(t, toxics.KindBlackhole, res.Failure.Schedule.Steps[0].Fault.Kind())
	path := filepath.Join(t.TempDir(), "schedule.json")
	_, err = properties.SaveSchedule(path, t.Name(), res.Failure)
	require.NoError(t, err)
	t.Logf("found in simulation:\n%s\n%s", res.Failure.Schedule, res.Failure.Findings)

	addr := echoServer(t)
	link := harness.NewLink(t, "echo", addr)
	dialer := &net.Dialer{}
	real := func(timeout time.Duration) properties.Config {
		c := echoConfig("echo")
		c.World = properties.Shared(sim.World{Targets: []sim.Target{link}, Workload: echoLoad(dialer.DialContext, link.Addr(), timeout)})
		return c
	}

	it, err := properties.ReplayOn(t, real(0), path, nil) // "echo:7" finds the Link "echo"
	require.NoError(t, err)
	require.True(t, it.Findings.Broken(), "the failure found in simulation must be real:\n%s", it.Findings)
	require.Len(t, it.History.Faults, 1)
	require.True(t, it.History.Faults[0].Applied())
	require.Equal(t, "echo", it.History.Faults[0].Target)
	t.Logf("real too:\n%s", it.Findings)

	fixed := 200 * time.Millisecond
	it, err = properties.ReplayOn(t, real(fixed), path, nil)
	require.NoError(t, err)
	require.False(t, it.Findings.Broken(), "with a timeout the client holds for real:\n%s", it.Findings)
	cfg.World = simulatedEcho(fixed)
	s, seed, _, err := properties.LoadSchedule(path)
	require.NoError(t, err)
	it, err = properties.RunSchedule(t, cfg, s, seed)
	require.NoError(t, err)
	require.False(t, it.Findings.Broken(), "and in simulation:\n%s", it.Findings)
}

func TestRetarget(t *testing.T) {
	db := newDep("db", toxics.KindDown, toxics.KindLatency)
	cache := newDep("cache", toxics.KindDown)
	targets := []sim.Target{db, cache}
	s := sim.Schedule{Steps: []sim.Step{
		{At: 0, For: time.Second, Target: "db:5432", Fault: toxics.Down{}},
		{At: 0, For: time.Second, Target: "redis", Fault: toxics.Down{}},
	}}
	got, err := properties.Retarget(s, targets, map[string]string{"redis": "cache"})
	require.NoError(t, err)
	require.Equal(t, "db", got.Steps[0].Target, "the host part of an address finds its target")
	require.Equal(t, "cache", got.Steps[1].Target, "names rename")
	require.Equal(t, "db:5432", s.Steps[0].Target, "the schedule passed in is left alone")

	_, err = properties.Retarget(s, targets, nil)
	require.ErrorContains(t, err, `step 1 (+0s for 1s redis down()): no target named "redis" among [cache db]`)

	s.Steps[1].Fault = toxics.Latency{Delay: time.Millisecond}
	_, err = properties.Retarget(s, targets, map[string]string{"redis": "cache"})
	require.ErrorContains(t, err, "latency")
}
