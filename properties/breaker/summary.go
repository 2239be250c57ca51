package breaker

import (
	"testing"

	"github.com/shakedown/shakedown/properties/internal/search"
)

// summarize writes the summary of a breaker Check (summary.json in
// cfg.Dir, default testdata/shakedown/<test name>), in the schema of the
// properties package's checks, marking its findings against the summary
// there before. The invariants are the spec as a whole (judged by every
// run; unjudged when the breaker never opened) and each rule the shrunk
// counterexample broke; the faults are the outages drawn, on the one
// dependency.
func summarize(t *testing.T, cfg Config, res *Result) {
	t.Helper()
	s := summaryOf(t.Name(), cfg, res)
	path := search.SummaryPath(t.Name(), cfg.Dir)
	if err := search.WriteSummary(path, s, true); err != nil {
		t.Errorf("shakedown: %v", err)
		return
	}
	for _, f := range s.Findings {
		t.Logf("shakedown: finding %s: %s", f.Status, f.Signature)
	}
	t.Logf("shakedown: summary: %s", path)
}

// specRule is the invariant that stands for the whole spec.
const specRule = "the breaker follows its spec"

func summaryOf(test string, cfg Config, res *Result) *search.Summary {
	s := &search.Summary{Test: test, Verdict: "held"}
	whole := search.InvariantVerdict{Name: specRule, Verdict: "held", Judged: res.Coverage.Runs}
	if res.Coverage.Opened == 0 {
		whole.Verdict = "unjudged"
	}
	target := TargetName
	if len(cfg.Bounds.Targets) > 0 {
		target = cfg.Bounds.Targets[0].Name
	}
	s.Coverage = search.SummaryCoverage{Runs: res.Coverage.Runs, Schedules: res.Iterations, Faults: map[string]map[string]int{target: {}}}
	for k, n := range res.Coverage.Kinds {
		s.Coverage.Faults[target][string(k)] = n
	}
	var rules []search.InvariantVerdict
	if r := res.Failure; r != nil {
		s.Verdict = "failed"
		whole.Verdict, whole.Broken = "broken", 1
		for _, name := range r.failure().Broken {
			rules = append(rules, search.InvariantVerdict{Name: name, Verdict: "broken", Judged: res.Coverage.Runs, Broken: 1})
			f := search.NewFinding(name, r.Schedule, 0, false)
			f.Report = "report.html" // written by search.Save
			s.Findings = append(s.Findings, f)
		}
	}
	s.Invariants = append([]search.InvariantVerdict{whole}, rules...)
	return s
}
