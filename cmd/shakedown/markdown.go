package main

import (
	"fmt"
	"slices"
	"strings"
)

// markdown is the merged summary for $GITHUB_STEP_SUMMARY: a table of
// the tests, then each test's invariants, coverage and findings.
func (m *merged) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## shakedown: %d %s, %d not held\n\n", len(m.Tests), plural(len(m.Tests), "test", "tests"), m.countNotHeld())
	b.WriteString("| test | verdict | shards | runs | schedules | findings |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, t := range m.Tests {
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %s |\n", cell(t.Test), t.verdictText(), cell(shardList(t.Shards)),
			t.Coverage.Runs, t.Coverage.Schedules, cell(statusCounts(t.Findings)))
	}
	for _, t := range m.Tests {
		fmt.Fprintf(&b, "\n### %s: %s\n\n", t.Test, t.verdictText())
		if len(t.Invariants) > 0 {
			b.WriteString("| invariant | verdict | runs judged | runs broken |\n| --- | --- | --- | --- |\n")
			for _, inv := range t.Invariants {
				fmt.Fprintf(&b, "| %s | %s | %d | %d |\n", cell(inv.Name), inv.Verdict, inv.Judged, inv.Broken)
			}
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "Coverage: %d runs, %d schedules explored; faults that took effect: %s.\n", t.Coverage.Runs, t.Coverage.Schedules, faultList(t.Coverage.Faults))
		if len(t.Findings) > 0 {
			b.WriteString("\n| status | finding | found in | report |\n| --- | --- | --- | --- |\n")
			for _, f := range t.Findings {
				status := strings.ReplaceAll(f.Status, "_", " ")
				if f.Flaky {
					status += " (flaky)"
				}
				found, report := "", ""
				if f.Status != statusFixed {
					found = shardList(f.Shards)
					report = "(none written)"
				}
				if len(f.Reports) > 0 {
					report = "`" + strings.Join(f.Reports, "`, `") + "`"
				}
				fmt.Fprintf(&b, "| %s | `%s` | %s | %s |\n", status, cell(f.Signature), cell(found), cell(report))
			}
		}
		if len(t.CorpusAdded) > 0 {
			fmt.Fprintf(&b, "\nNew corpus schedules, to commit: `%s`\n", strings.Join(t.CorpusAdded, "`, `"))
		}
	}
	return b.String()
}

// verdictText is the test's verdict in words: a test that held with an
// invariant no run judged has no evidence.
func (t mergedTest) verdictText() string {
	switch t.Verdict {
	case "held":
		if un := t.unjudged(); len(un) > 0 {
			return fmt.Sprintf("**NO EVIDENCE** for %d %s", len(un), plural(len(un), "invariant", "invariants"))
		}
		return "held"
	case "steady_state_broken":
		return "**FAILED** (broke without faults)"
	case "flaky":
		return "**FLAKY**"
	}
	return "**FAILED**"
}

// shardList names the shards of a list ("whole" for a whole check).
func shardList(shards []string) string {
	names := make([]string, len(shards))
	for i, s := range shards {
		names[i] = s
		if s == "" {
			names[i] = "whole"
		}
	}
	return strings.Join(names, ", ")
}

// statusCounts says how many findings have each status: "1 new, 2 fixed".
func statusCounts(fs []mergedFinding) string {
	n := map[string]int{}
	for _, f := range fs {
		n[f.Status]++
	}
	var parts []string
	for _, s := range []string{statusNew, statusRegressed, statusStillFailing, statusFixed} {
		if n[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[s], strings.ReplaceAll(s, "_", " ")))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// faultList is the faults by target and kind: "db: down 2, latency 3; cache: pause 1".
func faultList(faults map[string]map[string]int) string {
	var targets []string
	for t := range faults {
		targets = append(targets, t)
	}
	slices.Sort(targets)
	var parts []string
	for _, t := range targets {
		var kinds []string
		for k := range faults[t] {
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
		for i, k := range kinds {
			kinds[i] = fmt.Sprintf("%s %d", k, faults[t][k])
		}
		parts = append(parts, t+": "+strings.Join(kinds, ", "))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}

// cell escapes the pipes of a table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// countNotHeld is the number of tests that did not hold or lack evidence.
func (m *merged) countNotHeld() int {
	n := 0
	for _, t := range m.Tests {
		if t.Verdict != "held" || len(t.unjudged()) > 0 {
			n++
		}
	}
	return n
}
