package search

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// TestSummaryStatuses runs a finding through the life the statuses tell:
// new, still failing, fixed (and fixed again), regressed.
func TestSummaryStatuses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "summary.json")
	s := sim.Schedule{Steps: []sim.Step{{At: time.Second, For: time.Second, Target: "db", Fault: toxics.Latency{Delay: 300 * time.Millisecond}}}}
	milder := sim.Schedule{Steps: []sim.Step{{At: 0, For: time.Second, Target: "db", Fault: toxics.Latency{Delay: 100 * time.Millisecond}}}}
	failing := func(sched sim.Schedule) *Summary {
		return &Summary{Test: "T", Verdict: "failed", Findings: []SummaryFinding{NewFinding("p99 <= 300ms", sched, 1, false)}}
	}
	held := func() *Summary { return &Summary{Test: "T", Verdict: "held"} }
	for i, step := range []struct {
		sum  *Summary
		want string
	}{
		{failing(s), StatusNew},
		{failing(milder), StatusStillFailing}, // the same shape, other magnitudes
		{held(), StatusFixed},
		{held(), StatusFixed},
		{failing(s), StatusRegressed},
		{failing(s), StatusStillFailing},
	} {
		if err := WriteSummary(path, step.sum, true); err != nil {
			t.Fatal(err)
		}
		got, err := ReadSummary(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Findings) != 1 || got.Findings[0].Status != step.want {
			t.Fatalf("run %d: findings %+v, want one %s", i, got.Findings, step.want)
		}
		if want := "p99 <= 300ms | db latency"; got.Findings[0].Signature != want {
			t.Fatalf("run %d: signature %q, want %q", i, got.Findings[0].Signature, want)
		}
	}
}
