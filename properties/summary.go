package properties

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
	s.Shard = shardLabel()
	if sharded() && res.Iterations == 0 && res.Failure == nil {
		t.Logf("shakedown: %s=%s: no iteration of this check fell to this shard (the baseline and the corpus ran)", envShard, s.Shard)
	}
	path := search.SummaryPath(t.Name(), cfg.Dir)
	if os.Getenv(envExplore) != "" && res.Failure != nil && !res.Flaky {
		added, err := addToCorpus(filepath.Dir(path), t.Name(), res.Failure, s.Findings)
		if err != nil {
			t.Errorf("shakedown: %v", err)
		}
		if added != "" {
			s.CorpusAdded = []string{added}
			t.Logf("shakedown: %s: the failing schedule is now in the corpus, to commit: %s", envExplore, filepath.Join(filepath.Dir(path), added))
		}
	}
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
	add := func(it *Iteration, fs Findings, flaky bool, report string) {
		for _, f := range fs {
			if nf := search.NewFinding(f.Invariant, it.Schedule, it.Seed, flaky); f.Verdict == Broken && !seen[nf.Signature] {
				seen[nf.Signature] = true
				nf.Report = report
				s.Findings = append(s.Findings, nf)
			}
		}
	}
	if it := res.Failure; it != nil {
		add(it, it.Findings, res.Flaky, reportFile) // Check reports it (search.Save)
	}
	for _, it := range res.flaky {
		add(it, it.Findings, true, "")
	}
	if it := res.Steady; it != nil {
		add(it, it.Steady, !it.confirmed(), "")
	}
	for _, sl := range res.slower {
		u := search.SummaryUnjudged{Invariants: sl.invariants, Schedule: oneLineOr(sl.it.Schedule), Seed: sl.it.Seed, Reason: sl.reason}
		s.Unjudged = append(s.Unjudged, u)
	}
	return s
}

// reportFile is the report search.Save writes beside the summary.
const reportFile = "report.html"

// shardLabel is SHAKEDOWN_SHARD as explore accepted it ("2/4"), "" when
// unset.
func shardLabel() string {
	i, n, err := parseShard(os.Getenv(envShard))
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%d/%d", i, n)
}

// addToCorpus writes a failure found by a nightly exploration into dir's
// corpus folder, named by the signatures of its findings
// (found-<hash>.json), so that a rerun finding the same failure writes no
// second file. It returns the file's path relative to dir, or "" when
// the corpus already holds the failure: a file of that name, or one with
// the same schedule.
func addToCorpus(dir, test string, it *Iteration, findings []search.SummaryFinding) (string, error) {
	var sigs []string
	for _, f := range findings {
		if f.Report != "" { // the failure's own findings
			sigs = append(sigs, f.Signature)
		}
	}
	if len(sigs) == 0 {
		return "", nil
	}
	slices.Sort(sigs)
	sum := sha256.Sum256([]byte(strings.Join(sigs, "\n")))
	name := filepath.Join("corpus", "found-"+hex.EncodeToString(sum[:6])+".json")
	if fileExists(filepath.Join(dir, name)) {
		return "", nil
	}
	paths, err := filepath.Glob(filepath.Join(dir, "corpus", "*.json"))
	if err != nil {
		return "", fmt.Errorf("properties: corpus: %w", err)
	}
	for _, p := range paths {
		if s, _, _, err := search.LoadSchedule(p); err == nil && scheduleKey(s) == scheduleKey(it.Schedule) {
			return "", nil
		}
	}
	if _, err := search.SaveSchedule(filepath.Join(dir, name), test, failureOf(it)); err != nil {
		return "", fmt.Errorf("properties: %s: %w", envExplore, err)
	}
	return name, nil
}
