package properties

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/shakedown/shakedown/properties/internal/search"
	"github.com/shakedown/shakedown/sim"
)

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
// part. The error is for what made the run impossible (a mistake in the
// check, a failed reset, an invalid schedule, a schedule that cannot end
// before the test's deadline), not for broken invariants: those are in
// the findings (and in Iteration.Steady, when they broke before the first
// fault took effect).
func RunSchedule(t *testing.T, cfg Config, s sim.Schedule, seed int64) (*Iteration, error) {
	t.Helper()
	return runSchedule(t, cfg, s, seed)
}

func runSchedule(t testing.TB, cfg Config, s sim.Schedule, seed int64) (*Iteration, error) {
	cfg, err := prepare(t, cfg)
	if err != nil {
		return nil, err
	}
	if err := fitsDeadline(t, cfg, "a run of the schedule", s.Horizon(), 0); err != nil {
		return nil, err
	}
	return runIn(t, cfg, s, seed, nil)
}

// Replay runs the schedule saved at path once (see [RunSchedule]) and
// fails t if an invariant breaks, writing the report next to the schedule
// file as replay.html. Check calls it when SHAKEDOWN_REPLAY is set. A
// schedule without steps fails: it replays no fault.
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
	if len(s.Steps) == 0 {
		t.Fatalf("shakedown: %s=%s: the schedule has no steps, so a replay would judge no fault (the fault-free baseline of every Check does that)", EnvReplay, path)
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
	if steady(it) {
		t.Errorf("shakedown: replay of %s: the system does not hold without faults: an invariant broke before the first fault took effect (%v):\n%s", path, it.Wall.Round(time.Millisecond), it.Steady)
	}
	if it.Findings.Broken() {
		t.Errorf("shakedown: replay of %s broke an invariant (%v):\n%s", path, it.Wall.Round(time.Millisecond), it.Findings)
		return
	}
	t.Logf("shakedown: replay of %s held (%v):\n%s", path, it.Wall.Round(time.Millisecond), it.Findings)
}

// Retarget returns s with its steps aimed at targets, for a schedule found
// in one world and run in another: found in simulation against sim
// endpoints, run against the harness dependencies of the real world. A
// step's target is renamed by names when names has it; otherwise, when no
// target has its name but one has its host part ("db" for "db:5432", as
// sim endpoints are often named after the address a client dials), that
// one. Names without a target are errors, and so is a step whose fault the
// target does not take: the result is validated against targets.
func Retarget(s sim.Schedule, targets []sim.Target, names map[string]string) (sim.Schedule, error) {
	have := map[string]bool{}
	for _, t := range targets {
		if t != nil {
			have[t.Name()] = true
		}
	}
	out := sim.Schedule{Steps: slices.Clone(s.Steps)}
	var errs []error
	for i := range out.Steps {
		st := &out.Steps[i]
		name := st.Target
		switch to, ok := names[name]; {
		case ok:
			name = to
		case !have[name]:
			if host, _, err := net.SplitHostPort(name); err == nil && have[host] {
				name = host
			}
		}
		if !have[name] {
			errs = append(errs, fmt.Errorf("step %d (%s): no target named %q among %v (map it with names)", i, st, name, targetNames(targets)))
			continue
		}
		st.Target = name
	}
	if err := errors.Join(errs...); err != nil {
		return sim.Schedule{}, fmt.Errorf("properties: retarget schedule: %w", err)
	}
	if err := out.Validate(targets); err != nil {
		return sim.Schedule{}, fmt.Errorf("properties: retarget schedule: %w", err)
	}
	return out, nil
}

func targetNames(targets []sim.Target) []string {
	var out []string
	for _, t := range targets {
		if t != nil {
			out = append(out, t.Name())
		}
	}
	slices.Sort(out)
	return out
}

// ReplayOn runs the schedule saved at path once, with the seed it was
// saved with, against the targets of cfg.World, and returns the
// iteration: its findings say whether the invariants hold there too. It is
// the one call that takes a schedule a simulated Check found (and saved as
// testdata/shakedown/<test>/schedule.json) to the real dependencies of a
// harness.Env, through real clients:
//
//	env := harness.New(t)
//	db := env.Postgres("db")
//	it, err := properties.ReplayOn(t, properties.Config{
//		World:      realWorld(db),   // the same ops, through a real client
//		Reset:      env.Reset,
//		Invariants: invariants,      // the same invariants
//	}, "testdata/shakedown/TestSimulated/schedule.json", nil)
//
// The steps' targets are renamed as [Retarget] does (names may be nil);
// ReplayOn builds one World first to learn them, and releases what it
// registered with t.Cleanup at once. Unlike [Replay] it does not fail t
// when an invariant breaks, so a test can assert that a failure found in
// simulation is real, or that a fix holds against the real thing; the
// error is for what made the run impossible (a bad file, a name with no
// target, a failed reset).
func ReplayOn(t *testing.T, cfg Config, path string, names map[string]string) (*Iteration, error) {
	t.Helper()
	s, seed, hasSeed, err := LoadSchedule(path)
	if err != nil {
		return nil, err
	}
	if cfg.Simulate {
		return nil, errors.New("properties: ReplayOn replays against the real world; this Config simulates (use Replay or RunSchedule for that)")
	}
	if cfg.World == nil {
		return nil, errors.New("properties: ReplayOn: Config.World is nil")
	}
	sc := &scope{TB: t}
	targets := cfg.World(sc).Targets
	sc.cleanup()
	s, err = Retarget(s, targets, names)
	if err != nil {
		return nil, fmt.Errorf("properties: replay %s: %w", path, err)
	}
	if !hasSeed {
		seed = runSeed(cfg.Seed, s)
	}
	t.Logf("shakedown: replaying %s (seed %d) against %v:\n%s", path, seed, targetNames(targets), s)
	return runSchedule(t, cfg, s, seed)
}
