package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got), "%s differs (go test -update rewrites it)", path)
}

// TestSummaryGolden merges two shards' summaries of three tests (a
// sharded check that failed in one shard, a breaker check run whole in
// both, a flaky and a regressed finding of one signature) into the JSON
// and Markdown of testdata/merged.json and merged.md.
func TestSummaryGolden(t *testing.T) {
	out := filepath.Join(t.TempDir(), "merged.json")
	var stdout, stderr bytes.Buffer
	err := run([]string{"summary", "-o", out, "-md", "testdata/shards"}, &stdout, &stderr)
	var nh notHeld
	require.ErrorAs(t, err, &nh, "exit status 1: tests did not hold")
	require.Equal(t, notHeld{"TestCache failed", "TestCache: no evidence in any run for recovers within 1s", "TestResilience failed"}, nh)
	require.Empty(t, stderr.String())
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	golden(t, "merged.json", data)
	golden(t, "merged.md", stdout.Bytes())

	var m merged
	require.NoError(t, json.Unmarshal(data, &m))
	require.Len(t, m.Tests, 3)
	byName := map[string]mergedTest{}
	for _, tt := range m.Tests {
		byName[tt.Test] = tt
	}
	r := byName["TestResilience"]
	require.Equal(t, "failed", r.Verdict, "the worst shard's")
	require.Equal(t, []string{"1/2", "2/2"}, r.Shards)
	require.Equal(t, 20, r.Coverage.Runs)
	require.Equal(t, 9, r.Coverage.Schedules)
	require.Equal(t, map[string]int{"latency": 11, "down": 1, "blackhole": 2}, r.Coverage.Faults["db"])
	require.Equal(t, invariant{Name: "p99 <= 300ms during faults", Verdict: "broken", Judged: 15, Broken: 4}, r.Invariants[0])
	require.Len(t, r.Findings, 2)
	require.Equal(t, statusFixed, r.Findings[0].Status, "fixed in every shard")
	require.Equal(t, statusNew, r.Findings[1].Status, "failing in one shard is failing")
	require.Equal(t, []string{"2/2"}, r.Findings[1].Shards)
	require.Equal(t, []string{filepath.Join("testdata", "shards", "shard-2", "checkout", "TestResilience", "report.html")}, r.Findings[1].Reports)
	c := byName["TestCache"]
	require.Equal(t, statusRegressed, c.Findings[0].Status)
	require.False(t, c.Findings[0].Flaky, "confirmed in one shard")
	require.Equal(t, int64(5), c.Findings[0].Seed, "the first failing occurrence's schedule")
	require.Equal(t, []string{"", ""}, byName["TestBreaker"].Shards, "run whole in both jobs")

	// Without -o and -md, the JSON goes to standard output.
	stdout.Reset()
	require.ErrorAs(t, run([]string{"summary", "testdata/shards"}, &stdout, &stderr), &nh)
	require.Equal(t, string(data), stdout.String())
}

// TestSummaryBadInput: each bad input is an error that names it.
func TestSummaryBadInput(t *testing.T) {
	empty := t.TempDir()
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"missing dir", []string{"summary", "testdata/nosuch"}, "testdata/nosuch"},
		{"no summary", []string{"summary", empty}, "no summary.json under " + empty},
		{"not a dir", []string{"summary", "testdata/merged.md"}, "testdata/merged.md is not a directory"},
		{"malformed", []string{"summary", "testdata/bad/malformed"}, "testdata/bad/malformed/summary.json: unexpected end of JSON input"},
		{"version", []string{"summary", "testdata/bad/version"}, "testdata/bad/version/summary.json: schema version 2, this command reads version 1"},
		{"verdict", []string{"summary", "testdata/bad/verdict"}, `testdata/bad/verdict/summary.json: field "verdict" is "passed"`},
		{"a shard twice", []string{"summary", "testdata/bad/twice"}, "testdata/bad/twice/a/summary.json and testdata/bad/twice/b/summary.json are both shard 1/2 of TestX"},
		{"good and bad", []string{"summary", "testdata/shards", "testdata/bad/version"}, "testdata/bad/version/summary.json"},
		{"no dir", []string{"summary", "-md"}, "no DIR given"},
		{"no command", nil, "no command given"},
		{"other command", []string{"merge", "testdata/shards"}, `unknown command "merge"`},
		{"bad flag", []string{"summary", "-x", "testdata/shards"}, "flag provided but not defined: -x"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(c.args, &stdout, &stderr)
			require.ErrorContains(t, err, c.want)
			require.Empty(t, stdout.String(), "nothing written on an error")
		})
	}
	t.Run("unwritable -o", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		err := run([]string{"summary", "-o", filepath.Join(t.TempDir(), "no", "such", "dir.json"), "testdata/shards"}, &stdout, &stderr)
		require.ErrorContains(t, err, "dir.json")
	})
}

// TestSummaryEvidenceAcrossShards: an invariant that one shard's runs
// have no evidence for and another's judge is judged; the merge holds
// (exit status 0).
func TestSummaryEvidenceAcrossShards(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.NoError(t, run([]string{"summary", "-md", "testdata/evidence"}, &stdout, &stderr))
	require.Contains(t, stdout.String(), "| TestEvidence | held | 1/2, 2/2 | 4 | 2 | none |")
	require.Contains(t, stdout.String(), "| fails fast | held | 2 | 0 |")
}
