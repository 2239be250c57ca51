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

// TestSummaryReportOnlyOfThisCheck: a finding's report is this check's;
// one carried from the summary before (fixed, or not seen by a check
// that stopped before exploring) has none.
func TestSummaryReportOnlyOfThisCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "summary.json")
	s := sim.Schedule{Steps: []sim.Step{{At: 0, For: time.Second, Target: "db", Fault: toxics.Down{}}}}
	f := NewFinding("no errors", s, 1, false)
	f.Report = "report.html"
	for i, step := range []struct {
		sum      *Summary
		explored bool
		status   string
		report   string
	}{
		{&Summary{Test: "T", Verdict: "failed", Shard: "2/4", Findings: []SummaryFinding{f}}, true, StatusNew, "report.html"},
		{&Summary{Test: "T", Verdict: "steady_state_broken"}, false, StatusNew, ""},
		{&Summary{Test: "T", Verdict: "held"}, true, StatusFixed, ""},
	} {
		if err := WriteSummary(path, step.sum, step.explored); err != nil {
			t.Fatal(err)
		}
		got, err := ReadSummary(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Findings) != 1 || got.Findings[0].Status != step.status || got.Findings[0].Report != step.report {
			t.Fatalf("check %d: findings %+v, want one %s with report %q", i, got.Findings, step.status, step.report)
		}
		if i == 0 && got.Shard != "2/4" {
			t.Fatalf("shard %q, want 2/4", got.Shard)
		}
	}
}
