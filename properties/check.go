package properties

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"pgregory.net/rapid"

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
	// bound too.
	Iterations int
	// Seed is the base of every run's seed: a run's seed is derived from
	// Seed and its schedule, so a schedule always runs with the same seed.
	Seed int64
	// ShrinkTime bounds the time spent shrinking a failure: rapid's
	// shrinking has the first half, then a pass of shakedown's own takes
	// the schedule to a 1-minimal one (see [Minimize]) in the rest
	// (default: rapid as long as -rapid.shrinktime allows, 30s by
	// default, and the pass until the test's deadline; raise that flag
	// for real dependencies, where a run takes seconds).
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
	// Dir is where Check writes a failing schedule and its report
	// (default testdata/shakedown/<test name>).
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
		for _, k := range tk.Kinds {
			if (k.IsLink() || k.IsNode()) && !t.Supports(k) {
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

// Iteration is one run of one schedule and what the invariants said.
type Iteration struct {
	Schedule sim.Schedule
	Seed     int64
	History  *sim.History
	// Findings are the verdicts that belong to the schedule: what held,
	// broke or could not be judged. A run in which the framework missed
	// more than a tenth of the ops (not started on time, cut off by the
	// run's end) has every finding Unjudged, with that reason.
	Findings Findings
	// Steady are the invariants that broke without faults: in a run in
	// which no fault took effect, or with every violation beginning
	// before the first fault took effect (and the history up to that
	// moment breaking them too). They are not in Findings: the schedule
	// is not to blame.
	Steady Findings
	// RunErr is what sim.Run returned besides the history: faults that
	// did not apply or revert, panics in ops. It does not fail the
	// iteration by itself; a panic in an op is also a Broken finding.
	RunErr error
	// Wall is how long the iteration took, reset included.
	Wall time.Duration
	// Reruns is how many times the schedule was run again to confirm that
	// it breaks, and Reproduced how many of those broke again.
	Reruns, Reproduced int
}

// add adds a finding that is no invariant's (a panic, a deadlocked
// bubble): to Steady when no fault took effect in the run, to Findings
// otherwise.
func (it *Iteration) add(f Finding) {
	if _, faulted := firstFault(it.History); !faulted {
		it.Steady = append(it.Steady, f)
		return
	}
	it.Findings = append(it.Findings, f)
}

// confirmed reports whether every rerun of it broke again.
func (it *Iteration) confirmed() bool { return it.Reproduced == it.Reruns }

// Result is what [Explore] found.
type Result struct {
	// Failure is the shrunk failing iteration when some schedule broke an
	// invariant and broke it again every time it was rerun (nil when
	// none did): the smallest schedule found that still fails, with its
	// history and findings.
	Failure *Iteration
	// Flaky is true when Failure is a schedule that broke, but did not
	// break again every time it was rerun (Failure.Reproduced <
	// Failure.Reruns); it is not shrunk.
	Flaky bool
	// Baseline is the fault-free run every exploration opens with (nil
	// when it did not run), judged by the same invariants. It also
	// measures the machine: a latency bound within its noise is too
	// tight to judge and is not judged.
	Baseline *Iteration
	// Steady is the first run in which an invariant broke without faults
	// (see Iteration.Steady): the Baseline, when it broke (the
	// exploration stops there and nothing is shrunk; Reruns and
	// Reproduced count the fault-free runs that confirmed it), or a run
	// in which a violation began before the first fault took effect.
	Steady *Iteration
	// Iterations is the number of schedules explored before any failure
	// (or in all, when none failed); Runs counts every run, the baseline,
	// confirmations and shrinking included, and CacheHits the shrink
	// candidates that repeated a schedule already run and took its
	// verdict.
	Iterations, Runs, CacheHits int
	// Stopped says why the exploration stopped before the iteration
	// bound ("" if it did not): the test's deadline.
	Stopped string
	// Elapsed is the whole exploration; Shrinking the part after the
	// first failure.
	Elapsed, Shrinking time.Duration
	// Coverage counts what the runs exercised (the baseline aside).
	Coverage Coverage
	// Overhead is the runs' mean wall time beyond their schedules' own
	// length (horizon plus cooldown), relative to that length: 0.05 means
	// a run took 5% longer than its faults and recovery needed.
	Overhead float64
	// Rapid holds rapid's own report of a failure.
	Rapid []string

	over  overhead          // for Check's overhead line
	tight map[string]string // invariants too tight to judge here, and why
	cost  cost              // the wall time of baseline and confirmations
	flaky []*Iteration      // flaky failures seen besides Failure
}

// cost is the wall time an exploration spent on its baseline and on
// confirming failures, beside the rest.
type cost struct {
	Baseline, Confirm time.Duration
}

func (c cost) String(elapsed time.Duration) string {
	rest := elapsed - c.Baseline - c.Confirm
	pct := func(d time.Duration) string {
		if rest <= 0 {
			return "n/a"
		}
		return fmt.Sprintf("%+.1f%%", 100*float64(d)/float64(rest))
	}
	return fmt.Sprintf("%v in all; the fault-free baseline took %v (%s) and confirming failures %v (%s) beside the other runs' %v",
		elapsed.Round(time.Millisecond), c.Baseline.Round(time.Millisecond), pct(c.Baseline), c.Confirm.Round(time.Millisecond), pct(c.Confirm), rest.Round(time.Millisecond))
}

// Explore runs rapid over schedules drawn within cfg.Bounds: each
// iteration calls cfg.Reset, builds cfg.World, runs the schedule with its
// workload through sim.Run and judges cfg.Invariants. It returns what it
// found instead of failing t, so a test can assert that a fragile
// configuration is caught:
//
//	res, err := properties.Explore(t, cfg)
//	require.NoError(t, err)
//	require.NotNil(t, res.Failure, "a client without timeouts must fail")
//
// Before any schedule it runs one fault-free baseline, judged by the same
// invariants; when that breaks, the system does not hold without faults,
// and Explore returns at once with Result.Steady set. A schedule that
// breaks an invariant is rerun (Exploration.Reproduce) before it is
// believed and shrunk.
//
// The error is for what stopped the exploration itself: a bad Config (a
// mistake in the check is found before any run), a failed Reset, runs
// that went missing. t is used for logs, its name, its context and its
// deadline: a run is not started unless it can finish before the
// deadline.
func Explore(t *testing.T, cfg Config) (*Result, error) {
	t.Helper()
	return explore(t, cfg, false)
}

// explore is Explore; keepFailFile keeps the fail file rapid writes for a
// failure (Check keeps it, so the next run tries the failure first).
func explore(t testing.TB, cfg Config, keepFailFile bool) (*Result, error) {
	t.Helper()
	cfg, err := prepare(t, cfg)
	if err != nil {
		return nil, err
	}
	if !cfg.Simulate {
		// The baseline, then one run of the longest schedule.
		if err := fitsDeadline(t, cfg, "a run of the longest schedule the bounds allow, after the fault-free baseline", cfg.Bounds.withDefaults().Horizon, runLength(cfg, 0)); err != nil {
			return nil, err
		}
	}
	corpus, err := loadCorpus(t.Name(), cfg.Dir, cfg.Bounds)
	if err != nil {
		return nil, err
	}
	g, guide, err := schedules(cfg.Bounds)
	if err != nil {
		return nil, err
	}
	x := &explorer{t: t, cfg: cfg, gen: g, guide: guide, ctx: t.Context(), cache: map[string]*Iteration{}, tight: map[string]string{}, reproduce: cfg.reproduce()}
	x.deadline = search.Deadline(t)
	start := time.Now()
	var errs []string
	if x.baseline() {
		if !x.replayCorpus(corpus) {
			tb := search.NewCapture(t.Name(), x.ctx, t.Logf)
			before := search.FailFiles(t.Name())
			errs = search.DropExpected(search.Rapid(tb, x.prop))
			if x.fatal != nil || !keepFailFile {
				search.RemoveFailFile(search.FailFileOf(errs), before)
			}
		}
		x.minimize()
		x.finish()
	}
	res := &Result{Iterations: x.iterations, Runs: x.runs, CacheHits: x.hits, Stopped: x.stopped,
		Elapsed: time.Since(start), Coverage: x.cov, Overhead: x.over.ratio(), over: x.over, Rapid: errs,
		Baseline: x.base, Steady: x.steady, tight: x.tight, cost: x.cost}
	if x.fatal != nil {
		return res, x.fatal
	}
	switch {
	case x.first != nil:
		res.Shrinking = time.Since(x.shrinkStart)
		res.Failure = x.last
		res.flaky = x.flakies
	case len(x.flakies) > 0:
		res.Failure, res.Flaky, res.flaky = x.flakies[0], true, x.flakies[1:]
	}
	if err := x.missing(errs); err != nil {
		return res, err
	}
	return res, nil
}

// failMessage is the one message every failing iteration gives rapid:
// rapid takes a failure for the same failure only when message and stack
// match, and real runs differ in their numbers from one run to the next.
const failMessage = "shakedown: an invariant broke"

type explorer struct {
	guide     *guide // coverage guidance of the schedules drawn (see swarm.go)
	t         testing.TB
	cfg       Config
	gen       *rapid.Generator[sim.Schedule]
	ctx       context.Context
	deadline  time.Time
	reproduce int

	iterations  int
	runs, hits  int
	stopped     string
	fatal       error
	first, last *Iteration   // the confirmed failure, and the smallest shrunk one
	flakies     []*Iteration // failures that did not reproduce
	shrinkStart time.Time
	// cache holds the confirmed verdicts of schedules run while
	// shrinking: rapid tries many draws that decode to the same schedule.
	cache        map[string]*Iteration
	cov          Coverage
	over         overhead
	base, steady *Iteration
	baselining   bool // the runs under way are the baseline's
	tight        map[string]string
	cost         cost
}

// broke reports whether it broke an invariant that the schedule is to
// blame for; steady says whether it broke one without faults.
func broke(it *Iteration) bool  { return it.Findings.Broken() }
func steady(it *Iteration) bool { return len(it.Steady) > 0 }

// baseline runs the fault-free baseline and reports whether the
// exploration goes on: it does not when the baseline broke (and its
// breaking reproduced, or flaky failures are not allowed) or a run was
// impossible. It also measures the noise floor and sets aside the latency
// bounds inside it.
func (x *explorer) baseline() bool {
	start := time.Now()
	x.baselining = true
	defer func() { x.cost.Baseline += time.Since(start); x.baselining = false }()
	it := x.run(sim.Schedule{}, "baseline (no faults)")
	if it == nil {
		return false
	}
	x.base = it
	if steady(it) {
		x.confirm(it, x.reproduce, "baseline again", steady)
		x.steady = it
		if it.confirmed() || !x.cfg.AllowFlaky {
			return false
		}
	}
	floor := measure(it.History)
	x.t.Logf("shakedown: noise floor, without faults: %s", floor)
	for i, inv := range x.cfg.Invariants {
		if why := floor.tooTight(inv); why != "" {
			x.tight[inv.Name()] = why
			x.cfg.Invariants[i] = tooTight{Invariant: inv, reason: why}
		}
	}
	return true
}

// confirm runs it's schedule n more times and counts in it how many broke
// again (by the test bad).
func (x *explorer) confirm(it *Iteration, n int, what string, bad func(*Iteration) bool) {
	start := time.Now()
	defer func() {
		if !x.baselining {
			x.cost.Confirm += time.Since(start)
		}
	}()
	for i := range n {
		if !x.fits(it.Schedule.Horizon(), 1) {
			x.stopped = "the test's deadline cut a confirmation short"
			return
		}
		again := x.run(it.Schedule, fmt.Sprintf("%s (%d/%d)", what, i+1, n))
		if again == nil {
			return // fatal; recorded
		}
		it.Reruns++
		if bad(again) {
			it.Reproduced++
		}
	}
}

func (x *explorer) prop(rt *rapid.T) {
	if x.fatal != nil {
		x.skip(rt)
		return
	}
	var failed bool
	if x.first == nil {
		failed = x.search(rt)
	} else {
		failed = x.shrink(rt)
	}
	if failed {
		// One call site: rapid takes a failure for the same one only when
		// message and stack match.
		rt.Fatal(failMessage)
	}
}

// search is one iteration of the search for a failure. It reports whether
// the schedule failed, and failed again every time it was rerun.
func (x *explorer) search(rt *rapid.T) bool {
	if x.iterations >= x.cfg.Iterations {
		rt.SkipNow()
	}
	if !x.fits(x.cfg.Bounds.Horizon, 5) {
		x.stopped = fmt.Sprintf("the test's deadline (%v left) leaves too little time for another run and shrinking", time.Until(x.deadline).Round(time.Second))
		rt.SkipNow()
	}
	s := x.gen.Draw(rt, "schedule")
	x.iterations++
	it := x.run(s, fmt.Sprintf("iteration %d/%d", x.iterations, x.cfg.Iterations))
	if it != nil && !broke(it) {
		// Coverage guidance: the pairs this run applied are no longer
		// preferred. Only runs that broke nothing count, so the guide
		// never changes between a failure and rapid's replays of it.
		x.guide.record(it.History)
	}
	if it == nil || !broke(it) {
		return false
	}
	x.t.Logf("shakedown: first failure:\n%s", it.Findings)
	x.confirm(it, x.reproduce, "reproducing", broke)
	if !it.confirmed() {
		x.t.Logf("shakedown: FLAKY: iteration %d broke, then again in only %d of %d reruns; not shrunk, the search goes on", x.iterations, it.Reproduced, it.Reruns)
		x.flakies = append(x.flakies, it)
		return false
	}
	x.first, x.last = it, it
	x.cache[scheduleKey(s)] = it
	x.shrinkStart = time.Now()
	return true
}

// shrink judges one candidate of rapid's shrinking (rapid reruns the
// failing draw first, then tries smaller ones): a schedule already run
// takes its verdict; a new one that breaks is run once more, and fails
// only if it breaks again.
func (x *explorer) shrink(rt *rapid.T) bool {
	it := x.candidate(x.gen.Draw(rt, "schedule"), x.cfg.ShrinkTime/2)
	if it == nil {
		return false
	}
	x.last = it
	return true
}

// finish confirms the shrunk failure as often as the first one was; when
// it does not hold up, the first failure is the one reported.
func (x *explorer) finish() {
	if x.fatal != nil || x.last == nil || x.last == x.first {
		return
	}
	if n := x.reproduce - x.last.Reruns; n > 0 {
		x.confirm(x.last, n, "confirming the shrunk schedule", broke)
	}
	if !x.last.confirmed() {
		x.t.Logf("shakedown: the shrunk schedule broke again in only %d of %d reruns; reporting the first failure, which reproduced %d of %d:\n%s",
			x.last.Reproduced, x.last.Reruns, x.first.Reproduced, x.first.Reruns, x.last.Schedule)
		x.flakies = append(x.flakies, x.last)
		x.last = x.first
	}
}

// missing returns an error when runs went missing: rapid reported a
// failure no run recorded (a panic that escaped, say), or the
// exploration ran fewer iterations than asked with nothing to say why.
func (x *explorer) missing(rapidErrs []string) error {
	if x.first != nil || x.stopped != "" || !x.searched() {
		return nil
	}
	if len(rapidErrs) > 0 {
		return fmt.Errorf("properties: rapid reported a failure that no run recorded, so runs went missing:\n%s", strings.Join(rapidErrs, "\n"))
	}
	if x.iterations < x.cfg.Iterations {
		if n, ok := search.RapidChecks(); ok && x.iterations >= n {
			x.stopped = fmt.Sprintf("rapid's -rapid.checks bound (%d) is under the %d iterations asked for", n, x.cfg.Iterations)
			return nil
		}
		return fmt.Errorf("properties: only %d of %d iterations ran, and nothing says why: runs went missing", x.iterations, x.cfg.Iterations)
	}
	return nil
}

// searched reports whether the search ran at all (it does not after a
// broken baseline).
func (x *explorer) searched() bool {
	return x.base != nil && (x.steady != x.base || x.cfg.AllowFlaky && !x.base.confirmed())
}

// skip ends an iteration without running it: invalid while searching,
// passing (so rejected) while shrinking.
func (x *explorer) skip(rt *rapid.T) {
	if x.first == nil {
		rt.SkipNow()
	}
}

// fits reports whether a run of a schedule with the given horizon (and k
// more like it) can finish before the test's deadline.
func (x *explorer) fits(horizon time.Duration, k int) bool {
	if x.deadline.IsZero() {
		return true
	}
	need := horizon + x.cooldown() + x.overhead() + 2*time.Second
	return time.Until(x.deadline) > time.Duration(k)*need
}

func (x *explorer) cooldown() time.Duration { return x.cfg.CooldownOrDefault() }

// overhead is the mean wall time of a run beyond its schedule's own
// length, used to tell whether a run fits before the deadline.
func (x *explorer) overhead() time.Duration {
	if x.over.Runs == 0 {
		return 0
	}
	return max(x.over.Wall-x.over.Length, 0) / time.Duration(x.over.Runs)
}

// overhead compares the wall time of runs (reset, run, drain and judging)
// with their schedules' own length (horizon plus cooldown): what a run
// costs beyond the time its faults and recovery need.
type overhead struct {
	Runs         int
	Wall, Length time.Duration // sums over the runs
	// Worst is the largest relative overhead of one run ((wall-length)/length).
	Worst float64
}

func (o *overhead) add(wall, length time.Duration) {
	o.Runs++
	o.Wall += wall
	o.Length += length
	if length > 0 {
		o.Worst = max(o.Worst, float64(wall-length)/float64(length))
	}
}

// ratio is the mean relative overhead, (wall-length)/length over all runs.
func (o overhead) ratio() float64 {
	if o.Length == 0 {
		return 0
	}
	return float64(o.Wall-o.Length) / float64(o.Length)
}

func (o overhead) String() string {
	if o.Runs == 0 {
		return "no runs"
	}
	return fmt.Sprintf("%d runs: %v wall for %v of schedule (%+.1f%%; worst run %+.1f%%)", o.Runs,
		o.Wall.Round(time.Millisecond), o.Length.Round(time.Millisecond), 100*o.ratio(), 100*o.Worst)
}

// run runs one iteration. A nil result means a fatal error, kept in x.fatal.
func (x *explorer) run(s sim.Schedule, what string) *Iteration {
	x.t.Helper()
	it, err := runIn(x.t, x.cfg, s, runSeed(x.cfg.Seed, s))
	if err != nil {
		x.fatal = err
		return nil
	}
	x.runs++
	x.over.add(it.Wall, s.Horizon()+x.cooldown())
	if !x.baselining {
		x.cov.add(it)
	}
	verdict := "held"
	switch {
	case broke(it):
		verdict = "BROKE"
	case steady(it):
		verdict = "BROKE WITHOUT FAULTS"
	}
	x.t.Logf("shakedown: %s: %d steps, horizon %v, %d ops: %s (%v)%s", what, len(s.Steps), s.Horizon(),
		len(it.History.Ops), verdict, it.Wall.Round(time.Millisecond), oneLine(s))
	if steady(it) && x.steady == nil {
		x.steady = it
		x.t.Logf("shakedown: broke without faults (before the first fault took effect):\n%s", it.Steady)
	}
	if it.RunErr != nil {
		x.t.Logf("shakedown: %s: run reported: %v", what, it.RunErr)
	}
	return it
}

func oneLine(s sim.Schedule) string {
	if len(s.Steps) == 0 {
		return ""
	}
	parts := make([]string, len(s.Steps))
	for i, st := range s.Steps {
		parts[i] = st.String()
	}
	return ": " + strings.Join(parts, "; ")
}

// runIn runs s once on a fresh World, in a bubble of its own when
// simulated (and then, with SHAKEDOWN_SELFCHECK=1, once more: selfCheck).
func runIn(t testing.TB, cfg Config, s sim.Schedule, seed int64) (*Iteration, error) {
	if !cfg.Simulate {
		sc := &scope{TB: t}
		defer sc.cleanup()
		return runWorld(sc, cfg, s, seed)
	}
	tt, ok := t.(*testing.T)
	if !ok {
		return nil, fmt.Errorf("properties: Config.Simulate needs a *testing.T (for testing/synctest), not %T", t)
	}
	it, err := runBubble(tt, cfg, s, seed)
	if err == nil && it != nil && selfCheckOn() {
		selfCheck(tt, cfg, s, seed, it) // SHAKEDOWN_SELFCHECK=1: run it twice
	}
	return it, err
}

// runBubble runs s once in a testing/synctest bubble of its own. A bubble
// that ends with goroutines still blocked in it (a client that leaks
// them) makes synctest panic once the run is over: that is a finding of
// the run, with the stacks of the goroutines left behind.
func runBubble(t *testing.T, cfg Config, s sim.Schedule, seed int64) (it *Iteration, err error) {
	var bubble string
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		if it == nil {
			it = &Iteration{Schedule: s, Seed: seed, History: &sim.History{Seed: seed, Schedule: s}}
		}
		it.add(Finding{Invariant: "the run leaves no goroutine blocked", Verdict: Broken,
			Err: fmt.Errorf("testing/synctest: %v: goroutines the run started were still blocked when it ended (a client that leaks them); their stacks:\n%s", p, bubbleStacks(bubble))})
		err = nil
	}()
	synctest.Test(t, func(st *testing.T) {
		bubble = bubbleOf()
		it, err = runWorld(st, cfg, s, seed)
	})
	return it, err
}

// runWorld resets, builds a World, runs s on it and judges the
// invariants. Its error is for what makes the run impossible: a failed
// reset or an invalid setup. A panic (in Reset, World, or the run) is a
// Broken finding of the run, with its stack.
func runWorld(t testing.TB, cfg Config, s sim.Schedule, seed int64) (it *Iteration, err error) {
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			it = &Iteration{Schedule: s, Seed: seed, History: &sim.History{Seed: seed, Schedule: s}, Wall: time.Since(start)}
			it.add(Finding{Invariant: "the run does not panic", Verdict: Broken, Err: fmt.Errorf("panic: %v\n%s", p, debug.Stack())})
			err = nil
		}
	}()
	ctx := t.Context()
	if cfg.Reset != nil {
		if err := cfg.Reset(ctx); err != nil {
			return nil, fmt.Errorf("properties: reset before running the schedule %s: %w", oneLineOr(s), err)
		}
	}
	// sim.Run ends with the samplers' quiet reading, the one that
	// PoolReleased and NoGoroutineLeak judge.
	h, err := sim.Run(ctx, sim.Plan{World: cfg.World(t), Settings: cfg.Settings, Schedule: s, Seed: seed})
	if h == nil {
		return nil, fmt.Errorf("properties: run the schedule %s: %w", oneLineOr(s), err)
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("properties: run cancelled: %w", err)
	}
	fs, st := judge(h, cfg.Invariants)
	it = &Iteration{Schedule: s, Seed: seed, History: h, RunErr: err, Findings: fs, Steady: st}
	if errors.Is(err, sim.ErrPanic) {
		it.add(Finding{Invariant: "the workload does not panic", Verdict: Broken, Err: err})
	}
	it.Wall = time.Since(start)
	return it, nil
}

