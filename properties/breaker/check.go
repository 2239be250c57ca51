package breaker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"pgregory.net/rapid"

	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/properties/internal/search"
	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// Result is what [Explore] found.
type Result struct {
	// Failure, when some schedule made the breaker break its spec, is
	// the shrunk counterexample: the smallest schedule rapid found that
	// still breaks it, with its run. It is nil when the breaker held.
	Failure *Iteration
	// Iterations is the number of schedules explored before any failure
	// (or in all, when none failed); Runs counts every run, shrinking
	// included, and Ops the calls made through the breaker in all runs.
	Iterations, Runs int
	Ops              int64
	// Stopped says why the exploration stopped before Iterations ("" if
	// it did not): the test's deadline.
	Stopped string
	// Elapsed is the whole exploration; Shrinking the part after the
	// first failure.
	Elapsed, Shrinking time.Duration
	// Coverage counts what the runs exercised.
	Coverage Coverage
	// Rapid holds rapid's own report of a failure.
	Rapid []string
}

// Coverage counts what the runs of a breaker check exercised: a
// check in which the breaker never had to open proves little.
type Coverage struct {
	Runs int
	// Opened, HalfOpened and Reclosed count the runs in which the breaker
	// opened, was half-open, and closed again after opening.
	Opened, HalfOpened, Reclosed int
	// Kinds counts the outages, by kind.
	Kinds map[toxics.Kind]int
}

func (c *Coverage) add(r *Iteration) {
	c.Runs++
	if r.Opened > 0 {
		c.Opened++
	}
	if r.HalfOpened > 0 {
		c.HalfOpened++
	}
	if r.Reclosed > 0 {
		c.Reclosed++
	}
	if c.Kinds == nil {
		c.Kinds = map[toxics.Kind]int{}
	}
	for _, st := range r.Schedule.Steps {
		c.Kinds[st.Fault.Kind()]++
	}
}

