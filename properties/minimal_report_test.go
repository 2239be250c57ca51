package properties_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/properties"
)

// TestShrunkSaysWhetherOneMinimal: a shrunk failure is called 1-minimal
// only when the 1-minimal pass ran every candidate it asked about; with
// no shrink time left, it is said not to be shown 1-minimal, with the
// count of candidates left unrun, rather than passed off as minimal.
func TestShrunkSaysWhetherOneMinimal(t *testing.T) {
	full, err := properties.Explore(t, simConfig(newFake(0, allKinds...), properties.MaxLatency{Max: time.Second}))
	require.NoError(t, err)
	require.NotNil(t, full.Failure)
	require.Zero(t, properties.Unrun(full), "with the default budget every candidate runs")

	cfg := simConfig(newFake(0, allKinds...), properties.MaxLatency{Max: time.Second})
	cfg.ShrinkTime = time.Nanosecond
	cut, err := properties.Explore(t, cfg)
	require.NoError(t, err)
	require.NotNil(t, cut.Failure)
	require.Positive(t, properties.Unrun(cut), "no shrink time: the 1-minimal pass could run nothing")

	out := child(t, "fragile-control", t.TempDir(), "")
	require.Regexp(t, `shrunk in [^\n]*cached verdicts\), 1-minimal:`, out)
}