// oneLineOr is a schedule on one line, for errors.
func oneLineOr(s sim.Schedule) string {
	if len(s.Steps) == 0 {
		return "(no faults)"
	}
	return strings.TrimPrefix(oneLine(s), ": ")
}

// maxMissed is the share of a run's ops the framework may miss (not
// started on time, cut off by the run's end) before the run is not judged.
const maxMissed = 0.1

// judge evaluates invs on h and sorts the verdicts. A run in which the
// framework missed more than maxMissed of the ops is judged by nothing:
// every finding is Unjudged, with the reason. An invariant broken without
// faults goes to steady instead of fs: in a run in which no fault took
// effect, any; otherwise one whose violations all began before the first
// fault took effect and which the history up to that moment breaks too.
func judge(h *sim.History, invs []Invariant) (fs, steady Findings) {
	fs = Evaluate(h, invs)
	if n, of := missedOps(h); float64(n) > maxMissed*float64(of) {
		return unjudged(fs, fmt.Sprintf("the framework missed %d of the run's %d ops (%.0f%%, more than %.0f%%: not started on time, or cut off by the run's end), so the run says too little of the service to be judged; lighten the workload or lengthen Settings.Drain",
			n, of, 100*float64(n)/float64(of), 100*maxMissed)), nil
	}
	first, faulted := firstFault(h)
	kept := make(Findings, 0, len(fs))
	for i, f := range fs {
		if f.Verdict == Broken && (!faulted || i < len(invs) && beganBefore(invs[i], f, h, first)) {
			steady = append(steady, f)
			continue
		}
		kept = append(kept, f)
	}
	return kept, steady
}

