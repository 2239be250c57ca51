package properties

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shakedown/shakedown/properties/internal/search"
)

// Check explores schedules with [Explore] and fails t when one breaks an
// invariant. The failure message holds the findings of the shrunk
// schedule, how often it reproduced ("reproduced 3 of 3"), the schedule
// as JSON with its seed, and one command that replays it; the schedule
// file and the HTML report are written to cfg.Exploration.Dir (default
// testdata/shakedown/<test name>/).
//
// Check also fails t, saying which, when
//   - the system does not hold without faults: the fault-free baseline
//     broke an invariant (nothing is explored or shrunk then), or a run
//     broke one before its first fault took effect;
//   - a failure is flaky: its schedule broke, but did not break again
//     every time it was rerun (unless cfg.AllowFlaky); on a contended
//     machine, a flaky failure of timing bounds counts only when its
//     schedule broke more often than fault-free runs beside it (see the
//     package documentation, "The path of a check");
//   - an invariant had no evidence in any run (say, FailFast when no op
//     ever failed during a fault), or its latency bound is too tight to
//     judge on this machine (within the baseline's noise): a check that
//     never judged is not a pass;
//   - runs went missing (a run that panicked is a finding; one rapid
//     swallowed is an error).
//
// A failure that reproduced is believed only if a fault-free control run
// right beside it (real runs only) does not explain it: when the control
// breaks the same invariants, or has their bounds inside its noise floor,
// the machine got slower, and the failure is Unjudged with that reason
// (logged, written to summary.json, and failing t only when its
// invariants were judged in no other run).
//
// Every Check logs the baseline's figures, a coverage line and the time
// the baseline and the confirmations took.
//
// After the baseline and before exploring, Check replays the test's
// regression corpus, as Go's fuzzing replays testdata/fuzz: the schedule
// file of its last failure and every schedule file in the corpus folder
// beside it (Exploration.Dir/corpus/*.json, a file Check wrote or a bare
// {"steps":[...]}). One that breaks is a failure of the Check, shrunk and
// reported as others; one that holds counts in the coverage line. A
// corpus schedule that aims at a target the World (Bounds.Targets) lacks
// is an error before any run. Explore replays it too. Each Check writes
// summary.json beside them (see the package documentation).
//
// rapid keeps its own record of the failing draw under
// testdata/rapid/<test name>/ and tries it first on the next run, so a
// failure reappears at once until it is fixed; the schedule file is the
// record that outlives changes to the generator or its bounds.
//
// With SHAKEDOWN_REPLAY set to a schedule file, Check runs exactly that
// schedule once and judges it (see [Replay]).
//
// The number of schedules explored is cfg.Iterations, overridden by
// SHAKEDOWN_ITERATIONS. rapid v1.3.0 has no per-test setting for it, so
// Explore counts iterations itself and turns away rapid's draws beyond the
// bound. rapid reads the test's deadline only from a *testing.T it is given
// directly; Explore does the same itself: it starts no run that cannot end
// before the deadline, keeping time for shrinking.
func Check(t *testing.T, cfg Config) {
	t.Helper()
	check(t, cfg)
}

// check is Check on any testing.TB (the package's tests record what it
// reports).
func check(t testing.TB, cfg Config) {
	t.Helper()
	if path := os.Getenv(EnvReplay); path != "" {
		replay(t, cfg, path)
		return
	}
	res, err := explore(t, cfg, true)
	if res != nil {
		t.Log("shakedown: " + res.Coverage.String())
		t.Log("shakedown: overhead: " + res.over.String())
		t.Log("shakedown: time: " + res.cost.String(res.Elapsed))
		if res.Stopped != "" {
			t.Logf("shakedown: stopped early: %s", res.Stopped)
		}
	}
	if err != nil {
		t.Fatalf("shakedown: %v", err)
	}
	defer summarize(t, cfg, res)
	if res.Steady != nil {
		reportSteady(t, cfg, res)
		if res.Steady == res.Baseline && (res.Baseline.confirmed() || !cfg.AllowFlaky) {
			return // nothing was explored
		}
	}
	if (res.Runs == 0 || res.Coverage.Runs == 0) && !sharded() { // a shard may have no iteration: the merged summary judges
		t.Errorf("shakedown: no schedule was run, so nothing was checked: %s", res.Stopped)
		return
	}
	if res.Failure != nil {
		reportFailure(t, cfg, res)
	}
	for _, it := range res.flaky {
		t.Logf("shakedown: also flaky (broke, then again in %d of %d reruns%s): %s", it.Reproduced, it.Reruns, pressures(it), oneLineOr(it.Schedule))
	}
	for _, sl := range res.slower {
		t.Logf("shakedown: UNJUDGED, not Broken (broke, reproduced %d of %d, then the machine explained it): %s", sl.it.Reproduced, sl.it.Reruns, sl.reason)
	}
	var un []string
	for _, name := range res.Coverage.Unjudged() {
		if why, ok := res.tight[name]; ok {
			t.Errorf("shakedown: %s: %s", name, why)
			continue
		}
		un = append(un, name)
	}
	if len(un) > 0 {
		report := t.Errorf
		if res.Failure != nil || res.Steady != nil || sharded() {
			report = t.Logf // the failure says enough; the merged summary judges the shards' evidence
		}
		report("shakedown: no evidence in any of %d runs for: %s\n(widen the bounds, lengthen the cooldown, or check that the samplers these invariants read are configured)",
			res.Coverage.Runs, strings.Join(un, "; "))
	}
}

