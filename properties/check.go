package properties

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
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
	// overriding Config.Iterations: SHAKEDOWN_ITERATIONS=50 go test ...
	EnvIterations = search.EnvIterations
	// EnvReplay names a schedule file (one Check wrote, or one written by
	// hand); Check then runs exactly that schedule once instead of
	// exploring.
	EnvReplay = search.EnvReplay
)

// DefaultIterations is the number of schedules Check tries when neither
// Config.Iterations nor SHAKEDOWN_ITERATIONS says otherwise.
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
	// Iterations is the most schedules explored before shrinking
	// (default DefaultIterations; SHAKEDOWN_ITERATIONS overrides it).
	// rapid's own -rapid.checks (default 100, 20 with -short) is an upper
	// bound too.
	Iterations int
	// Seed is the base of every run's seed: a run's seed is derived from
	// Seed and its schedule, so a schedule always runs with the same seed.
	Seed int64
	// ShrinkTime bounds the time spent shrinking a failure (default: as
	// long as rapid allows, which is -rapid.shrinktime, 30s by default;
	// raise that flag for real dependencies, where a run takes seconds).
	ShrinkTime time.Duration
	// Dir is where Check writes a failing schedule and its report
	// (default testdata/shakedown/<test name>).
	Dir string
	// Simulate makes every run a simulated one, in its own
	// testing/synctest bubble and in virtual time, on a World built
	// inside that bubble (a sim.Network, its fakes, the clients). rapid
	// itself runs outside the bubbles, in real time, so a run costs
	// microseconds of its time whatever the schedule's length.
	Simulate bool
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
		errs = append(errs, fmt.Errorf("properties: Config.Iterations = %d is negative", c.Iterations))
	}
	if c.ShrinkTime < 0 {
		errs = append(errs, fmt.Errorf("properties: Config.ShrinkTime = %v is negative", c.ShrinkTime))
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

func checkWorld(targets []sim.Target, w sim.Workload) []error {
	var errs []error
	if len(targets) == 0 {
		errs = append(errs, errors.New("properties: the World has no targets: sim.World.Targets is empty"))
	}
	for i, t := range targets {
		if t == nil {
			errs = append(errs, fmt.Errorf("properties: target %d is nil", i))
		}
	}
	if len(w.Kinds) == 0 {
		errs = append(errs, errors.New("properties: the workload has no op kinds: nothing would be judged"))
	}
	return errs
}

// prepare validates cfg and, when it has a World, builds one (in a bubble
// of its own when simulated) to learn its targets (for Bounds.Targets)
// and check it.
func prepare(t testing.TB, cfg Config) (Config, error) {
	cfg, err := cfg.validate()
	if err != nil || cfg.World == nil {
		return cfg, err
	}
	var errs []error
	probe := func(t testing.TB) {
		w := cfg.World(t)
		errs = checkWorld(w.Targets, w.Workload)
		if len(cfg.Bounds.Targets) == 0 {
			cfg.Bounds.Targets = Aim(w.Targets)
		}
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
	Findings Findings
	// RunErr is what sim.Run returned besides the history: faults that
	// did not apply or revert, panics in ops. It does not fail the
	// iteration by itself; a panic in an op is also a Broken finding.
	RunErr error
	// Wall is how long the iteration took, reset included.
	Wall time.Duration
}

// Result is what [Explore] found.
type Result struct {
	// Failure is the shrunk failing iteration when some schedule broke an
	// invariant (nil when none did): the smallest schedule found that
	// still fails, with its history and findings.
	Failure *Iteration
	// Flaky is true when the first failure did not fail again when run
	// a second time; Failure is then that first failure, unshrunk.
	Flaky bool
	// Iterations is the number of schedules explored before any failure
	// (or in all, when none failed); Runs counts every run, shrinking
	// included, and CacheHits the shrink candidates that repeated a
	// schedule already run and took its verdict.
	Iterations, Runs, CacheHits int
	// Stopped says why the exploration stopped before the iteration
	// bound ("" if it did not): the test's deadline.
	Stopped string
	// Elapsed is the whole exploration; Shrinking the part after the
	// first failure.
	Elapsed, Shrinking time.Duration
	// Coverage counts what the runs exercised.
	Coverage Coverage
	// Overhead is the runs' mean wall time beyond their schedules' own
	// length (horizon plus cooldown), relative to that length: 0.05 means
	// a run took 5% longer than its faults and recovery needed.
	Overhead float64

	over overhead // for Check's overhead line
	// Rapid holds rapid's own report of a failure.
	Rapid []string
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
// The error is for what stopped the exploration itself: a bad Config, a
// failed Reset, an invalid schedule. t is used for logs, its name, its
// context and its deadline: a run is not started unless it can finish
// before the deadline.
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
	g, err := Schedules(cfg.Bounds)
	if err != nil {
		return nil, err
	}
	x := &explorer{t: t, cfg: cfg, gen: g, ctx: t.Context(), cache: map[string]*Iteration{}}
	x.deadline = search.Deadline(t)
	start := time.Now()
	tb := search.NewCapture(t.Name(), x.ctx, t.Logf)
	before := search.FailFiles(t.Name())
	errs := search.Rapid(tb, x.prop)
	res := &Result{Iterations: x.iterations, Runs: x.runs, CacheHits: x.hits, Stopped: x.stopped,
		Elapsed: time.Since(start), Coverage: x.cov, Overhead: x.over.ratio(), over: x.over, Rapid: search.DropExpected(errs)}
	if x.fatal != nil {
		search.RemoveFailFile(search.FailFileOf(errs), before)
		return res, x.fatal
	}
	if x.first != nil {
		res.Shrinking = time.Since(x.shrinkStart)
		res.Failure = x.last
		if x.phase == search.Reproducing || !x.reproduced {
			res.Flaky = true
			res.Failure = x.first
		}
	}
	if !keepFailFile {
		search.RemoveFailFile(search.FailFileOf(errs), before)
	}
	return res, nil
}

// failMessage is the one message every failing iteration gives rapid:
// rapid takes a failure for the same failure only when message and stack
// match, and real runs differ in their numbers from one run to the next.
const failMessage = "shakedown: an invariant broke"

type explorer struct {
	t        testing.TB
	cfg      Config
	gen      *rapid.Generator[sim.Schedule]
	ctx      context.Context
	deadline time.Time

	phase       search.Phase
	iterations  int
	runs, hits  int
	stopped     string
	fatal       error
	first, last *Iteration
	reproduced  bool
	shrinkStart time.Time
	cache       map[string]*Iteration
	cov         Coverage
	over        overhead
}

func (x *explorer) prop(rt *rapid.T) {
	if x.fatal != nil {
		x.skip(rt)
		return
	}
	if x.phase == search.Searching {
		if x.iterations >= x.cfg.Iterations {
			rt.SkipNow()
		}
		if !x.fits(x.cfg.Bounds.Horizon, 5) {
			x.stopped = fmt.Sprintf("the test's deadline (%v left) leaves too little time for another run and shrinking", time.Until(x.deadline).Round(time.Second))
			rt.SkipNow()
		}
	}
	s := x.gen.Draw(rt, "schedule")
	key := scheduleKey(s)
	var it *Iteration
	switch x.phase {
	case search.Searching:
		x.iterations++
		it = x.run(s, fmt.Sprintf("iteration %d/%d", x.iterations, x.cfg.Iterations))
	case search.Reproducing:
		it = x.run(s, "reproducing the failure")
		x.phase = search.Shrinking
		if it != nil && it.Findings.Broken() {
			x.reproduced = true
		}
	case search.Shrinking:
		if cached, ok := x.cache[key]; ok {
			x.hits++
			it = cached
			break
		}
		if x.cfg.ShrinkTime > 0 && time.Since(x.shrinkStart) > x.cfg.ShrinkTime {
			return // out of shrink time: reject the candidate without running it
		}
		if !x.fits(s.Horizon(), 1) {
			x.stopped = "the test's deadline cut shrinking short"
			return
		}
		it = x.run(s, "shrinking")
	}
	if it == nil {
		return // fatal; recorded
	}
	if x.phase != search.Searching {
		x.cache[key] = it
	}
	if !it.Findings.Broken() {
		return
	}
	if x.first == nil {
		x.first = it
		x.phase = search.Reproducing
		x.shrinkStart = time.Now()
		x.cache[key] = it
	}
	x.last = it
	rt.Fatal(failMessage)
}

// skip ends an iteration without running it: invalid while searching,
// passing (so rejected) while shrinking.
func (x *explorer) skip(rt *rapid.T) {
	if x.phase == search.Searching {
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
	x.cov.add(it)
	verdict := "held"
	if it.Findings.Broken() {
		verdict = "BROKE"
	}
	x.t.Logf("shakedown: %s: %d steps, horizon %v, %d ops: %s (%v)%s", what, len(s.Steps), s.Horizon(),
		len(it.History.Ops), verdict, it.Wall.Round(time.Millisecond), oneLine(s))
	if it.Findings.Broken() && x.first == nil {
		x.t.Logf("shakedown: first failure:\n%s", it.Findings)
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
func runIn(t testing.TB, cfg Config, s sim.Schedule, seed int64) (it *Iteration, err error) {
	if !cfg.Simulate {
		sc := &scope{TB: t}
		defer sc.cleanup()
		return runWorld(sc, cfg, s, seed)
	}
	tt, ok := t.(*testing.T)
	if !ok {
		return nil, fmt.Errorf("properties: Config.Simulate needs a *testing.T (for testing/synctest), not %T", t)
	}
	synctest.Test(tt, func(st *testing.T) { it, err = runWorld(st, cfg, s, seed) })
	if err == nil && it != nil && selfCheckOn() {
		selfCheck(tt, cfg, s, seed, it) // SHAKEDOWN_SELFCHECK=1: run it twice
	}
	return it, err
}

// runWorld resets, builds a World, runs s on it and judges the
// invariants. Its error is for what makes the run impossible: a failed
// reset or an invalid setup.
func runWorld(t testing.TB, cfg Config, s sim.Schedule, seed int64) (*Iteration, error) {
	start := time.Now()
	ctx := t.Context()
	if cfg.Reset != nil {
		if err := cfg.Reset(ctx); err != nil {
			return nil, fmt.Errorf("properties: reset before running schedule\n%s\n: %w", s, err)
		}
	}
	// sim.Run ends with the samplers' quiet reading, the one that
	// PoolReleased and NoGoroutineLeak judge.
	h, err := sim.Run(ctx, sim.Plan{World: cfg.World(t), Settings: cfg.Settings, Schedule: s, Seed: seed})
	if h == nil {
		return nil, fmt.Errorf("properties: run schedule\n%s\n: %w", s, err)
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("properties: run cancelled: %w", err)
	}
	it := &Iteration{Schedule: s, Seed: seed, History: h, RunErr: err, Findings: Evaluate(h, cfg.Invariants)}
	if errors.Is(err, sim.ErrPanic) {
		it.Findings = append(it.Findings, Finding{Invariant: "the workload does not panic", Verdict: Broken, Err: err})
	}
	it.Wall = time.Since(start)
	return it, nil
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
