package properties_test

import (
	"flag"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// The figures of a simulated exploration are taken in synctest bubbles,
// which need a *testing.T; TestExploreFigures takes them only when asked:
//
//	go test ./properties -run TestExploreFigures -properties.figures -v
var exploreFigures = flag.Bool("properties.figures", false, "run TestExploreFigures (simulated schedules explored per wall second, one run at a time and on every core)")

// TestExploreFigures explores 64 schedules of the simulated go-redis
// client (a search that finds nothing: every schedule is run) with
// Parallel 1 and with GOMAXPROCS, in interleaved rounds, and logs
// schedules per wall second and their ratio.
func TestExploreFigures(t *testing.T) {
	if !*exploreFigures {
		t.Skip("run with -properties.figures to measure (go test ./properties -run TestExploreFigures -properties.figures -v)")
	}
	t.Setenv(properties.EnvIterations, "") // restored when the test ends
	require.NoError(t, os.Unsetenv(properties.EnvIterations))
	const iterations = 64
	explore := func(parallel int) float64 {
		cfg := cacheConfig(toxics.KindLatency, toxics.KindBlackhole, toxics.KindReset, toxics.KindDown, toxics.KindRestart, toxics.KindStop)
		cfg.Iterations, cfg.Parallel = iterations, parallel
		start := time.Now()
		res, err := properties.Explore(t, cfg)
		elapsed := time.Since(start)
		require.NoError(t, err)
		require.Nil(t, res.Failure)
		require.Equal(t, iterations, res.Iterations)
		return float64(res.Runs) / elapsed.Seconds()
	}
	// A failure found and shrunk: latency past the client's 100ms read
	// timeout fails its ops, which the 1-minimal pass bisects to.
	failing := func(parallel int) (time.Duration, *properties.Result) {
		cfg := cacheConfig(toxics.KindLatency, toxics.KindBlackhole)
		cfg.Invariants = []properties.Invariant{properties.ErrorRate{Max: 0.5, Window: sim.During}}
		cfg.Iterations, cfg.Parallel = iterations, parallel
		start := time.Now()
		res, err := properties.Explore(t, cfg)
		require.NoError(t, err)
		require.NotNil(t, res.Failure)
		return time.Since(start), res
	}
	rapidSeed(t, 1)
	cores := runtime.GOMAXPROCS(0)
	for round := 1; round <= 3; round++ {
		one := explore(1)
		all := explore(cores)
		t.Logf("round %d, holding: %.0f schedules a second one at a time, %.0f on %d cores (%.2fx), load %s", round, one, all, cores, all/one, loadAverage())
		oneWall, oneRes := failing(1)
		allWall, allRes := failing(cores)
		require.Equal(t, oneRes.Failure.Schedule, allRes.Failure.Schedule)
		t.Logf("round %d, failing: found after %d schedules and shrunk in %d runs: %v one at a time, %v on %d cores (%.2fx; shrinking %v and %v, %d candidates run ahead), load %s",
			round, oneRes.Iterations, oneRes.Runs, oneWall.Round(time.Millisecond), allWall.Round(time.Millisecond), cores, oneWall.Seconds()/allWall.Seconds(),
			oneRes.Shrinking.Round(time.Millisecond), allRes.Shrinking.Round(time.Millisecond), properties.RunsAhead(allRes), loadAverage())
	}
}

// loadAverage is the one-minute load average ("?" where unknown).
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}
