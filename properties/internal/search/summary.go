package search

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

	"github.com/shakedown/shakedown/sim"
)

// SummaryVersion is the version of the summary schema (see properties'
// package documentation). It changes only when a field changes meaning or
// goes away; fields may be added without a change.
const SummaryVersion = 1

// The statuses of a finding in a summary, against the summary before it.
const (
	StatusNew          = "new"           // not in the previous summary
	StatusStillFailing = "still_failing" // failing in the previous summary too
	StatusFixed        = "fixed"         // failing before, not any more
	StatusRegressed    = "regressed"     // fixed in the previous summary, failing again
)

// Summary is what one check found, as written to summary.json.
type Summary struct {
	Version int    `json:"version"`
	Test    string `json:"test"`
	// Verdict is the check's: "held", "failed", "flaky" or
	// "steady_state_broken" (nothing was explored).
	Verdict string `json:"verdict"`
	// Shard is the part of the exploration this check ran
	// (SHAKEDOWN_SHARD, "2/4"); "" for the whole.
	Shard      string             `json:"shard,omitempty"`
	Invariants []InvariantVerdict `json:"invariants"`
	Coverage   SummaryCoverage    `json:"coverage"`
	Findings   []SummaryFinding   `json:"findings"`
	// CorpusAdded lists the schedule files this check wrote into its
	// corpus folder (SHAKEDOWN_EXPLORE), relative to the summary's
	// directory: files to commit.
	CorpusAdded []string `json:"corpus_added,omitempty"`
	// Unjudged lists the failures that reproduced but were set aside as
	// the machine's: a fault-free control run beside them explained what
	// they broke (the machine got slower).
	Unjudged []SummaryUnjudged `json:"unjudged,omitempty"`
}

// SummaryUnjudged is a failure set aside as the machine's: the
// invariants it broke, its schedule on one line with its seed, and why.
type SummaryUnjudged struct {
	Invariants []string `json:"invariants"`
	Schedule   string   `json:"schedule"`
	Seed       int64    `json:"seed"`
	Reason     string   `json:"reason"`
}

// InvariantVerdict is one invariant's verdict over the whole check:
// "broken" when it broke in some run, "held" when it was judged and never
// broke, "unjudged" when no run had evidence for it; with the runs that
// judged it and broke it.
type InvariantVerdict struct {
	Name    string `json:"name"`
	Verdict string `json:"verdict"`
	Judged  int    `json:"judged"`
	Broken  int    `json:"broken"`
}

// SummaryCoverage is what the check's runs exercised: its runs, the
// schedules explored, and the faults that took effect by target and kind.
type SummaryCoverage struct {
	Runs      int                       `json:"runs"`
	Schedules int                       `json:"schedules"`
	Faults    map[string]map[string]int `json:"faults"`
}

// SummaryFinding is one failure: the invariant it broke, the shape of the
// shrunk schedule (each step's target and kind, in order: no offsets, no
// magnitudes), the signature made of the two, its status, and the shrunk
// schedule with its seed (kept from the previous summary for a fixed
// finding).
type SummaryFinding struct {
	Signature string       `json:"signature"`
	Invariant string       `json:"invariant"`
	Shape     []string     `json:"shape"`
	Status    string       `json:"status"`
	Flaky     bool         `json:"flaky,omitempty"`
	Seed      int64        `json:"seed"`
	Schedule  sim.Schedule `json:"schedule"`
	// Report is the HTML report of this check's run of the finding,
	// relative to the summary's directory ("report.html"); "" when this
	// check wrote none for it.
	Report string `json:"report,omitempty"`
}

// NewFinding is the finding of invariant broken by schedule s, run with
// seed (status new until [Summary.Mark] says otherwise).
func NewFinding(invariant string, s sim.Schedule, seed int64, flaky bool) SummaryFinding {
	shape := make([]string, 0, len(s.Steps))
	for _, st := range s.Steps {
		k := "<nil>"
		if st.Fault != nil {
			k = string(st.Fault.Kind())
		}
		shape = append(shape, st.Target+" "+k)
	}
	return SummaryFinding{Signature: invariant + " | " + strings.Join(shape, "; "), Invariant: invariant, Shape: shape,
		Status: StatusNew, Flaky: flaky, Seed: seed, Schedule: s}
}

// Mark sets each finding's status against prev (nil: no earlier summary):
// new, still failing, or regressed (fixed in prev); and adds prev's
// findings that no longer fail as fixed (a fixed one stays fixed in
// later summaries, so that its return is marked regressed). With explored
// false (the check stopped before exploring), prev's findings that did
// not show are carried with their status unchanged.
func (s *Summary) Mark(prev *Summary, explored bool) {
	old := map[string]SummaryFinding{}
	if prev != nil {
		for _, f := range prev.Findings {
			old[f.Signature] = f
		}
	}
	seen := map[string]bool{}
	for i, f := range s.Findings {
		seen[f.Signature] = true
		switch p, ok := old[f.Signature]; {
		case !ok:
			s.Findings[i].Status = StatusNew
		case p.Status == StatusFixed:
			s.Findings[i].Status = StatusRegressed
		default:
			s.Findings[i].Status = StatusStillFailing
		}
	}
	if prev == nil {
		return
	}
	for _, f := range prev.Findings {
		if seen[f.Signature] {
			continue
		}
		seen[f.Signature] = true
		f.Report = "" // a report of this check's runs only
		if explored {
			f.Status = StatusFixed
		}
		s.Findings = append(s.Findings, f)
	}
}

// SummaryPath is the summary file of a check writing into dir (default
// testdata/shakedown/<test name>).
func SummaryPath(test, dir string) string {
	if dir == "" {
		dir = filepath.Join("testdata", "shakedown", SafeName(test))
	}
	return filepath.Join(dir, "summary.json")
}

// ReadSummary reads the summary at path; it returns nil and no error when
// there is none. A summary of another schema version is an error.
func ReadSummary(path string) (*Summary, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read summary: %w", err)
	}
	var s Summary
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("read summary %s: %w", path, err)
	}
	if s.Version != SummaryVersion {
		return nil, fmt.Errorf("read summary %s: schema version %d, not %d", path, s.Version, SummaryVersion)
	}
	return &s, nil
}

// WriteSummary marks s against the summary at path (if one is there and
// of this version) and writes s over it.
func WriteSummary(path string, s *Summary, explored bool) error {
	prev, err := ReadSummary(path)
	s.Mark(prev, explored)
	s.Version = SummaryVersion
	if s.Findings == nil {
		s.Findings = []SummaryFinding{}
	}
	if s.Invariants == nil {
		s.Invariants = []InvariantVerdict{}
	}
	slices.SortStableFunc(s.Findings, func(a, b SummaryFinding) int { return strings.Compare(a.Signature, b.Signature) })
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if eerr := enc.Encode(s); eerr != nil {
		return errors.Join(err, fmt.Errorf("write summary: %w", eerr))
	}
	if merr := os.MkdirAll(filepath.Dir(path), 0o755); merr != nil {
		return errors.Join(err, fmt.Errorf("write summary: %w", merr))
	}
	if werr := os.WriteFile(path, buf.Bytes(), 0o644); werr != nil {
		return errors.Join(err, fmt.Errorf("write summary: %w", werr))
	}
	return err
}
