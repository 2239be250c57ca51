package properties_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/properties"
)

// TestShrunkSaysWhetherOneMinimal: a shrunk failure is called 1-minimal
// only when the 1-minimal pass ran every candidate it asked about; with
// no runs left to the pass, it is said not to be shown 1-minimal, with
// the count of candidates left unrun, rather than passed off as minimal.
// No shrink time does not cut the pass: that bounds rapid's part only.
func TestShrunkSaysWhetherOneMinimal(t *testing.T) {
	full, err := properties.Explore(t, simConfig(newFake(0, allKinds...), properties.MaxLatency{Max: time.Second}))
	require.NoError(t, err)
	require.NotNil(t, full.Failure)
	require.Zero(t, properties.Unrun(full), "with the default budget every candidate runs")

	cfg := simConfig(newFake(0, allKinds...), properties.MaxLatency{Max: time.Second})
	cfg.ShrinkTime = time.Nanosecond
	short, err := properties.Explore(t, cfg)
	require.NoError(t, err)
	require.NotNil(t, short.Failure)
	require.Zero(t, properties.Unrun(short), "no shrink time for rapid: the 1-minimal pass still runs every candidate")

	// No runs for the pass, and none for rapid's shrinking either, on a
	// seed of its own: on some seeds rapid alone reaches the smallest
	// schedule there is (+0s for 100ms db blackhole()), whose every
	// neighbour is cached, and the pass has nothing left to run.
	rapidSeed(t, 1)
	properties.SetMinimizeRuns(t, 0)
	cfg = simConfig(newFake(0, allKinds...), properties.MaxLatency{Max: time.Second})
	cfg.ShrinkTime = time.Nanosecond
	cut, err := properties.Explore(t, cfg)
	require.NoError(t, err)
	require.NotNil(t, cut.Failure)
	require.Positive(t, properties.Unrun(cut), "no runs for the 1-minimal pass: it could run nothing")

	out := child(t, "fragile-control", t.TempDir(), "")
	require.Regexp(t, `shrunk in [^\n]*cached verdicts\), 1-minimal:`, out)
}
