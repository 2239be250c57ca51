package properties

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// Every invariant of the package checks its parameters before any run,
// with an error that says what was meant where it can guess.
func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		inv  Invariant
		want string // "" when valid
	}{
		{"error rate as a percentage", ErrorRate{Max: 5}, "Max = 5 is not a fraction in [0, 1]: did you mean 0.05?"},
		{"negative error rate", ErrorRate{Max: -0.1}, "Max = -0.1 is not a fraction in [0, 1]"},
		{"error rate of an unknown window", ErrorRate{Max: 0.1, Window: 7}, "Window = Phase(7) is not one of"},
		{"error rate of an empty kind", ErrorRate{Max: 0.1, Kinds: []string{"get", ""}}, "Kinds[1] is empty"},
		{"valid error rate", ErrorRate{Max: 0.05, Window: sim.During}, ""},
		{"quantile as a percentile", LatencyQuantile{Q: 99, Max: time.Second}, "Q = 99 is not in (0, 1]: did you mean 0.99?"},
		{"zero quantile", LatencyQuantile{Max: time.Second}, "Q = 0 is not in (0, 1]: 0.99 for p99"},
		{"negative latency bound", LatencyQuantile{Q: 0.99, Max: -time.Second}, "Max = -1s must be positive"},
		{"zero max latency", MaxLatency{}, "Max = 0s must be positive"},
		{"negative recovery", Recovery{Within: -time.Second}, "Within = -1s must not be negative"},
		{"negative grace", FailFast{Within: time.Second, Grace: -time.Second, After: -1}, "Grace = -1s must not be negative; After = -1 must not be negative"},
		{"valid fail fast", FailFast{Within: time.Second, After: 5}, ""},
		{"isolation without uses", Isolation{}, "Uses is empty"},
		{"isolation rate as a percentage", Isolation{Uses: map[string][]string{"a": {"db"}}, MaxErrorRate: 10}, "did you mean 0.1?"},
		{"amplification without bound", Amplification{Counter: "db.calls"}, "K and Rate are both 0"},
		{"amplification target outside During", Amplification{Counter: "db.calls", K: 3, Target: "db"}, `Target "db" needs Window: sim.During`},
		{"amplification rate only", Amplification{Counter: "db.calls", Rate: 10, Window: sim.During, Target: "db"}, ""},
		{"pool without name", PoolReleased{Max: -1}, "Pool is empty: name the pool sampler; Max = -1 must not be negative"},
		{"acquire wait without name", AcquireWait{Max: time.Second}, "Pool is empty"},
		{"storm with negative stretch", ReconnectStorm{Pool: "db", Max: 8, Per: -time.Second}, "Per = -1s must not be negative"},
		{"storm of an unknown window", ReconnectStorm{Pool: "db", Max: 8, Window: 5}, "Window = Phase(5)"},
		{"negative leak slack", NoGoroutineLeak{Slack: -1}, "Slack = -1 must not be negative"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.inv.(validator).validate()
			if c.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, c.want)
			require.ErrorContains(t, err, c.inv.Name(), "the error names the invariant")
			// Check reports the same mistake, whatever the history.
			require.Equal(t, err.Error(), c.inv.Check(hist(1000, nil)).Error())
		})
	}
}

