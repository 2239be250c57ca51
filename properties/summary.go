package properties

import (
	"testing"

	"github.com/shakedown/shakedown/properties/internal/search"
)

// summarize writes the summary of a Check's result next to its report
// (summary.json in Exploration.Dir, default testdata/shakedown/<test
// name>), marking each finding against the summary there before; the
// schema is in the package documentation.
func summarize(t testing.TB, cfg Config, res *Result) {
	t.Helper()
	s := summaryOf(t.Name(), res)
	path := search.SummaryPath(t.Name(), cfg.Dir)
	explored := res.Steady != res.Baseline || res.Baseline == nil
	if err := search.WriteSummary(path, s, explored); err != nil {
		t.Errorf("shakedown: %v", err)
		return
	}
	for _, f := range s.Findings {
		t.Logf("shakedown: finding %s: %s", f.Status, f.Signature)
	}
	t.Logf("shakedown: summary: %s", path)
}

// summaryOf is the summary of res, its findings not yet marked.
func summaryOf(test string, res *Result) *search.Summary {
	s := &search.Summary{Test: test, Verdict: "held"}
	switch {
	case res.Steady != nil && res.Steady == res.Baseline:
		s.Verdict = "steady_state_broken"
	case res.Failure != nil && res.Flaky:
		s.Verdict = "flaky"
	case res.Failure != nil || res.Steady != nil:
		s.Verdict = "failed"
	}
	c := res.Coverage
	for _, name := range c.Invariants {
		v := search.InvariantVerdict{Name: name, Verdict: "held", Judged: c.Judged[name], Broken: c.Broken[name]}
		switch {
		case v.Broken > 0:
			v.Verdict = "broken"
		case v.Judged == 0:
			v.Verdict = "unjudged"
		}
		s.Invariants = append(s.Invariants, v)
	}
	s.Coverage = search.SummaryCoverage{Runs: c.Runs, Schedules: res.Iterations, Faults: map[string]map[string]int{}}
	for target, kinds := range c.Faults {
		s.Coverage.Faults[target] = map[string]int{}
		for k, n := range kinds {
			s.Coverage.Faults[target][string(k)] = n
		}
	}
	seen := map[string]bool{}
	add := func(it *Iteration, fs Findings, flaky bool) {
		for _, f := range fs {
			if nf := search.NewFinding(f.Invariant, it.Schedule, it.Seed, flaky); f.Verdict == Broken && !seen[nf.Signature] {
				seen[nf.Signature] = true
				s.Findings = append(s.Findings, nf)
			}
		}
	}
	if it := res.Failure; it != nil {
		add(it, it.Findings, res.Flaky)
	}
	for _, it := range res.flaky {
		add(it, it.Findings, true)
	}
	if it := res.Steady; it != nil {
		add(it, it.Steady, !it.confirmed())
	}
	return s
}