// unjudged turns every finding into Unjudged, for the reason given.
func unjudged(fs Findings, reason string) Findings {
	out := make(Findings, len(fs))
	for i, f := range fs {
		out[i] = Finding{Invariant: f.Invariant, Verdict: Unjudged, Err: &NoEvidence{Invariant: f.Invariant, Reason: reason}}
	}
	return out
}

// missedOps counts the ops of h whose outcome the framework did not
// observe (sim.Missed), and all the ops.
func missedOps(h *sim.History) (missed, all int) {
	return h.Missed().Ops(), len(h.Ops)
}

// firstFault returns when the first fault of h took effect, and false
// when none did.
func firstFault(h *sim.History) (time.Duration, bool) {
	var first time.Duration
	found := false
	for _, e := range h.Faults {
		if e.Applied() && (!found || e.Start < first) {
			first, found = e.Start, true
		}
	}
	return first, found
}

// beganBefore reports whether the broken finding f of inv began before
// the first fault took effect: every violation is dated before it, and
// inv, judged on the history up to that moment alone, breaks too. (The
// date alone is not enough: a violation over a whole window is dated at
// the window's start.)
func beganBefore(inv Invariant, f Finding, h *sim.History, first time.Duration) bool {
	var vs Violations
	if inv == nil || !errors.As(f.Err, &vs) || len(vs) == 0 {
		return false
	}
	for _, v := range vs {
		if v.At >= first {
			return false
		}
	}
	return Evaluate(prefix(h, first), []Invariant{inv})[0].Verdict == Broken
}