// reportSteady fails t (or logs, for a flaky steady state that
// cfg.AllowFlaky allows) with what broke without faults.
func reportSteady(t testing.TB, cfg Config, res *Result) {
	t.Helper()
	it := res.Steady
	var b strings.Builder
	flaky := false
	if it == res.Baseline {
		fmt.Fprintf(&b, "shakedown: the system does not hold without faults: the fault-free baseline run broke an invariant, and broke again in %d of %d more fault-free runs", it.Reproduced, it.Reruns)
		if flaky = !it.confirmed(); flaky {
			b.WriteString(" (flaky)")
		}
		b.WriteString(". Nothing was explored or shrunk: fix the steady state first.\n")
	} else {
		flaky = res.Coverage.Steady < res.Coverage.Runs
		fmt.Fprintf(&b, "shakedown: the system does not hold without faults: in %d of %d runs an invariant broke before the first fault took effect", res.Coverage.Steady, res.Coverage.Runs)
		if res.Baseline != nil && !steady(res.Baseline) {
			b.WriteString(" (the fault-free baseline held: flaky)")
		}
		fmt.Fprintf(&b, "; the schedule is not to blame. The first such run (seed %d, %s):\n", it.Seed, oneLineOr(it.Schedule))
	}
	writeFindings(&b, it.Steady)
	report := t.Error
	if flaky && cfg.AllowFlaky {
		report = t.Log
	}
	report(strings.TrimSuffix(b.String(), "\n"))
}

func writeFindings(b *strings.Builder, fs Findings) {
	for _, f := range fs {
		if f.Verdict == Broken {
			b.WriteString("    " + strings.ReplaceAll(f.Err.Error(), "\n", "\n    ") + "\n")
		}
	}
}

func reportFailure(t testing.TB, cfg Config, res *Result) {
	t.Helper()
	it := res.Failure
	data, replay, reportPath := SaveFailure(t, cfg.Dir, it)
	var b strings.Builder
	report := t.Error
	switch {
	case res.Flaky:
		fmt.Fprintf(&b, "shakedown: FLAKY: an invariant broke, but the schedule broke again in only %d of %d reruns (it broke in %d of %d runs%s); it is not shrunk",
			it.Reproduced, it.Reruns, it.Reproduced+1, it.Reruns+1, pressures(it))
		if cfg.AllowFlaky {
			report = t.Log
			b.WriteString(" (Exploration.AllowFlaky: not a test failure)")
		} else {
			b.WriteString(" (set Exploration.AllowFlaky to log it instead of failing)")
		}
		b.WriteString(":\n")
	default:
		fmt.Fprintf(&b, "shakedown: an invariant broke after %d iterations; reproduced %d of %d; shrunk in %v (%d runs, %d cached verdicts), %s:\n",
			res.Iterations, it.Reproduced, it.Reruns, res.Shrinking.Round(time.Millisecond), res.Runs, res.CacheHits, res.Minimality())
	}
	writeFindings(&b, it.Findings)
	fmt.Fprintf(&b, "schedule (seed %d):\n%s\n", it.Seed, data)
	fmt.Fprintf(&b, "replay: %s\n", replay)
	fmt.Fprintf(&b, "report: %s", reportPath)
	report(b.String())
}

// SaveFailure writes a failing iteration's schedule file and HTML report
// into dir (default testdata/shakedown/<test name>), as Check does, and
// reports a write error on t. A suite that asserts with [Explore] that a
// configuration is caught calls it with Result.Failure. It returns the
// schedule file's bytes, the command that replays it and the report's
// path ("(not written)" when it could not be written).
func SaveFailure(t testing.TB, dir string, it *Iteration) (data []byte, replay, reportPath string) {
	t.Helper()
	return search.Save(t, dir, failureOf(it))
}

// failureOf is what is saved of an iteration.
func failureOf(it *Iteration) search.Failure {
	return search.Failure{Schedule: it.Schedule, Seed: it.Seed, History: it.History,
		Broken: findingNames(slices.Concat(it.Findings, it.Steady), Broken), Held: findingNames(it.Findings, Held)}
}

func findingNames(fs []Finding, v Verdict) []string {
	var out []string
	for _, f := range fs {
		if f.Verdict == v {
			out = append(out, f.Invariant)
		}
	}
	return out
}
