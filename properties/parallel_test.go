package properties_test

import (
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// TestParallelFindsWhatOneAtATimeFinds: simulated runs side by side find,
// seed for seed, the failure a search one run at a time finds, after as
// many iterations and runs, and shrink it to the same schedule; the runs
// of a batch made beside the failure, after it, and the candidates of the
// 1-minimal pass run ahead and never asked about, count for nothing.
func TestParallelFindsWhatOneAtATimeFinds(t *testing.T) {
	explore := func(parallel int) *properties.Result {
		// A client without a timeout: a blackhole breaks it, and so does
		// a latency over 50ms, which the 1-minimal pass bisects to.
		cfg := simConfig(newFake(0, toxics.KindLatency, toxics.KindBlackhole), properties.MaxLatency{Max: 50 * time.Millisecond})
		cfg.Iterations, cfg.Parallel = 40, parallel
		res, err := properties.Explore(t, cfg)
		require.NoError(t, err)
		return res
	}
	laterInABatch, ahead := 0, 0
	for seed := 1; seed <= 6; seed++ {
		rapidSeed(t, seed)
		one, many := explore(1), explore(4)
		require.NotNil(t, one.Failure, "seed %d: a client without a timeout breaks", seed)
		require.NotNil(t, many.Failure, "seed %d", seed)
		require.Equal(t, one.Iterations, many.Iterations, "seed %d: iterations before the failure", seed)
		require.Equal(t, one.Runs, many.Runs, "seed %d: runs counted", seed)
		require.Equal(t, one.CacheHits, many.CacheHits, "seed %d", seed)
		require.Equal(t, one.Failure.Schedule, many.Failure.Schedule, "seed %d: the shrunk failure", seed)
		require.Equal(t, one.Failure.Findings, many.Failure.Findings, "seed %d", seed)
		require.Equal(t, one.Failure.Reproduced, many.Failure.Reproduced, "seed %d", seed)
		require.Equal(t, one.Coverage, many.Coverage, "seed %d", seed)
		if one.Iterations%8 != 1 {
			laterInABatch++
		}
		require.Zero(t, properties.RunsAhead(one), "seed %d: one at a time, nothing is run ahead", seed)
		ahead += properties.RunsAhead(many)
	}
	require.Positive(t, ahead, "no shrink candidate was run ahead, side by side: the 1-minimal pass went untested")
	require.Positive(t, laterInABatch, "no seed found its failure after the first schedule of a batch: the discarded runs went untested")
}

// TestParallelHoldingSearch: a search that finds nothing runs every
// iteration asked for, batch by batch, and counts each once, with any
// Parallel.
func TestParallelHoldingSearch(t *testing.T) {
	rapidSeed(t, 7)
	var results []*properties.Result
	for _, parallel := range []int{1, 3} {
		cfg := simConfig(newFake(200*time.Millisecond, allKinds...), robust()...)
		cfg.Iterations, cfg.Parallel = 20, parallel // 2 whole batches and a part
		res, err := properties.Explore(t, cfg)
		require.NoError(t, err)
		require.Nil(t, res.Failure, "a client with a 200ms timeout keeps its bounds")
		require.Equal(t, 20, res.Iterations)
		require.Equal(t, 21, res.Runs, "the baseline and each iteration, once")
		results = append(results, res)
	}
	require.Equal(t, results[0].Coverage, results[1].Coverage)
}

func TestParallelNegativeIsAnError(t *testing.T) {
	cfg := simConfig(newFake(0, allKinds...), properties.MaxLatency{Max: time.Second})
	cfg.Parallel = -2
	_, err := properties.Explore(t, cfg)
	require.ErrorContains(t, err, "Exploration.Parallel = -2 is negative")
}

// TestParallelRunThatFailsTheTest: a World that calls t.Fatal in a run
// made beside others fails the test and ends the exploration with an
// error that says so, without a crash. The exploration runs in a child
// process, since the failure is the test's own.
func TestParallelRunThatFailsTheTest(t *testing.T) {
	if os.Getenv("SHAKEDOWN_TEST_FAILS_OFF_THE_TEST") == "1" {
		t.Setenv("SHAKEDOWN_SELFCHECK", "0") // builds: 1 learns the targets, 2 the baseline's
		var builds atomic.Int64
		f := newFake(0, allKinds...)
		cfg := simConfig(f, properties.MaxLatency{Max: time.Second})
		cfg.Parallel = 2
		cfg.World = func(t testing.TB) sim.World {
			if builds.Add(1) >= 3 { // every run after the baseline's
				t.Fatal("the world cannot be built")
			}
			return f.world(t)
		}
		_, err := properties.Explore(t, cfg)
		t.Logf("Explore returned: %v", err)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestParallelRunThatFailsTheTest$", "-test.v")
	cmd.Env = append(os.Environ(), "SHAKEDOWN_TEST_FAILS_OFF_THE_TEST=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the child test must fail:\n%s", out)
	require.Contains(t, string(out), "the world cannot be built")
	require.Contains(t, string(out), "Explore returned: properties: a run made beside others failed the test")
	require.NotContains(t, string(out), "panic:")
}
