// Command shakedown works on what resilience checks leave behind.
//
//	go run github.com/shakedown/shakedown/cmd/shakedown summary [-o merged.json] [-md] DIR...
//
// summary finds every summary.json under the DIRs (the summaries that
// each Check writes, version 1 of the schema in the properties package
// documentation: one per test and shard, as a CI job's artifacts hold
// them), merges those of one test (the shards of SHAKEDOWN_SHARD, or the
// same check run whole in several jobs) and writes the merged summary as
// JSON: to the -o file, or to standard output without -md. With -md it
// writes Markdown to standard output, for $GITHUB_STEP_SUMMARY: the
// verdict of each test, its coverage, its findings (new, still failing,
// fixed, regressed) and where each one's report is.
//
// The merged file is
//
//	{"version": 1, "tests": [ ... ]}
//
// with one element per test, sorted by name: a summary of schema version
// 1 (verdict, invariants, coverage, findings, corpus_added) whose counts
// are the sums of its summaries', with two fields added: "shards" (the
// SHAKEDOWN_SHARD of each summary merged, "" for a whole check) and
// "summaries" (their paths). A finding gains "shards" (where it was found)
// and "reports" (the paths of its HTML reports) in place of "report". The
// version stays 1: no field of a summary changes meaning.
//
// The verdict of a test is the worst of its summaries' (steady state
// broken, failed, flaky, held); a finding is failing when any summary
// says it fails (regressed before still failing before new), fixed only
// when every summary that holds it says fixed, and flaky only when it
// was flaky wherever it was found.
//
// The exit status is 0 when every test held and every invariant was
// judged in some summary (a shard's runs may have no evidence for an
// invariant that another's have: a sharded Check leaves that verdict to
// the merge), 1 when some test did not (the outputs are written all the
// same), and 2 for bad input: a DIR that is missing or holds no
// summary.json, a file that is not JSON or is of another schema version
// (an error naming it), or one shard given twice for a test.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	var nh notHeld
	switch {
	case errors.As(err, &nh):
		fmt.Fprintln(os.Stderr, "shakedown:", err)
		os.Exit(1)
	case err != nil:
		fmt.Fprintln(os.Stderr, "shakedown:", err)
		os.Exit(2)
	}
}

// notHeld is the verdict of a merge in which some test did not hold, or
// had an invariant that no shard judged: the exit status is 1.
type notHeld []string

func (n notHeld) Error() string {
	return "not held: " + strings.Join(n, "; ")
}

const usage = `usage: shakedown summary [-o merged.json] [-md] DIR...

Merges the summary.json files found under the DIRs (one per test and
shard) into one, written as JSON to -o (or standard output), and with -md
writes Markdown for $GITHUB_STEP_SUMMARY to standard output.
`

// run is the command with its arguments (the command name aside).
func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "summary" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return fmt.Errorf("unknown command %q", args[0])
	}
	fs := flag.NewFlagSet("summary", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	out := fs.String("o", "", "write the merged summary (JSON) to this file")
	md := fs.Bool("md", false, "write Markdown to standard output")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("summary: no DIR given")
	}
	m, err := mergeDirs(fs.Args())
	if err != nil {
		return err
	}
	data, err := m.encode()
	if err != nil {
		return err
	}
	switch {
	case *out != "":
		if err := os.WriteFile(*out, data, 0o644); err != nil {
			return fmt.Errorf("summary: %w", err)
		}
	case !*md:
		if _, err := stdout.Write(data); err != nil {
			return err
		}
	}
	if *md {
		if _, err := io.WriteString(stdout, m.markdown()); err != nil {
			return err
		}
	}
	if bad := m.notHeld(); len(bad) > 0 {
		return bad
	}
	return nil
}
