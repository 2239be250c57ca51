package breaker_test

import (
	"flag"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/properties/breaker"
)

// stamps are the times in the names of rapid's fail files.
var stamps = regexp.MustCompile(`-[0-9]{14}-[0-9]+\.fail`)

// TestBatchesGiveTheSequentialResult explores with the same rapid seed one
// bubble at a time and eight at a time: the schedules, the counts, the
// coverage and the shrunk counterexample are the same.
func TestBatchesGiveTheSequentialResult(t *testing.T) {
	seed := flag.Lookup("rapid.seed")
	require.NotNil(t, seed, "rapid's flags are registered")
	old := seed.Value.String()
	t.Cleanup(func() { seed.Value.Set(old) })
	twoProbes := brkSpec
	twoProbes.HalfOpenProbes, twoProbes.SuccessesToClose = 2, 2
	tests := []struct {
		name string
		cfg  breaker.Config
	}{
		{"holds", breaker.Config{New: brkGoBreaker(2, 500*time.Millisecond, 200*time.Millisecond),
			Spec: twoProbes, Iterations: 100}},
		{"open for 1s, expected 500ms", breaker.Config{New: brkGoBreaker(1, time.Second, 200*time.Millisecond), Spec: brkSpec,
			Iterations: 300, ShrinkTime: time.Minute}},
		{"MaxRequests 5, expected 2", breaker.Config{New: brkGoBreaker(5, 500*time.Millisecond, 200*time.Millisecond),
			Spec: twoProbes, Iterations: 300, ShrinkTime: time.Minute}},
	}
	// Seed 7 finds each failure second in its batch, so the shrink
	// draws a schedule before the one it runs.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, s := range []string{"1", "7", "12345"} {
				require.NoError(t, seed.Value.Set(s))
				one, err := breaker.ExploreOn(t, tt.cfg, 1)
				require.NoError(t, err)
				eight, err := breaker.ExploreOn(t, tt.cfg, 8)
				require.NoError(t, err)
				require.Equal(t, one.Failure == nil, eight.Failure == nil, "seed %s", s)
				if one.Failure != nil {
					require.Equal(t, one.Failure.Schedule.String(), eight.Failure.Schedule.String(), "seed %s", s)
					require.Equal(t, one.Failure.Violations, eight.Failure.Violations, "seed %s", s)
					require.Equal(t, one.Failure.Timeline(), eight.Failure.Timeline(), "seed %s", s)
				}
				require.Equal(t, one.Iterations, eight.Iterations, "seed %s", s)
				require.Equal(t, one.Runs, eight.Runs, "seed %s", s)
				require.Equal(t, one.Ops, eight.Ops, "seed %s", s)
				require.Equal(t, one.Coverage, eight.Coverage, "seed %s", s)
				require.Equal(t, stamps.ReplaceAllString(strings.Join(one.Rapid, "\n"), ""), stamps.ReplaceAllString(strings.Join(eight.Rapid, "\n"), ""), "seed %s", s)
				t.Logf("seed %s: %d schedules, %d runs, failure %v", s, one.Iterations, one.Runs, one.Failure != nil)
			}
		})
	}
}