// checkInvariant finds before any run what a World lacks: kinds, targets
// and samples an invariant names.
func TestCheckInvariant(t *testing.T) {
	kinds, targets, samplers := []string{"get", "put"}, []string{"db", "cache"}, []string{"db", "goroutines"}
	msgs := func(inv Invariant) []string {
		var out []string
		for _, err := range checkInvariant(inv, kinds, targets, samplers) {
			out = append(out, err.Error())
		}
		return out
	}
	require.Empty(t, msgs(ErrorRate{Max: 0.1, Kinds: []string{"get"}}))
	require.Empty(t, msgs(PoolReleased{Pool: "db"}), `sampler "db" records "db.in_use"`)
	require.Empty(t, msgs(Func("any", func(*sim.History) error { return nil })), "a Func has no hooks")
	got := msgs(MaxLatency{Max: time.Second, Kinds: []string{"scan"}})
	require.Len(t, got, 1)
	require.Contains(t, got[0], `op kind "scan" is not one of the World's [get put]`)
	got = msgs(Isolation{Uses: map[string][]string{"get": {"redis"}}})
	require.Len(t, got, 1)
	require.Contains(t, got[0], `target "redis" is not one of the World's [db cache]`)
	got = msgs(ReconnectStorm{Pool: "pg", Max: 8})
	require.Len(t, got, 1)
	require.Contains(t, got[0], `reads samples "pg.dials", but no sampler of the World records them`)
	got = msgs(ErrorRate{Max: 5, Kinds: []string{"scan"}})
	require.Len(t, got, 1, "bad parameters alone, not what follows from them")
	require.Contains(t, got[0], "did you mean 0.05?")
	require.Empty(t, checkInvariant(MaxLatency{Max: time.Second, Kinds: []string{"scan"}}, nil, nil, nil), "an unknown World is not checked")
	require.Len(t, checkInvariant(nil, kinds, targets, samplers), 1)
}

// breakerHistory is a blackhole of db from 1s to 3s under two workers
// with a 200 ms call timeout, and a breaker that opens once it has seen
// threshold failures end: until then each call waits for the timeout, then
// each fails at once (1 ms).
func breakerHistory(threshold int) *sim.History {
	faults := []sim.FaultEvent{fault(0, "db", toxics.Blackhole{}, 1000, 3000)}
	var ops []sim.Op
	next := []int{900, 950}
	for id := uint64(0); ; id++ {
		w := 0
		if next[1] < next[0] {
			w = 1
		}
		at := next[w]
		if at >= 3000 {
			break
		}
		seen := 0 // failures the breaker has seen by now
		for _, o := range ops {
			if o.Outcome != sim.OK && int(o.End/ms) <= at {
				seen++
			}
		}
		var o sim.Op
		switch {
		case at+10 < 1000:
			o = op(id, "get", at, at+10, sim.OK)
		case seen < threshold:
			o = op(id, "get", at, max(at, 1000)+200, sim.Unknown)
		default:
			o = op(id, "get", at, at+1, sim.Failed)
		}
		ops = append(ops, o)
		next[w] = int(o.End/ms) + 10
	}
	return hist(4000, faults, ops...)
}

func TestFailFastGrace(t *testing.T) {
	opens := breakerHistory(5)
	never := breakerHistory(1000)
	runCases(t, []invCase{
		{"without a grace, every breaker breaks", FailFast{Within: 50 * ms}, opens, Broken, []string{"after 200ms"}},
		{"a breaker that opens after 5 failures holds with After 5", FailFast{Within: 50 * ms, After: 5}, opens, Held, nil},
		{"and with a grace of 800ms", FailFast{Within: 50 * ms, Grace: 800 * ms}, opens, Held, nil},
		{"a breaker that never opens breaks with After 5", FailFast{Within: 50 * ms, After: 5}, never, Broken,
			[]string{"after the 5th failure of each", "unknown after 200ms"}},
		{"and with a grace of 800ms", FailFast{Within: 50 * ms, Grace: 800 * ms}, never, Broken, []string{"after a grace of 800ms"}},
		{"a breaker that opens after 20 is caught by After 5", FailFast{Within: 50 * ms, After: 5}, breakerHistory(20), Broken, nil},
		{"fewer failures than After: no evidence", FailFast{Within: 50 * ms, After: 50}, never, Unjudged, []string{"all before the grace ended"}},
	})
}

// calls samples a counter every 100 ms up to end, from a function giving
// the calls made by each moment.
func calls(name string, end int, made func(at int) int) []sim.Sample {
	var out []sim.Sample
	for at := 0; at <= end; at += 100 {
		out = append(out, sim.Sample{At: time.Duration(at) * ms, Name: name, Value: float64(made(at))})
	}
	return out
}

