package properties_test

import (
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/sim"
)

// TestEarlyEndKeepsTheVerdict: confirming runs that end as soon as the
// invariant that broke is broken for good give the same failure, the same
// "reproduced k of n", the same shrunk schedule and the same runs as whole
// confirming runs, on the simulated fakes.
func TestEarlyEndKeepsTheVerdict(t *testing.T) {
	for _, c := range []struct {
		name  string
		cfg   func() properties.Config
		early bool // whether some confirming run can end early
	}{
		// A client without a timeout hangs in a blackhole: MaxLatency is
		// broken for good once an op in flight is over the bound.
		{"hang, MaxLatency", func() properties.Config {
			return simConfig(newFake(0, allKinds...), properties.MaxLatency{Max: time.Second})
		}, true},
		// The same client against every invariant of the robust one.
		{"hang, robust invariants", func() properties.Config {
			return simConfig(newFake(0, allKinds...), robust()...)
		}, true},
		// A timeout of 800ms with a bound of 500ms: the op over the bound
		// ends by itself, and is judged once it has.
		{"slow timeout, MaxLatency", func() properties.Config {
			return simConfig(newFake(800*time.Millisecond, allKinds...), properties.MaxLatency{Max: 500 * time.Millisecond})
		}, true},
		// Recovery depends on what follows: its runs are never cut.
		{"hang, Recovery", func() properties.Config {
			return simConfig(newFake(0, allKinds...), properties.Recovery{Within: 300 * time.Millisecond})
		}, false},
		// During faults: an op in a fault's window stays in it.
		{"hang, MaxLatency during faults", func() properties.Config {
			return simConfig(newFake(0, allKinds...), properties.MaxLatency{Max: time.Second, Window: sim.During})
		}, true},
		// A rate that more ops can lower: never cut either.
		{"timeout, ErrorRate", func() properties.Config {
			return simConfig(newFake(200*time.Millisecond, allKinds...), properties.ErrorRate{Max: 0.05})
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			explore := func(early bool) *properties.Result {
				properties.SetEndEarly(t, early)
				rapidSeed(t, 11)
				cfg := c.cfg()
				cfg.Dir = t.TempDir()
				res, err := properties.Explore(t, cfg)
				require.NoError(t, err)
				return res
			}
			whole, cut := explore(false), explore(true)
			require.NotNil(t, whole.Failure, "the fragile client is caught")
			require.Zero(t, properties.EarlyEnds(whole))
			if c.early {
				require.Positive(t, properties.EarlyEnds(cut), "some confirming run ended early")
			} else {
				require.Zero(t, properties.EarlyEnds(cut), "no confirming run may end early")
			}
			require.NotNil(t, cut.Failure)
			require.Equal(t, whole.Failure.Schedule, cut.Failure.Schedule)
			require.Equal(t, whole.Failure.Seed, cut.Failure.Seed)
			require.Equal(t, whole.Failure.Findings.String(), cut.Failure.Findings.String(), "the reported failure is a whole run")
			require.Equal(t, whole.Failure.History.Ops, cut.Failure.History.Ops)
			require.Equal(t, whole.Failure.Reruns, cut.Failure.Reruns)
			require.Equal(t, whole.Failure.Reproduced, cut.Failure.Reproduced)
			require.Equal(t, whole.Flaky, cut.Flaky)
			require.Equal(t, whole.Iterations, cut.Iterations)
			require.Equal(t, whole.Runs, cut.Runs)
			require.Equal(t, whole.CacheHits, cut.CacheHits)
			t.Logf("%d of %d runs ended early; reproduced %d of %d; shrunk to %s", properties.EarlyEnds(cut), cut.Runs,
				cut.Failure.Reproduced, cut.Failure.Reruns, cut.Failure.Schedule)
		})
	}
}

// TestEarlyEndKeepsAFlakyVerdict: a failure that reproduces in only some
// reruns is reported with the same rate either way.
func TestEarlyEndKeepsAFlakyVerdict(t *testing.T) {
	t.Setenv("SHAKEDOWN_SELFCHECK", "0") // flakyConfig differs from build to build on purpose
	explore := func(early bool) *properties.Result {
		properties.SetEndEarly(t, early)
		rapidSeed(t, 11)
		res, err := properties.Explore(t, flakyConfig())
		require.NoError(t, err)
		return res
	}
	whole, cut := explore(false), explore(true)
	require.True(t, whole.Flaky)
	require.True(t, cut.Flaky)
	require.Positive(t, properties.EarlyEnds(cut))
	require.Equal(t, whole.Failure.Schedule, cut.Failure.Schedule)
	require.Equal(t, whole.Failure.Reruns, cut.Failure.Reruns)
	require.Equal(t, whole.Failure.Reproduced, cut.Failure.Reproduced)
}

// rapidSeed fixes rapid's seed until the test ends, so that two
// explorations draw the same schedules.
func rapidSeed(t *testing.T, seed int) {
	f := flag.Lookup("rapid.seed")
	require.NotNil(t, f, "rapid's -rapid.seed flag")
	was := f.Value.String()
	require.NoError(t, f.Value.Set(fmt.Sprint(seed)))
	t.Cleanup(func() { _ = f.Value.Set(was) })
}
