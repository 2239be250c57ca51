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
	rapidSeed(t, 1)
	for round := 1; round <= 3; round++ {
		one := explore(1)
		all := explore(runtime.GOMAXPROCS(0))
		t.Logf("round %d: %.0f schedules a second one at a time, %.0f on %d cores (%.2fx), load %s", round, one, all, runtime.GOMAXPROCS(0), all/one, loadAverage())
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