// stormHistory: 10 s, one op every 100 ms, one call each, except during
// an outage of db from 1000 to 1800 ms, when each op makes `during` calls.
func stormHistory(during int) *sim.History {
	var ops []sim.Op
	for i := range 100 {
		out := sim.OK
		if i >= 10 && i < 18 {
			out = sim.Failed
		}
		ops = append(ops, op(uint64(i), "get", i*100, i*100+5, out))
	}
	h := hist(10000, []sim.FaultEvent{fault(0, "db", toxics.Down{}, 1000, 1800)}, ops...)
	h.Samples = calls("db.calls", 10000, func(at int) int {
		n := 0
		for _, o := range ops {
			if int(o.Start/ms) < at {
				if o.Outcome == sim.Failed {
					n += during
				} else {
					n++
				}
			}
		}
		return n
	})
	return h
}

func TestAmplificationPerWindow(t *testing.T) {
	storm, calm := stormHistory(11), stormHistory(1)
	runCases(t, []invCase{
		{"the whole run dilutes the storm", Amplification{Counter: "db.calls", K: 3}, storm, Held, nil},
		{"each fault on its own does not", Amplification{Counter: "db.calls", K: 3, Window: sim.During}, storm, Broken,
			[]string{"during fault 0: db down() (1s..1.8s)", "88 calls for 9 ops"}},
		{"as a rate while db is down", Amplification{Counter: "db.calls", Rate: 10, Window: sim.During, Target: "db"}, storm, Broken,
			[]string{"88 calls in 800ms (110/s)", "want <= 10/s"}},
		{"a client that does not retry holds the factor", Amplification{Counter: "db.calls", K: 3, Window: sim.During}, calm, Held, nil},
		{"and the rate", Amplification{Counter: "db.calls", Rate: 10, Window: sim.During, Target: "db"}, calm, Held, nil},
		{"faults of another target are not judged", Amplification{Counter: "db.calls", Rate: 10, Window: sim.During, Target: "cache"}, storm, Unjudged, nil},
		{"after the heal", Amplification{Counter: "db.calls", K: 1, Window: sim.After}, storm, Held, nil},
	})
}

// A client that opens 15 connections during a slow-upstream fault, against
// a pool bound of 8, and one that keeps its 8.
func TestReconnectStormPerWindow(t *testing.T) {
	base := func(during int) *sim.History {
		h := hist(8000, []sim.FaultEvent{fault(0, "db", toxics.Latency{Delay: time.Second}, 2000, 5000)},
			op(1, "get", 0, 10, sim.OK), op(2, "get", 7000, 7010, sim.OK))
		h.Samples = calls("db.dials", 8000, func(at int) int {
			switch {
			case at < 200:
				return at / 25 // the pool fills: 8 dials by 200 ms
			case at <= 2000:
				return 8
			case at < 5000:
				return 8 + during*(at-2000)/3000
			}
			return 8 + during
		})
		return h
	}
	leaky, bounded := base(15), base(0)
	runCases(t, []invCase{
		{"15 dials during the slow fault", ReconnectStorm{Pool: "db", Max: 8, Window: sim.During}, leaky, Broken,
			[]string{"during fault 0: db latency(1s) (2s..5s): between 2s and 5s", "got 15 dials"}},
		{"spread thin, no second has a burst", ReconnectStorm{Pool: "db", Max: 8, Per: time.Second}, leaky, Held, nil},
		{"a bounded pool dials nothing more", ReconnectStorm{Pool: "db", Max: 8, Window: sim.During}, bounded, Held, nil},
		{"its first 8 dials are within the bound", ReconnectStorm{Pool: "db", Max: 8}, bounded, Held, nil},
	})
	var vs Violations
	require.True(t, errors.As(ReconnectStorm{Pool: "db", Max: 8}.Check(leaky), &vs))
}