// prefix is h up to at, before any fault: the ops that ended by then and
// the samples taken by then.
func prefix(h *sim.History, at time.Duration) *sim.History {
	p := &sim.History{Seed: h.Seed, Began: h.Began, Duration: at}
	for _, op := range h.Ops {
		if op.End <= at {
			p.Ops = append(p.Ops, op)
		}
	}
	for _, s := range h.Samples {
		if s.At <= at {
			p.Samples = append(p.Samples, s)
		}
	}
	return p
}

// bubbleOf returns the label the runtime gives the goroutines of the
// calling goroutine's synctest bubble in a traceback ("synctest bubble
// 12"), or "" outside one.
func bubbleOf() string {
	buf := make([]byte, 512)
	buf = buf[:runtime.Stack(buf, false)]
	line, _, _ := strings.Cut(string(buf), "\n")
	i := strings.Index(line, "synctest bubble ")
	if i < 0 {
		return ""
	}
	return strings.TrimRight(strings.FieldsFunc(line[i:], func(r rune) bool { return r == ']' || r == ',' })[0], " ")
}

// bubbleStacks returns the stacks of the goroutines of a bubble (as
// bubbleOf names it), at most 10 of them.
func bubbleStacks(bubble string) string {
	if bubble == "" {
		return "(unknown bubble)"
	}
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) || len(buf) >= 64<<20 {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	more := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		if !strings.Contains(header, bubble+"]") && !strings.Contains(header, bubble+" ") && !strings.Contains(header, bubble+",") {
			continue
		}
		if len(out) == 10 {
			more++
			continue
		}
		out = append(out, strings.TrimSpace(g))
	}
	if len(out) == 0 {
		return "(none found)"
	}
	if more > 0 {
		out = append(out, fmt.Sprintf("... and %d more", more))
	}
	return strings.Join(out, "\n\n")
}

// scheduleKey identifies a schedule for the verdict cache.
func scheduleKey(s sim.Schedule) string {
	b, err := json.Marshal(s)
	if err != nil {
		return s.String()
	}
	return string(b)
}

// runSeed derives a run's seed from the base seed and the schedule, so a
// schedule always runs with the same seed, and different schedules with
// different ones.
func runSeed(base int64, s sim.Schedule) int64 {
	h := fnv.New64a()
	var b [8]byte
	for i := range b {
		b[i] = byte(uint64(base) >> (8 * i))
	}
	h.Write(b[:])
	h.Write([]byte(scheduleKey(s)))
	return int64(h.Sum64() >> 1)
}