// String is the coverage line:
//
//	breaker coverage over 500 runs: opened in 402, half-open in 377, closed again in 365; outages: latency 310, down 290, ...
func (c Coverage) String() string {
	var kinds []string
	for k, n := range c.Kinds {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(kinds)
	return fmt.Sprintf("breaker coverage over %d runs: opened in %d, half-open in %d, closed again in %d; outages: %s",
		c.Runs, c.Opened, c.HalfOpened, c.Reclosed, strings.Join(kinds, ", "))
}

// RunSchedule runs schedule s once against a breaker built by cfg.New, in a
// testing/synctest bubble of its own, and judges it against cfg.Spec. The
// error is for a bad config or schedule, not for a broken spec: that is in
// the run's Violations.
func RunSchedule(t *testing.T, cfg Config, s sim.Schedule) (*Iteration, error) {
	t.Helper()
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	if err := s.Validate([]sim.Target{depTarget{cfg.Bounds.Targets[0].Name}}); err != nil {
		return nil, fmt.Errorf("breaker: schedule: %w", err)
	}
	return runIn(t, cfg, s)
}

func runIn(t *testing.T, cfg Config, s sim.Schedule) (run *Iteration, err error) {
	defer func() {
		// synctest panics when every goroutine of the bubble is blocked
		// for good: a breaker that waits on something that never comes.
		if p := recover(); p != nil {
			run, err = nil, fmt.Errorf("breaker: run of schedule\n%s\n: %v", s, p)
		}
	}()
	synctest.Test(t, func(*testing.T) { run, err = runOnce(cfg, s) })
	return run, err
}

// depTarget stands for the fake dependency when a schedule is
// validated.
type depTarget struct{ name string }

func (b depTarget) Name() string { return b.name }
func (b depTarget) Supports(k toxics.Kind) bool {
	for _, x := range Kinds() {
		if x == k {
			return true
		}
	}
	return false
}
func (b depTarget) Apply(context.Context, toxics.Fault) (func(context.Context) error, error) {
	return nil, errors.New("breaker: the fake dependency of a breaker check takes its faults from the schedule")
}

// Explore draws schedules of outages of a fake dependency within
// cfg.Bounds, runs each against a fresh breaker in virtual time (a
// testing/synctest bubble per run, so a run of seconds takes about a
// millisecond) and judges it against cfg.Spec. When a schedule breaks the
// spec, rapid shrinks it to the smallest that still does. It returns what
// it found instead of failing t, so a test can assert that a misconfigured
// breaker, or a wrong expectation, is caught:
//
//	res, err := breaker.Explore(t, cfg)
//	require.NoError(t, err)
//	require.NotNil(t, res.Failure, "a breaker without a timeout must be caught")
//	t.Log(res.Failure.Timeline())
//
// The error is for what stopped the exploration itself: a bad config.
func Explore(t *testing.T, cfg Config) (*Result, error) {
	t.Helper()
	return explore(t, cfg, false, 0)
}

func explore(t *testing.T, cfg Config, keepFailFile bool, workers int) (*Result, error) {
	t.Helper()
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	if n, ok, err := search.Iterations(); err != nil {
		return nil, err
	} else if ok {
		cfg.Iterations = n
	}
	g, err := properties.Schedules(cfg.Bounds)
	if err != nil {
		return nil, err
	}
	x := &explorer{t: t, cfg: cfg, gen: g, deadline: search.Deadline(t), workers: workers}
	tb := search.NewCapture(t.Name(), t.Context(), nil)
	before := search.FailFiles(t.Name())
	start := time.Now()
	res := &Result{}
	// rapid runs at most -rapid.checks schedules per Check; go round
	// until the iterations are done or something failed.
	for x.iterations < cfg.Iterations && x.first == nil && x.fatal == nil && x.stopped == "" {
		n := x.iterations
		errs := search.Rapid(tb, x.prop)
		res.Rapid = append(res.Rapid, search.DropExpected(errs)...)
		if f := search.FailFileOf(errs); !keepFailFile || x.first == nil {
			search.RemoveFailFile(f, before)
		}
		if x.iterations == n && x.first == nil {
			break // rapid ran nothing more
		}
	}
	x.minimize()
	res.Iterations, res.Runs, res.Ops, res.Stopped, res.Coverage = x.iterations, x.runs, x.ops, x.stopped, x.cov
	res.Elapsed = time.Since(start)
	if x.fatal != nil {
		return res, x.fatal
	}
	if x.first != nil {
		res.Failure, res.Shrinking = x.last, time.Since(x.shrinkStart)
	}
	return res, nil
}

const failMessage = "shakedown: the breaker broke its spec"

type explorer struct {
	t        *testing.T
	cfg      Config
	gen      *rapid.Generator[sim.Schedule]
	deadline time.Time

	iterations, runs int
	ops              int64
	shrinking        bool
	stopped          string
	fatal            error
	first, last      *Iteration
	shrinkStart      time.Time
	cov              Coverage
	wall             time.Duration // of all runs, for the deadline

	// firstAt is the place of the first broken schedule in its batch:
	// while shrinking, each candidate draws that many schedules before
	// the one it runs, as the batch did.
	firstAt int
	// workers bounds the bubbles run at once (0: GOMAXPROCS).
	workers int
	// seen holds the runs of the shrink, by schedule: a run in virtual
	// time gives the same verdict every time, so each candidate runs once.
	seen map[string]*Iteration
}

func (x *explorer) prop(rt *rapid.T) {
	if x.fatal != nil {
		if !x.shrinking {
			rt.SkipNow()
		}
		return
	}
	var run *Iteration
	if x.shrinking {
		run = x.shrinkOne(rt)
	} else {
		run = x.exploreBatch(rt)
	}
	// One place fails the property, so that rapid sees the same failure
	// when it explores, reproduces and shrinks.
	if run.Broken() {
		x.last = run
		rt.Fatal(failMessage)
	}
}

// exploreBatch draws a batch of schedules, runs them side by side and
// judges them in the order they were drawn: the first broken one ends
// the exploration, and the runs after it count for nothing, as if they had
// never been made. It returns that broken run, or nil.
func (x *explorer) exploreBatch(rt *rapid.T) *Iteration {
	if x.iterations >= x.cfg.Iterations {
		rt.SkipNow()
	}
	if !x.fits(10) {
		x.stopped = fmt.Sprintf("the test's deadline (%v left) leaves too little time for more runs and shrinking", time.Until(x.deadline).Round(time.Second))
		rt.SkipNow()
	}
	batch := make([]sim.Schedule, min(batchSize, x.cfg.Iterations-x.iterations))
	for i := range batch {
		batch[i] = x.gen.Draw(rt, "schedule")
	}
	for i, run := range x.runBatch(batch) {
		if run == nil {
			return nil // x.fatal is set
		}
		x.iterations++
		x.cov.add(run)
		if run.Broken() {
			x.first, x.firstAt = run, i
			x.shrinking, x.shrinkStart = true, time.Now()
			x.seen = map[string]*Iteration{run.Schedule.String(): run}
			return run
		}
	}
	return nil
}

// shrinkOne is the property while rapid shrinks: the candidate draws
// as the failing batch did, and only its schedule at the broken one's
// place is run. It returns that run, or nil.
func (x *explorer) shrinkOne(rt *rapid.T) *Iteration {
	if time.Since(x.shrinkStart) > x.cfg.ShrinkTime/2 {
		return nil // out of rapid's half of the shrink time: the candidate is rejected unrun
	}
	if !x.fits(1) {
		x.stopped = "the test's deadline cut shrinking short"
		return nil
	}
	var s sim.Schedule
	for range x.firstAt + 1 {
		s = x.gen.Draw(rt, "schedule")
	}
	return x.run(s)
}

// fits reports whether k more runs and a margin fit before the deadline.
func (x *explorer) fits(k int) bool {
	if x.deadline.IsZero() {
		return true
	}
	per := time.Millisecond
	if x.runs > 0 {
		per = max(per, x.wall/time.Duration(x.runs))
	}
	return time.Until(x.deadline) > time.Duration(k)*per+2*time.Second
}

// Check explores schedules with [Explore] and fails t when
// one makes the breaker break its spec. The failure message holds the
// violations, the spec, the shrunk schedule and the run's timeline; the
// schedule file and an HTML report are written to cfg.Dir (default
// testdata/shakedown/<test name>/), with one command that replays it.
// Check also fails t when the breaker never opened in any run: a
// check that never saw the breaker at work is not a pass. It logs a
// coverage line.
//
// With SHAKEDOWN_REPLAY set to a schedule file, Check runs exactly
// that schedule once.
//
// Check writes summary.json beside them too, in the schema of the
// properties package's Check: the spec as one invariant (and each rule
// the counterexample broke), the outages drawn, and the finding marked
// new, still failing, fixed or regressed against the summary before.
func Check(t *testing.T, cfg Config) {
	t.Helper()
	if path := os.Getenv(search.EnvReplay); path != "" {
		replayFile(t, cfg, path)
		return
	}
	res, err := explore(t, cfg, true, 0)
	if res != nil {
		t.Logf("shakedown: %s (%d schedules, %d calls in %v)", res.Coverage, res.Iterations, res.Ops, res.Elapsed.Round(time.Millisecond))
		if res.Stopped != "" {
			t.Logf("shakedown: stopped early: %s", res.Stopped)
		}
	}
	if err != nil {
		t.Fatalf("shakedown: %v", err)
	}
	defer summarize(t, cfg, res)
	if res.Failure != nil {
		reportFailure(t, cfg, res.Failure, fmt.Sprintf("the breaker broke its spec after %d schedules (shrunk in %v, %d runs)",
			res.Iterations, res.Shrinking.Round(time.Millisecond), res.Runs))
		return
	}
	if res.Coverage.Opened == 0 {
		t.Errorf("shakedown: no evidence: the breaker never had to open in %d runs, so its spec was never put to the test (widen Bounds: more or longer outages, or kinds that fail calls)",
			res.Coverage.Runs)
	}
}

// replayFile runs the schedule saved at path once and fails t if the
// breaker breaks its spec.
func replayFile(t *testing.T, cfg Config, path string) {
	t.Helper()
	s, _, _, err := search.LoadSchedule(path)
	if err != nil {
		t.Fatalf("shakedown: %s=%s: %v", search.EnvReplay, path, err)
	}
	run, err := RunSchedule(t, cfg, s)
	if err != nil {
		t.Fatalf("shakedown: replay %s: %v", path, err)
	}
	if run.Broken() {
		reportFailure(t, Config{Dir: filepath.Dir(path)}, run, "the replayed schedule "+path+" breaks the spec")
		return
	}
	t.Logf("shakedown: replay of %s held:\n%s", path, run.Timeline())
}

// reportFailure fails t with a counterexample, and writes its schedule and
// report next to each other.
func reportFailure(t *testing.T, cfg Config, run *Iteration, headline string) {
	t.Helper()
	_, replay, reportPath := search.Save(t, cfg.Dir, run.failure())
	t.Errorf("shakedown: %s\n%s\nreplay: %s\nreport: %s", headline, run.Counterexample(), replay, reportPath)
}

// failure is the run in the form a check saves and reports: the rules of
// the spec it broke, each once.
func (r *Iteration) failure() search.Failure {
	f := search.Failure{Schedule: r.Schedule, History: r.History()}
	for _, v := range r.Violations {
		if !slices.Contains(f.Broken, v.Invariant) {
			f.Broken = append(f.Broken, v.Invariant)
		}
	}
	return f
}

// Counterexample is the run in words: its violations, the spec, the
// schedule and the timeline.
func (r *Iteration) Counterexample() string {
	var b strings.Builder
	if len(r.Violations) == 0 {
		b.WriteString("the breaker held its spec\n")
	}
	for _, v := range r.Violations {
		fmt.Fprintf(&b, "✗ %s\n    at %v: %s\n    want: %s\n", v.Invariant, fmtDur(v.At), v.Got, v.Want)
		if v.Excess != "" {
			fmt.Fprintf(&b, "    over by %s\n", v.Excess)
		}
	}
	fmt.Fprintf(&b, "spec: %s\n", r.Spec)
	fmt.Fprintf(&b, "load: %g calls/s, the healthy dependency answers in %v\n", r.Rate, r.Latency)
	fmt.Fprintf(&b, "schedule:\n%s\n", indent(r.Schedule.String(), "  "))
	fmt.Fprintf(&b, "timeline (each call at the moment the breaker returned; [state] as the breaker reported it):\n%s", r.Timeline())
	return strings.TrimRight(b.String(), "\n")
}

func indent(s, prefix string) string {
	if s == "" {
		return prefix + "(no outage)"
	}
	return prefix + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+prefix)
}
