package properties

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shakedown/shakedown/properties/internal/search"
	"github.com/shakedown/shakedown/sim"
)

// Environment variables Check reads.
const (
	// EnvIterations bounds the iterations of every Check in the process,
	// overriding Exploration.Iterations: SHAKEDOWN_ITERATIONS=50 go test ...
	EnvIterations = search.EnvIterations
	// EnvReplay names a schedule file (one Check wrote, or one written by
	// hand); Check then runs exactly that schedule once instead of
	// exploring.
	EnvReplay = search.EnvReplay
)

// DefaultIterations is the number of schedules Check tries when neither
// Exploration.Iterations nor SHAKEDOWN_ITERATIONS says otherwise.
const DefaultIterations = 10

// Config is what Check explores and what it checks. World and Invariants
// are required; every other field has a documented default.
type Config struct {
	// World builds what one run needs, afresh for every run: the targets
	// schedules aim at (such as a harness.Env's dependencies), the
	// clients under test with their workload, and the samplers (and,
	// simulated, the sim.Network with its fakes too). A client that one
	// run wedged (a pool whose connections hang forever) then cannot fail
	// the next run, which shrinking needs. What World registers with
	// t.Cleanup runs when the run is over. Clients that can serve every
	// run are built once and given with [Shared].
	World func(t testing.TB) sim.World
	// Reset runs before every run, before World: harness.Env's Reset
	// (every fault cleared, stopped nodes started, readiness awaited), or
	// a function that also resets state of one's own. Nil resets nothing.
	// A simulated run needs none: its World is new.
	Reset func(ctx context.Context) error
	// Invariants are judged after every run.
	Invariants []Invariant
	// Bounds bound the drawn schedules. Bounds.Targets defaults to
	// Aim of the World's targets.
	Bounds Bounds
	// Settings are passed to sim.Run (see sim.Settings). Cooldown is the
	// time after the last heal that Recovery and the After window get to
	// see; Settle bounds the wait for the quiet reading that PoolReleased
	// and NoGoroutineLeak judge.
	sim.Settings
	// Exploration says how many schedules are explored, from which seed,
	// how a failure is confirmed and shrunk, and where it is written.
	Exploration
	// Simulate makes every run a simulated one, in its own
	// testing/synctest bubble and in virtual time, on a World built
	// inside that bubble (a sim.Network, its fakes, the clients). rapid
	// itself runs outside the bubbles, in real time, so a run costs
	// microseconds of its time whatever the schedule's length.
	Simulate bool
}

// Exploration is how Check explores: every zero value is a working
// default.
//
//	cfg.Exploration = properties.Exploration{Iterations: 3, Reproduce: 5}
type Exploration struct {
	// Iterations is the most schedules explored before shrinking
	// (default DefaultIterations; SHAKEDOWN_ITERATIONS overrides it).
	// rapid's own -rapid.checks (default 100, 20 with -short) is an upper
	// bound too: on schedules, or, simulated, on batches of 8 of them.
	Iterations int
	// Seed is the base of every run's seed: a run's seed is derived from
	// Seed and its schedule, so a schedule always runs with the same seed.
	Seed int64
	// ShrinkTime bounds rapid's shrinking of a failure (default: as long
	// as -rapid.shrinktime allows, 30s by default; raise that flag for
	// real dependencies, where a run takes seconds). A pass of
	// shakedown's own then takes the schedule to a 1-minimal one (see
	// [Minimize]); that pass is bounded by a count of runs and by the
	// test's deadline, not by ShrinkTime, so that a busy machine does
	// not leave the result short of 1-minimal.
	ShrinkTime time.Duration
	// Reproduce is how many times a schedule that broke an invariant is
	// run again before it is believed (default 3; negative: never). One
	// that does not break again every time is flaky: it is reported with
	// its rate and its schedule, and not shrunk. While shrinking, a
	// candidate that breaks is run once more and counts as failing only
	// if it breaks again, and the shrunk schedule is run again until it
	// has been Reproduce times; the report says "reproduced k of n".
	Reproduce int
	// AllowFlaky makes a flaky failure (a schedule that broke but did not
	// break again every time it was rerun, or a steady state that broke
	// only in some runs) a log line instead of a failed test.
	AllowFlaky bool
	// Parallel is how many simulated runs are made at once, each in a
	// testing/synctest bubble of its own (default 1: one at a time;
	// runtime.GOMAXPROCS(0) for every core). A simulated search draws
	// its schedules in batches of 8 whatever Parallel is and judges each
	// batch in order, so a seed finds the same failure with any value;
	// with Parallel > 1 a batch's runs, a failure's confirming runs and
	// the candidates of the 1-minimal pass go side by side. World, Reset
	// and the Invariants are then called from several goroutines at
	// once, and a run must not share state with another: not with a
	// logs.Capture built outside World and read by the invariants, nor
	// with process-wide settings (a global OpenTelemetry provider,
	// slog.SetDefault). Real runs, which share their dependencies, always
	// go one at a time.
	Parallel int
	// Dir is the test's directory of schedules (default
	// testdata/shakedown/<test name>): Check writes a failing schedule
	// (schedule.json), its report (report.html) and every run's summary
	// (summary.json) there, and replays schedule.json and corpus/*.json
	// from there before exploring.
	Dir string
}

