package properties

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shakedown/shakedown/properties/internal/search"
	"github.com/shakedown/shakedown/sim"
)

// Check explores schedules with [Explore] and fails t when one breaks an
// invariant. The failure message holds the findings of the shrunk
// schedule, the schedule as JSON with its seed, and one command that
// replays it; the schedule file and the HTML report are written to
// cfg.Dir (default testdata/shakedown/<test name>/). Check also fails t
// when an invariant had no evidence in any run (say, FailFast when no op
// ever failed during a fault): a check that never judged is not a pass.
// Every Check logs a coverage line.
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
		if res.Stopped != "" {
			t.Logf("shakedown: stopped early: %s", res.Stopped)
		}
	}
	if err != nil {
		t.Fatalf("shakedown: %v", err)
	}
	if res.Runs == 0 {
		t.Errorf("shakedown: no schedule was run, so nothing was checked: %s", res.Stopped)
		return
	}
	if res.Failure != nil {
		reportFailure(t, cfg, res)
	}
	if un := res.Coverage.Unjudged(); len(un) > 0 {
		report := t.Errorf
		if res.Failure != nil {
			report = t.Logf // the failure says enough
		}
		report("shakedown: no evidence in any of %d runs for: %s\n(widen the bounds, lengthen the cooldown, or check that the samplers these invariants read are configured)",
			res.Coverage.Runs, strings.Join(un, "; "))
	}
}

func reportFailure(t testing.TB, cfg Config, res *Result) {
	t.Helper()
	it := res.Failure
	data, replay, reportPath := SaveFailure(t, cfg.Dir, it)
	var b strings.Builder
	switch {
	case res.Flaky:
		fmt.Fprintf(&b, "shakedown: an invariant broke after %d iterations, but the schedule did not fail again when rerun (flaky); it is not shrunk:\n", res.Iterations)
	default:
		fmt.Fprintf(&b, "shakedown: an invariant broke after %d iterations; shrunk in %v (%d runs, %d cached verdicts):\n",
			res.Iterations, res.Shrinking.Round(time.Millisecond), res.Runs, res.CacheHits)
	}
	for _, f := range it.Findings {
		if f.Verdict == Broken {
			b.WriteString("    " + strings.ReplaceAll(f.Err.Error(), "\n", "\n    ") + "\n")
		}
	}
	fmt.Fprintf(&b, "schedule (seed %d):\n%s\n", it.Seed, data)
	fmt.Fprintf(&b, "replay: %s\n", replay)
	fmt.Fprintf(&b, "report: %s", reportPath)
	t.Error(b.String())
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
		Broken: findingNames(it.Findings, Broken), Held: findingNames(it.Findings, Held)}
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

// SaveSchedule writes it's schedule and seed to path (creating its
// directory) and returns the JSON written.
func SaveSchedule(path, test string, it *Iteration) ([]byte, error) {
	return search.SaveSchedule(path, test, failureOf(it))
}

// LoadSchedule reads a file [SaveSchedule] wrote, or a bare schedule. The
// seed is zero and hasSeed false for a bare schedule.
func LoadSchedule(path string) (s sim.Schedule, seed int64, hasSeed bool, err error) {
	return search.LoadSchedule(path)
}

// RunSchedule runs schedule s once with the given seed, as one iteration
// of Check does (cfg.Reset, a fresh cfg.World, in a bubble of its own for
// a simulated Config), and judges cfg.Invariants; cfg.Iterations plays no
// part. The error is for what made the run impossible (a failed reset, an
// invalid schedule), not for broken invariants: those are in the
// findings.
func RunSchedule(t *testing.T, cfg Config, s sim.Schedule, seed int64) (*Iteration, error) {
	t.Helper()
	return runSchedule(t, cfg, s, seed)
}

func runSchedule(t testing.TB, cfg Config, s sim.Schedule, seed int64) (*Iteration, error) {
	cfg, err := prepare(t, cfg)
	if err != nil {
		return nil, err
	}
	return runIn(t, cfg, s, seed)
}

// Replay runs the schedule saved at path once (see [RunSchedule]) and
// fails t if an invariant breaks, writing the report next to the schedule
// file as replay.html. Check calls it when SHAKEDOWN_REPLAY is set.
func Replay(t *testing.T, cfg Config, path string) {
	t.Helper()
	replay(t, cfg, path)
}

func replay(t testing.TB, cfg Config, path string) {
	t.Helper()
	s, seed, hasSeed, err := LoadSchedule(path)
	if err != nil {
		t.Fatalf("shakedown: %s=%s: %v", EnvReplay, path, err)
	}
	if !hasSeed {
		seed = runSeed(cfg.Seed, s)
	}
	t.Logf("shakedown: replaying %s (seed %d):\n%s", path, seed, s)
	it, err := runSchedule(t, cfg, s, seed)
	if err != nil {
		t.Fatalf("shakedown: replay %s: %v", path, err)
	}
	if it.RunErr != nil {
		t.Logf("shakedown: run reported: %v", it.RunErr)
	}
	report := filepath.Join(filepath.Dir(path), "replay.html")
	if err := search.WriteReport(report, t.Name(), failureOf(it), search.ReplayCommand(t.Name(), path)); err != nil {
		t.Errorf("shakedown: %v", err)
	} else {
		t.Logf("shakedown: report: %s", report)
	}
	if it.Findings.Broken() {
		t.Errorf("shakedown: replay of %s broke an invariant (%v):\n%s", path, it.Wall.Round(time.Millisecond), it.Findings)
		return
	}
	t.Logf("shakedown: replay of %s held (%v):\n%s", path, it.Wall.Round(time.Millisecond), it.Findings)
}
