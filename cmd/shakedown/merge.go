package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// schemaVersion is the version of the summaries read, and of the merged
// file written.
const schemaVersion = 1

// The verdicts and statuses of schema version 1.
const (
	statusNew          = "new"
	statusStillFailing = "still_failing"
	statusFixed        = "fixed"
	statusRegressed    = "regressed"
)

// summary is one summary.json, as the properties package documents it.
// Fields added to the schema later are ignored.
type summary struct {
	Version     int         `json:"version"`
	Test        string      `json:"test"`
	Verdict     string      `json:"verdict"`
	Shard       string      `json:"shard,omitempty"`
	Invariants  []invariant `json:"invariants"`
	Coverage    coverage    `json:"coverage"`
	Findings    []finding   `json:"findings"`
	CorpusAdded []string    `json:"corpus_added,omitempty"`
	path        string      // where it was read
}

type invariant struct {
	Name    string `json:"name"`
	Verdict string `json:"verdict"`
	Judged  int    `json:"judged"`
	Broken  int    `json:"broken"`
}

type coverage struct {
	Runs      int                       `json:"runs"`
	Schedules int                       `json:"schedules"`
	Faults    map[string]map[string]int `json:"faults"`
}

type finding struct {
	Signature string          `json:"signature"`
	Invariant string          `json:"invariant"`
	Shape     []string        `json:"shape"`
	Status    string          `json:"status"`
	Flaky     bool            `json:"flaky,omitempty"`
	Seed      int64           `json:"seed"`
	Schedule  json.RawMessage `json:"schedule"`
	Report    string          `json:"report,omitempty"`
}

// merged is the file the command writes.
type merged struct {
	Version int          `json:"version"`
	Tests   []mergedTest `json:"tests"`
}

type mergedTest struct {
	Test        string          `json:"test"`
	Verdict     string          `json:"verdict"`
	Shards      []string        `json:"shards"`
	Summaries   []string        `json:"summaries"`
	Invariants  []invariant     `json:"invariants"`
	Coverage    coverage        `json:"coverage"`
	Findings    []mergedFinding `json:"findings"`
	CorpusAdded []string        `json:"corpus_added,omitempty"`
}

type mergedFinding struct {
	Signature string          `json:"signature"`
	Invariant string          `json:"invariant"`
	Shape     []string        `json:"shape"`
	Status    string          `json:"status"`
	Flaky     bool            `json:"flaky,omitempty"`
	Seed      int64           `json:"seed"`
	Schedule  json.RawMessage `json:"schedule"`
	Shards    []string        `json:"shards"`
	Reports   []string        `json:"reports"`
}

// mergeDirs reads every summary.json under dirs and merges them by test.
func mergeDirs(dirs []string) (*merged, error) {
	var all []*summary
	for _, dir := range dirs {
		paths, err := findSummaries(dir)
		if err != nil {
			return nil, err
		}
		for _, p := range paths {
			s, err := readSummary(p)
			if err != nil {
				return nil, err
			}
			all = append(all, s)
		}
	}
	return merge(all)
}

// findSummaries lists the summary.json files under dir, in lexical order.
func findSummaries(dir string) ([]string, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("summary: %s is not a directory", dir)
	}
	var out []string
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() == "summary.json" {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("summary: no summary.json under %s", dir)
	}
	return out, nil
}

// readSummary reads one summary.json; it must be of schema version 1 and
// name its test and verdict.
func readSummary(path string) (*summary, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	var s summary
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("summary: %s: %w", path, err)
	}
	switch {
	case s.Version != schemaVersion:
		return nil, fmt.Errorf("summary: %s: schema version %d, this command reads version %d", path, s.Version, schemaVersion)
	case s.Test == "":
		return nil, fmt.Errorf("summary: %s: field \"test\" is missing", path)
	case verdictRank(s.Verdict) < 0:
		return nil, fmt.Errorf("summary: %s: field \"verdict\" is %q, not one of held, flaky, failed, steady_state_broken", path, s.Verdict)
	}
	for i, f := range s.Findings {
		if statusRank(f.Status) < 0 {
			return nil, fmt.Errorf("summary: %s: findings[%d].status is %q, not one of new, still_failing, fixed, regressed", path, i, f.Status)
		}
		if f.Signature == "" {
			return nil, fmt.Errorf("summary: %s: findings[%d].signature is missing", path, i)
		}
	}
	s.path = path
	return &s, nil
}

// verdictRank orders verdicts from best to worst; -1 for an unknown one.
func verdictRank(v string) int {
	return slices.Index([]string{"held", "flaky", "failed", "steady_state_broken"}, v)
}

// statusRank orders statuses: fixed below every failing one, and among
// those new, still failing, regressed (a finding failing in one shard's
// earlier summary is still failing; fixed in one, regressed).
func statusRank(s string) int {
	return slices.Index([]string{statusFixed, statusNew, statusStillFailing, statusRegressed}, s)
}