// defaultReproduce is Exploration.Reproduce's default.
const defaultReproduce = 3

// reproduce is the number of confirming runs Exploration asks for.
func (e Exploration) reproduce() int {
	switch {
	case e.Reproduce == 0:
		return defaultReproduce
	case e.Reproduce < 0:
		return 0
	}
	return e.Reproduce
}

// Shared is the World of clients that can serve every run: built once by
// the test, and handed to every run as it is.
//
//	cfg.World = properties.Shared(sim.World{Targets: ..., Workload: ..., Samplers: ...})
//
// Prefer a World built per run where a run can wedge a client (a pool of
// connections that hang), and never share one in a simulated Config,
// whose every run has a bubble of its own.
func Shared(w sim.World) func(testing.TB) sim.World {
	return func(testing.TB) sim.World { return w }
}

func (c Config) validate() (Config, error) {
	var errs []error
	if c.World == nil {
		errs = append(errs, errors.New("properties: Config.World is nil: it builds the targets, workload and samplers of a run (properties.Shared for clients that serve every run)"))
	}
	if len(c.Invariants) == 0 {
		errs = append(errs, errors.New("properties: Config.Invariants is empty"))
	}
	for i, inv := range c.Invariants {
		if inv == nil {
			errs = append(errs, fmt.Errorf("properties: Config.Invariants[%d] is nil", i))
		}
	}
	if c.Iterations < 0 {
		errs = append(errs, fmt.Errorf("properties: Exploration.Iterations = %d is negative", c.Iterations))
	}
	if c.Parallel < 0 {
		errs = append(errs, fmt.Errorf("properties: Exploration.Parallel = %d is negative (0 or 1: one simulated run at a time)", c.Parallel))
	}
	if c.ShrinkTime < 0 {
		errs = append(errs, fmt.Errorf("properties: Exploration.ShrinkTime = %v is negative", c.ShrinkTime))
	}
	if n, ok, err := search.Iterations(); err != nil {
		errs = append(errs, err)
	} else if ok {
		c.Iterations = n
	}
	if c.Iterations == 0 {
		c.Iterations = DefaultIterations
	}
	return c, errors.Join(errs...)
}

// world is what a check learns of its World before any run: the names of
// its targets, op kinds and samplers.
type world struct {
	targets         []sim.Target
	kinds, samplers []string
	targetNames     []string
}

func learn(w sim.World) world {
	out := world{targets: w.Targets, kinds: []string{}, samplers: []string{}, targetNames: []string{}}
	for _, t := range w.Targets {
		if t != nil {
			out.targetNames = append(out.targetNames, t.Name())
		}
	}
	for _, k := range w.Workload.Kinds {
		out.kinds = append(out.kinds, k.Name)
	}
	for _, s := range w.Samplers {
		if s != nil {
			out.samplers = append(out.samplers, s.Name())
		}
	}
	return out
}

// check returns the mistakes of the check that show before any run: a
// World without targets or op kinds, bounds that name targets the World
// lacks or faults they do not take, invariants with bad parameters or
// that name kinds, targets or samples the World lacks, and windows the
// cooldown can never fill.
func (w world) check(cfg Config) []error {
	var errs []error
	if len(w.targets) == 0 {
		errs = append(errs, errors.New("properties: the World has no targets: sim.World.Targets is empty"))
	}
	for i, t := range w.targets {
		if t == nil {
			errs = append(errs, fmt.Errorf("properties: target %d is nil", i))
		}
	}
	if len(w.kinds) == 0 {
		errs = append(errs, errors.New("properties: the workload has no op kinds: nothing would be judged"))
	}
	for i, tk := range cfg.Bounds.Targets {
		t := w.target(tk.Name)
		if t == nil {
			if tk.Name != "" {
				errs = append(errs, fmt.Errorf("properties: Bounds.Targets[%d] names target %q, but the World has none of that name (it has %v)", i, tk.Name, w.targetNames))
			}
			continue
		}
		errs = append(errs, checkWorldMembers(i, tk, t)...)
		for _, k := range tk.Kinds {
			if (k.IsLink() || k.IsNode() || k.IsNetwork() || k.IsHTTP() || k.IsDNS()) && !t.Supports(k) {
				errs = append(errs, fmt.Errorf("properties: Bounds.Targets[%d]: target %q does not take %s faults (it takes %v)", i, tk.Name, k, Aim([]sim.Target{t})[0].Kinds))
			}
		}
	}
	for _, inv := range cfg.Invariants {
		if inv == nil {
			continue // Config.validate says so
		}
		errs = append(errs, checkInvariant(inv, w.kinds, w.targetNames, w.samplers)...)
		errs = append(errs, checkWindows(inv, cfg.Settings)...)
	}
	return errs
}

