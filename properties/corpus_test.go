package properties_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/properties/internal/search"
	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// writeCorpus puts a bare schedule in dir's corpus folder.
func writeCorpus(t *testing.T, dir, name string, s sim.Schedule) {
	t.Helper()
	data, err := json.Marshal(s)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "corpus"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "corpus", name), data, 0o644))
}

var longBlackhole = sim.Schedule{Steps: []sim.Step{{At: time.Second, For: 2 * time.Second, Target: "db", Fault: toxics.Blackhole{}}}}

// TestCorpusReplaysFirst: a corpus schedule runs after the baseline and
// before any schedule is explored; one that breaks is the failure, shrunk
// to a 1-minimal schedule; one that holds is counted in the coverage.
func TestCorpusReplaysFirst(t *testing.T) {
	dir := t.TempDir()
	writeCorpus(t, dir, "blackhole.json", longBlackhole)

	cfg := simConfig(newFake(0, allKinds...), properties.MaxLatency{Max: time.Second})
	cfg.Dir = dir
	res, err := properties.Explore(t, cfg)
	require.NoError(t, err)
	require.NotNil(t, res.Failure)
	require.Zero(t, res.Iterations, "found by the corpus, before exploring")
	require.Equal(t, "0: +0s for 100ms db blackhole()", res.Failure.Schedule.String(), "shrunk by shakedown's own pass")

	cfg = simConfig(newFake(200*time.Millisecond, allKinds...), robust()...)
	cfg.Dir, cfg.Iterations = dir, 2
	res, err = properties.Explore(t, cfg)
	require.NoError(t, err)
	require.Nil(t, res.Failure)
	require.Equal(t, 3, res.Coverage.Runs, "the corpus schedule and two explored")
}

// TestCorpusErrorsBeforeAnyRun: a corpus schedule that aims at a target
// the World lacks, or a fault its target does not take, is an error
// before any run.
func TestCorpusErrorsBeforeAnyRun(t *testing.T) {
	for name, st := range map[string]sim.Step{
		"no such target": {At: 0, For: time.Second, Target: "nosuch", Fault: toxics.Down{}},
		"kind not taken": {At: 0, For: time.Second, Target: "db", Fault: toxics.Crash{}},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeCorpus(t, dir, "bad.json", sim.Schedule{Steps: []sim.Step{st}})
			f := newFake(0, allKinds...)
			cfg := simConfig(f, properties.MaxLatency{Max: time.Second})
			cfg.Dir = dir
			_, err := properties.Explore(t, cfg)
			require.ErrorContains(t, err, "bad.json")
			require.Zero(t, f.resets.Load(), "no run")
		})
	}
}

// TestSummaryAcrossChecks: a failing Check (Explore, then its summary) writes a new finding; the same
// Check of a fixed client, with the failure's schedule now in its corpus,
// marks it fixed; the fragile client again marks it regressed.
func TestSummaryAcrossChecks(t *testing.T) {
	dir := t.TempDir()
	fragile := simConfig(newFake(0, allKinds...), properties.MaxLatency{Max: time.Second})
	fragile.Dir = dir
	fixed := simConfig(newFake(200*time.Millisecond, allKinds...), properties.MaxLatency{Max: time.Second})
	fixed.Dir, fixed.Iterations = dir, 3
	for i, step := range []struct {
		cfg     properties.Config
		verdict string
		status  string
	}{
		{fragile, "failed", search.StatusNew},
		{fixed, "held", search.StatusFixed},
		{fragile, "failed", search.StatusRegressed},
	} {
		res, err := properties.Explore(t, step.cfg)
		require.NoError(t, err)
		properties.Summarize(t, step.cfg, res) // as Check does
		s, err := search.ReadSummary(filepath.Join(dir, "summary.json"))
		require.NoError(t, err)
		require.Equal(t, step.verdict, s.Verdict, "check %d", i)
		require.Len(t, s.Findings, 1, "check %d", i)
		require.Equal(t, step.status, s.Findings[0].Status, "check %d", i)
		require.Equal(t, "every op <= 1s overall | db blackhole", s.Findings[0].Signature)
	}
}

// TestShrunkIsOneMinimal runs every one-step-milder neighbour of a shrunk
// failure (each step removed, each kind made milder, each magnitude moved
// one grain toward its mild end): none breaks the invariant.
func TestShrunkIsOneMinimal(t *testing.T) {
	cfg := simConfig(newFake(0, allKinds...), properties.MaxLatency{Max: time.Second})
	cfg.Dir = t.TempDir()
	cfg.Bounds.Targets = []properties.TargetKinds{{Name: "db", Kinds: allKinds}}
	writeCorpus(t, cfg.Dir, "two.json", sim.Schedule{Steps: []sim.Step{
		{At: 500 * time.Millisecond, For: time.Second, Target: "db", Fault: toxics.Latency{Delay: 100 * time.Millisecond}},
		{At: 2 * time.Second, For: 2 * time.Second, Target: "db", Fault: toxics.Blackhole{}},
	}})
	res, err := properties.Explore(t, cfg)
	require.NoError(t, err)
	require.NotNil(t, res.Failure)
	ns := properties.Neighbours(cfg.Bounds, res.Failure.Schedule)
	for _, n := range ns {
		it, err := properties.RunSchedule(t, cfg, n, 1)
		require.NoError(t, err)
		require.False(t, it.Findings.Broken(), "the milder neighbour\n%s\nof the shrunk\n%s\nbreaks too", n, res.Failure.Schedule)
	}
	t.Logf("shrunk to %s; none of its %d milder neighbours breaks", res.Failure.Schedule, len(ns))
}