func merge(all []*summary) (*merged, error) {
	byTest := map[string][]*summary{}
	var tests []string
	for _, s := range all {
		if _, ok := byTest[s.Test]; !ok {
			tests = append(tests, s.Test)
		}
		byTest[s.Test] = append(byTest[s.Test], s)
	}
	slices.Sort(tests)
	m := &merged{Version: schemaVersion, Tests: []mergedTest{}}
	for _, name := range tests {
		t, err := mergeTest(byTest[name])
		if err != nil {
			return nil, err
		}
		m.Tests = append(m.Tests, t)
	}
	return m, nil
}

// mergeTest merges the summaries of one test.
func mergeTest(ss []*summary) (mergedTest, error) {
	t := mergedTest{Test: ss[0].Test, Verdict: "held", Shards: []string{}, Summaries: []string{}, Invariants: []invariant{},
		Coverage: coverage{Faults: map[string]map[string]int{}}, Findings: []mergedFinding{}}
	seenShard := map[string]string{}
	invIndex := map[string]int{}
	findIndex := map[string]int{}
	for _, s := range ss {
		if s.Shard != "" {
			if other, ok := seenShard[s.Shard]; ok {
				return t, fmt.Errorf("summary: %s and %s are both shard %s of %s", other, s.path, s.Shard, s.Test)
			}
			seenShard[s.Shard] = s.path
		}
		t.Shards = append(t.Shards, s.Shard)
		t.Summaries = append(t.Summaries, s.path)
		if verdictRank(s.Verdict) > verdictRank(t.Verdict) {
			t.Verdict = s.Verdict
		}
		for _, inv := range s.Invariants {
			i, ok := invIndex[inv.Name]
			if !ok {
				i = len(t.Invariants)
				invIndex[inv.Name] = i
				t.Invariants = append(t.Invariants, invariant{Name: inv.Name})
			}
			t.Invariants[i].Judged += inv.Judged
			t.Invariants[i].Broken += inv.Broken
		}
		t.Coverage.Runs += s.Coverage.Runs
		t.Coverage.Schedules += s.Coverage.Schedules
		for target, kinds := range s.Coverage.Faults {
			if t.Coverage.Faults[target] == nil {
				t.Coverage.Faults[target] = map[string]int{}
			}
			for k, n := range kinds {
				t.Coverage.Faults[target][k] += n
			}
		}
		dir := filepath.Dir(s.path)
		for _, f := range s.Findings {
			i, ok := findIndex[f.Signature]
			if !ok {
				i = len(t.Findings)
				findIndex[f.Signature] = i
				t.Findings = append(t.Findings, mergedFinding{Signature: f.Signature, Invariant: f.Invariant, Shape: f.Shape,
					Status: f.Status, Flaky: f.Flaky, Seed: f.Seed, Schedule: f.Schedule, Shards: []string{}, Reports: []string{}})
			}
			mf := &t.Findings[i]
			if statusRank(f.Status) > statusRank(mf.Status) {
				mf.Status = f.Status
			}
			if f.Status == statusFixed {
				continue
			}
			mf.Shards = append(mf.Shards, s.Shard)
			if f.Report != "" {
				mf.Reports = append(mf.Reports, filepath.Join(dir, filepath.FromSlash(f.Report)))
			}
			if len(mf.Shards) == 1 { // the first failing occurrence gives the schedule
				mf.Seed, mf.Schedule, mf.Flaky = f.Seed, f.Schedule, f.Flaky
			} else {
				mf.Flaky = mf.Flaky && f.Flaky
			}
		}
		for _, c := range s.CorpusAdded {
			t.CorpusAdded = append(t.CorpusAdded, filepath.Join(dir, filepath.FromSlash(c)))
		}
	}
	for i := range t.Invariants {
		inv := &t.Invariants[i]
		switch {
		case inv.Broken > 0:
			inv.Verdict = "broken"
		case inv.Judged > 0:
			inv.Verdict = "held"
		default:
			inv.Verdict = "unjudged"
		}
	}
	slices.SortStableFunc(t.Findings, func(a, b mergedFinding) int { return strings.Compare(a.Signature, b.Signature) })
	return t, nil
}

// encode is the merged file's JSON.
func (m *merged) encode() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, errors.Join(errors.New("summary: encode"), err)
	}
	return buf.Bytes(), nil
}

// notHeld lists the tests that did not hold, or whose summaries together
// judged some invariant in no run.
func (m *merged) notHeld() notHeld {
	var out notHeld
	for _, t := range m.Tests {
		if t.Verdict != "held" {
			out = append(out, t.Test+" "+t.Verdict)
		}
		if un := t.unjudged(); len(un) > 0 {
			out = append(out, fmt.Sprintf("%s: no evidence in any run for %s", t.Test, strings.Join(un, ", ")))
		}
	}
	return out
}

// unjudged names the invariants no run judged.
func (t mergedTest) unjudged() []string {
	var out []string
	for _, inv := range t.Invariants {
		if inv.Verdict == "unjudged" {
			out = append(out, inv.Name)
		}
	}
	return out
}