func (w world) target(name string) sim.Target {
	for _, t := range w.targets {
		if t != nil && t.Name() == name {
			return t
		}
	}
	return nil
}

// checkWindows returns an error for an invariant whose window the
// cooldown can never fill: Recovery needs ops that start after the last
// heal plus Within, and the After window needs a cooldown at all.
func checkWindows(inv Invariant, s sim.Settings) []error {
	cooldown := s.CooldownOrDefault()
	var w sim.Phase
	switch v := inv.(type) {
	case Recovery:
		if v.Within >= cooldown {
			return []error{fmt.Errorf("properties: %s: Within = %v is not shorter than the cooldown (%v): when the last fault heals at the end of a schedule, no op starts after the recovery deadline, so the invariant could never be judged; lengthen Settings.Cooldown beyond Within", inv.Name(), v.Within, cooldown)}
		}
		return nil
	case LatencyQuantile:
		w = v.Window
	case MaxLatency:
		w = v.Window
	case ErrorRate:
		w = v.Window
	default:
		return nil
	}
	if w == sim.After && cooldown == 0 {
		return []error{fmt.Errorf("properties: %s: judges the time after the last heal, but the run has no cooldown (Settings.Cooldown is negative): give it one", inv.Name())}
	}
	return nil
}

// prepare validates cfg and, when it has a World, builds one (in a bubble
// of its own when simulated) to learn its targets (for Bounds.Targets),
// kinds and samplers, and checks the check against them.
func prepare(t testing.TB, cfg Config) (Config, error) {
	cfg, err := cfg.validate()
	if err != nil || cfg.World == nil {
		return cfg, err
	}
	var errs []error
	probe := func(t testing.TB) {
		defer func() {
			if p := recover(); p != nil {
				errs = append(errs, fmt.Errorf("properties: Config.World panicked when built to learn its targets: %v\n%s", p, debug.Stack()))
			}
		}()
		w := learn(cfg.World(t))
		if len(cfg.Bounds.Targets) == 0 {
			cfg.Bounds.Targets = Aim(w.targets)
		}
		errs = w.check(cfg)
	}
	if cfg.Simulate {
		tt, ok := t.(*testing.T)
		if !ok {
			return cfg, fmt.Errorf("properties: Config.Simulate needs a *testing.T (for testing/synctest), not %T", t)
		}
		synctest.Test(tt, func(st *testing.T) { probe(st) })
	} else {
		sc := &scope{TB: t}
		probe(sc)
		sc.cleanup()
	}
	if err := cfg.Bounds.Validate(); err != nil {
		errs = append(errs, err)
	}
	return cfg, errors.Join(errs...)
}

// fitsDeadline returns an error when a run of a schedule with the given
// horizon (and the runs before it, of the given total length) cannot end
// before the test's deadline.
func fitsDeadline(t testing.TB, cfg Config, what string, horizon, before time.Duration) error {
	deadline := search.Deadline(t)
	if deadline.IsZero() {
		return nil
	}
	need := before + runLength(cfg, horizon)
	if left := time.Until(deadline); need > left {
		return fmt.Errorf("properties: %s (horizon %v, cooldown %v) cannot end before the test's deadline (%v left): raise go test's -timeout, or shorten the schedule or the cooldown",
			what, horizon, cfg.CooldownOrDefault(), left.Round(time.Millisecond))
	}
	return nil
}

// runLength is the least a run of a schedule with the given horizon
// takes, with a margin for the reset, the drain and the judging.
func runLength(cfg Config, horizon time.Duration) time.Duration {
	const margin = 2 * time.Second
	n := horizon + cfg.CooldownOrDefault() + margin
	if n < horizon { // overflow
		return math.MaxInt64
	}
	return n
}

// scope is the testing.TB a World is built with outside a bubble: its
// Cleanup functions run when the run is over, not when the test is.
type scope struct {
	testing.TB
	mu  sync.Mutex
	fns []func()
}

func (s *scope) Cleanup(f func()) {
	s.mu.Lock()
	s.fns = append(s.fns, f)
	s.mu.Unlock()
}

func (s *scope) cleanup() {
	s.mu.Lock()
	fns := s.fns
	s.fns = nil
	s.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}
