package breaker_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/properties/breaker"
	"github.com/shakedown/shakedown/properties/internal/search"
	"github.com/shakedown/shakedown/toxics"
)

// TestCheckWritesSummary: a breaker Check that holds writes summary.json
// in the properties schema: the spec held over every run, the outages
// drawn on the dependency, no finding.
func TestCheckWritesSummary(t *testing.T) {
	dir := t.TempDir()
	breaker.Check(t, breaker.Config{
		New:        brkGoBreaker(1, 500*time.Millisecond, 200*time.Millisecond),
		Spec:       brkSpec,
		Iterations: 40,
		Dir:        dir,
		Bounds:     properties.Bounds{Targets: []properties.TargetKinds{{Name: "dep", Kinds: breaker.Kinds()}}},
	})
	s, err := search.ReadSummary(filepath.Join(dir, "summary.json"))
	require.NoError(t, err)
	require.NotNil(t, s)
	require.Equal(t, search.SummaryVersion, s.Version)
	require.Equal(t, t.Name(), s.Test)
	require.Equal(t, "held", s.Verdict)
	require.Equal(t, []search.InvariantVerdict{{Name: "the breaker follows its spec", Verdict: "held", Judged: 40}}, s.Invariants)
	require.Equal(t, 40, s.Coverage.Runs)
	require.Equal(t, 40, s.Coverage.Schedules)
	drawn := 0
	for k, n := range s.Coverage.Faults["dep"] {
		require.Contains(t, breaker.Kinds(), toxics.Kind(k))
		drawn += n
	}
	require.Positive(t, drawn)
	require.Empty(t, s.Findings)
}
