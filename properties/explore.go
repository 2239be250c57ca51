package properties

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/shakedown/shakedown/properties/internal/search"
	"github.com/shakedown/shakedown/sim"
)

// Result is what [Explore] found.
type Result struct {
	// Failure is the shrunk failing iteration when some schedule broke an
	// invariant and broke it again every time it was rerun (nil when
	// none did): the smallest schedule found that still fails every time,
	// with its history and findings. When the shrunk schedule itself did
	// not (a bug that shows in some runs only shrinks to the edge where
	// it shows in one of two), it is a schedule shrinking accepted before
	// it, or the first failure, and Check's report says so.
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
	// Slower are the failures (reproduced or flaky) that were set aside
	// as the machine's: a fault-free control run right beside each (real runs
	// only) explained what it broke, so its findings are Unjudged, with
	// the reason (see Check).
	Slower []*Iteration
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
	tight map[string]string // invariants not judged here (too tight, or set aside as the machine's), and why
	cost  cost              // the wall time of baseline, confirmations and controls
	// slower are the confirmed failures set aside as the machine's (see
	// control.go); cost counts the control runs.
	slower []slower
	flaky  []*Iteration // flaky failures seen besides Failure
	early  int          // confirming runs that ended early
	ahead  int          // shrink candidates run ahead, side by side (see shrinkRun)
	unrun  int          // candidates of the 1-minimal pass left unrun: budget or deadline (see shrink.go)
	// walkedBack says why Failure is not the shrunk schedule ("" when
	// it is): see explorer.finish.
	walkedBack string
}

// cost is the wall time an exploration spent on its baseline, on
// confirming failures and on the control runs beside them, beside the
// rest.
type cost struct {
	Baseline, Confirm, Control time.Duration
	Controls                   int // control runs
}

func (c cost) String(elapsed time.Duration) string {
	rest := elapsed - c.Baseline - c.Confirm - c.Control
	pct := func(d time.Duration) string {
		if rest <= 0 {
			return "n/a"
		}
		return fmt.Sprintf("%+.1f%%", 100*float64(d)/float64(rest))
	}
	return fmt.Sprintf("%v in all; the fault-free baseline took %v (%s), confirming failures %v (%s) and %d control runs beside them %v (%s), beside the other runs' %v",
		elapsed.Round(time.Millisecond), c.Baseline.Round(time.Millisecond), pct(c.Baseline), c.Confirm.Round(time.Millisecond), pct(c.Confirm),
		c.Controls, c.Control.Round(time.Millisecond), pct(c.Control), rest.Round(time.Millisecond))
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
	cfg, part, err := parsePart(cfg)
	if err != nil {
		return nil, err
	}
	corpus, err := loadCorpus(t.Name(), cfg.Dir, cfg.Bounds)
	if err != nil {
		return nil, err
	}
	g, guide, err := schedules(cfg.Bounds)
	if err != nil {
		return nil, err
	}
	x := &explorer{t: t, cfg: cfg, gen: g, guide: guide, ctx: t.Context(), cache: map[string]*Iteration{}, tight: map[string]string{}, reproduce: cfg.reproduce(), part: part}
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
	res := &Result{Iterations: x.iterations - part.skipped, Runs: x.runs, CacheHits: x.hits, Stopped: x.stopped,
		Elapsed: time.Since(start), Coverage: x.cov, Overhead: x.over.ratio(), over: x.over, Rapid: errs,
		Baseline: x.base, Steady: x.steady, tight: x.tight, cost: x.cost, early: x.early, unrun: x.unrun, slower: x.slower,
		walkedBack: x.walkedBack, ahead: x.aheadRuns}
	res.cost.Controls = x.controls
	for _, sl := range x.slower {
		res.Slower = append(res.Slower, sl.it)
	}
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
	part      *part  // the shard and time budget (see shard.go)
	t         testing.TB
	cfg       Config
	gen       *rapid.Generator[sim.Schedule]
	ctx       context.Context
	deadline  time.Time
	reproduce int

	iterations  int
	batches     int // of the search (see drawBatch): rapid's checks
	firstAt     int // the place of the first failure in its batch
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
	controlling  bool // the run under way is a control (see control.go)
	slower       []slower
	controls     int
	tight        map[string]string
	cost         cost
	early        int // confirming runs that ended early
	unrun        int // candidates of the 1-minimal pass left unrun (see shrink.go)
	minimizing   bool
	// offered are the candidates the 1-minimal pass is about to ask
	// about, in order; ahead the outcomes of those run ahead, side by
	// side (see shrinkRun).
	offered   []sim.Schedule
	ahead     map[string]outcome
	aheadRuns int
	// path holds the failing schedules shrinking accepted, in order (see
	// accept); walkedBack says why the failure reported is not the shrunk
	// one ("" when it is).
	path       []*Iteration
	walkedBack string
}

// broke reports whether it broke an invariant that the schedule is to
// blame for; steady says whether it broke one without faults.
func broke(it *Iteration) bool { return it.Findings.Broken() }

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
	it := x.run(sim.Schedule{}, "baseline (no faults)", nil)
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
// again (by the test bad). A rerun of a schedule that broke (not the
// baseline's) ends as soon as an invariant that broke in it is broken
// for good, when that can be told before the end (see early): the count
// is the same as with whole runs.
func (x *explorer) confirm(it *Iteration, n int, what string, bad func(*Iteration) bool) {
	start := time.Now()
	defer func() {
		if !x.baselining {
			x.cost.Confirm += time.Since(start)
		}
	}()
	var e *early
	if !x.baselining && endEarly {
		e = earlyFor(it, x.cfg.Invariants)
	}
	// Side by side, the reruns are made first and counted after, in
	// order; one at a time, each is made in its turn of the loop.
	var made []outcome
	if x.sideBySide(n) && x.fits(it.Schedule.Horizon(), n) {
		made = x.reruns(it.Schedule, n, e)
	}
	for i := range n {
		var o outcome
		if made != nil {
			o = made[i]
		} else {
			if !x.fits(it.Schedule.Horizon(), 1) {
				x.stopped = "the test's deadline cut a confirmation short"
				return
			}
			o = x.runOne(it.Schedule, e)
		}
		again := x.ran(it.Schedule, fmt.Sprintf("%s (%d/%d)", what, i+1, n), o)
		if again == nil {
			return // fatal; recorded
		}
		if !x.baselining {
			it.again = append(it.again, again)
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
	if x.spent() {
		rt.SkipNow()
	}
	x.batches++
	b := x.drawBatch(rt)
	// Coverage guidance learns of a batch's runs once the batch is
	// judged, in the order they were drawn, and only when the search goes
	// on: the guide never changes between a failure and rapid's replays
	// of it, which draw the batch again.
	var notes []func()
	for i, s := range b.schedules {
		x.iterations++
		if !b.mine[i] {
			x.part.skipped++
			notes = append(notes, func() { x.guide.recordDrawn(s) }) // another shard's (see shard.go)
			continue
		}
		it := x.ran(s, fmt.Sprintf("iteration %d/%d", x.iterations, x.cfg.Iterations), b.outcome(x, i))
		if it == nil {
			return false // fatal; recorded
		}
		if !broke(it) {
			// The pairs this run applied are no longer preferred.
			notes = append(notes, func() { x.note(s, it, false) })
			continue
		}
		x.t.Logf("shakedown: first failure:\n%s", it.Findings)
		x.confirm(it, x.reproduce, "reproducing", broke)
		if why := x.explained(it, fmt.Sprintf("iteration %d", x.iterations)); why != "" {
			x.setAside(it, why)
			notes = append(notes, func() { x.note(s, it, true) })
			continue
		}
		if !it.confirmed() {
			x.t.Logf("shakedown: FLAKY: iteration %d broke, then again in only %d of %d reruns%s; not shrunk, the search goes on", x.iterations, it.Reproduced, it.Reruns, pressures(it))
			x.flakies = append(x.flakies, it)
			notes = append(notes, func() { x.note(s, it, true) })
			continue
		}
		// The runs after it in its batch count for nothing, as if never
		// made: a search one schedule at a time would have stopped here.
		x.first, x.last, x.firstAt = it, it, i
		x.cache[scheduleKey(s)] = it
		x.shrinkStart = time.Now()
		return true
	}
	for _, note := range notes {
		note()
	}
	return false
}

// explained returns why it, a failure that has been rerun (subject names
// it: "iteration 3"), is the machine's and not the schedule's ("" when it
// stands). A failure one of whose runs shows its client staying away on
// its own after the heal stands, and no rule is asked (stands). First,
// whether it ever broke without a second fault, the
// machine's: a dependency the schedule was not faulting, starved of CPU
// (unscheduled.go). Then, a failure that
// came and went may be the machine's as much as one that stayed: first
// the dependencies' CPU waits in its runs (starved.go), then the
// fault-free control, then, on a contended machine, more reruns and
// controls in turns until the two can be told apart (noise.go), and,
// when the schedule broke more often than fault-free runs but broke only
// Recovery bounds, the reconnect control (reconnect.go): a run without
// faults has nothing to recover from, so it cannot show a machine that
// is slow at recovering. One that reproduced gets the controls
// (machine).
func (x *explorer) explained(it *Iteration, subject string) string {
	if x.stands(it, subject) {
		return ""
	}
	why, not := unscheduled(it, x.base, x.cfg.Invariants)
	if why != "" {
		return why
	}
	if not != "" {
		x.t.Logf("shakedown: %s: not a second fault of the machine's: %s", subject, not)
	}
	if it.confirmed() {
		return x.machine(it, subject)
	}
	if why := starved(it, x.cfg.Invariants); why != "" {
		return why
	}
	subject = fmt.Sprintf("%s, which broke in %d of %d reruns", subject, it.Reproduced, it.Reruns)
	why, c := x.control(it, "control beside "+subject+" (the baseline again, no faults)")
	if why != "" {
		return why
	}
	if why := x.noise(it, c, subject); why != "" || c == nil {
		return why
	}
	return x.reconnect(it, c, subject)
}

// stands reports whether a run of it that broke a Recovery shows the
// client staying away from its dependencies on its own after the heal
// (stayedAway, control.go), logging how (subject names it: "iteration
// 3"): no rule of the machine's then applies. A loaded machine makes
// answers late and can trip a breaker; it does not keep a running client
// from asking again for a whole Within after the heal while it refuses
// its ops. Such a client does not recover, whatever tripped it.
func (x *explorer) stands(it *Iteration, subject string) bool {
	away := awayIn(it, x.cfg.Invariants)
	if away != "" {
		x.t.Logf("shakedown: %s: no rule of the machine's applies: %s", subject, away)
	}
	return away != ""
}

// awayIn is how a run of it that broke a Recovery of invs shows its
// client staying away on its own ("" when none does).
func awayIn(it *Iteration, invs []Invariant) string {
	uses := usesOf(invs)
	for i, r := range brokenRuns(it) {
		for _, name := range r.Findings.brokenNames() {
			inv, ok := invariantNamed(invs, name)
			if !ok {
				continue
			}
			if away := stayedAway(r.History, inv, uses); away != "" {
				return fmt.Sprintf("%s, %s: %s", name, brokeRun(i), away)
			}
		}
	}
	return ""
}

// shrink judges one candidate of rapid's shrinking (rapid reruns the
// failing draw first, then tries smaller ones): a schedule already run
// takes its verdict; a new one that breaks is run once more, and fails
// only if it breaks again.
func (x *explorer) shrink(rt *rapid.T) bool {
	budget := x.cfg.ShrinkTime
	// The candidate draws as the failing batch did; only its schedule at
	// the failure's place is run.
	var s sim.Schedule
	for range x.firstAt + 1 {
		s = x.gen.Draw(rt, "schedule")
	}
	it := x.candidate(s, func() bool { return budget > 0 && time.Since(x.shrinkStart) > budget })
	if it == nil {
		return false
	}
	x.accept(it)
	return true
}

// finish confirms the shrunk failure as often as the first one was. When
// it does not hold up (it broke again in fewer reruns, or the machine
// explained it), it looks back along the schedules shrinking accepted on
// the way from the first failure: a bug that shows only some of the time
// (a breaker that trips on some runs of a short fault) shrinks to the
// edge where it shows in one run of two, and the schedules before the
// edge reproduce every time. It tries them, the latest first, or, on a
// path of more than walkBack, bisects it (the first failure at one end,
// which held up, and the shrunk schedule at the other) trying walkBack,
// and reports the latest it found to hold up, said not to be 1-minimal;
// the first failure when none did.
func (x *explorer) finish() {
	if x.fatal != nil || x.last == nil || x.last == x.first {
		return
	}
	shrunk := x.last
	if x.holdsUp(shrunk, "the shrunk schedule") {
		return
	}
	path := []*Iteration{x.first}
	for _, c := range x.path {
		if c != shrunk && !slices.Contains(path, c) {
			path = append(path, c)
		}
	}
	path = append(path, shrunk)
	lo, hi := 0, len(path)-1 // path[lo] held up, path[hi] did not
	try := func(i int) bool {
		return x.holdsUp(path[i], fmt.Sprintf("schedule %d of the %d shrinking accepted", i, len(path)-1))
	}
	if hi-1 <= walkBack {
		// Few enough to try each, the latest first: shrinking's path
		// need not go from schedules that hold up to ones that do not
		// in one step.
		for i := hi - 1; i > 0; i-- {
			if try(i) {
				lo = i
				break
			}
		}
	} else {
		for tried := 0; hi-lo > 1 && tried < walkBack; tried++ {
			mid := (lo + hi) / 2
			if try(mid) {
				lo = mid
			} else {
				hi = mid
			}
		}
	}
	x.last = path[lo]
	if lo == 0 {
		x.walkedBack = fmt.Sprintf("not shrunk: the shrunk schedule (%s) did not hold up, nor any schedule shrinking accepted before it that was tried", oneLineOr(shrunk.Schedule))
		x.t.Logf("shakedown: reporting the first failure, which reproduced %d of %d:\n%s", x.first.Reproduced, x.first.Reruns, x.first.Schedule)
		return
	}
	x.walkedBack = fmt.Sprintf("not 1-minimal: the shrunk schedule (%s) did not hold up; this is schedule %d of the %d shrinking accepted, the latest found that did", oneLineOr(shrunk.Schedule), lo, len(path)-1)
	x.t.Logf("shakedown: reporting schedule %d of the %d shrinking accepted, which reproduced %d of %d:\n%s", lo, len(path)-1, x.last.Reproduced, x.last.Reruns, x.last.Schedule)
}

// walkBack bounds the schedules finish tries after the shrunk one (each
// costs up to Exploration.Reproduce reruns): every one of a path of 5,
// and enough to bisect a path of 32.
const walkBack = 5

// holdsUp confirms c, a schedule shrinking accepted (subject names it),
// as often as the first failure was, and reports whether it reproduced
// every time and stands: its client stayed away on its own, or neither
// rule 9 nor a control run beside it finds it the machine's.
func (x *explorer) holdsUp(c *Iteration, subject string) bool {
	if n := x.reproduce - c.Reruns; n > 0 {
		x.confirm(c, n, "confirming "+subject, broke)
	}
	if !c.confirmed() {
		x.t.Logf("shakedown: %s broke again in only %d of %d reruns:\n%s", subject, c.Reproduced, c.Reruns, c.Schedule)
		x.flakies = append(x.flakies, c)
		return false
	}
	if x.stands(c, subject) {
		return true
	}
	// A schedule shrinking accepted was judged by rule 9 (unscheduled.go)
	// with one rerun; its confirmations since are more runs that broke,
	// each of which may show the second fault, the machine's, or show it
	// was not there.
	why, not := unscheduled(c, x.base, x.cfg.Invariants)
	if why != "" {
		x.t.Logf("shakedown: %s: its failure is the machine's", subject)
		x.setAside(c, why)
		return false
	}
	if not != "" {
		x.t.Logf("shakedown: %s: not a second fault of the machine's: %s", subject, not)
	}
	// Shrinking against a machine that got slower ends at a schedule only
	// the noise breaks: one more control run beside it.
	if why := x.machine(c, subject); why != "" {
		x.t.Logf("shakedown: %s: its failure is the machine's", subject)
		x.setAside(c, why)
		return false
	}
	return true
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
		if n, ok := search.RapidChecks(); ok && x.batches >= n {
			x.stopped = fmt.Sprintf("rapid's -rapid.checks bound (%d%s) is under the %d iterations asked for", n, x.batchesOf(), x.cfg.Iterations)
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

// endEarly lets confirming runs end early (see early); the package's
// tests turn it off to compare.
var endEarly = true

// run runs one iteration; a confirming one passes what it looks for (e,
// nil for a whole run). A nil result means a fatal error, kept in x.fatal.
func (x *explorer) run(s sim.Schedule, what string, e *early) *Iteration {
	x.t.Helper()
	return x.ran(s, what, x.runOne(s, e))
}

// runOne makes one run of s, with its seed, looking for what e says (nil:
// a whole run); ran counts and logs it. runAll calls it from several
// goroutines at once.
func (x *explorer) runOne(s sim.Schedule, e *early) outcome {
	it, err := runIn(x.t, x.cfg, s, runSeed(x.cfg.Seed, s), e)
	return outcome{it: it, err: err, done: true}
}

// ran counts and logs a run of s made (by run, or side by side by
// runAll), what names it for the log; as run, it returns nil for a fatal
// error, kept in x.fatal.
func (x *explorer) ran(s sim.Schedule, what string, o outcome) *Iteration {
	x.t.Helper()
	it, err := o.it, o.err
	if err != nil {
		x.fatal = err
		return nil
	}
	x.runs++
	if it.early == "" {
		// A run that ended early says nothing of a run's overhead, and
		// covers only part of its schedule: coverage counts whole runs.
		x.over.add(it.Wall, s.Horizon()+x.cooldown())
		if !x.baselining && !x.controlling {
			x.cov.add(it)
		}
	}
	verdict := "held"
	switch {
	case broke(it):
		// Which invariants: a failure's reruns may break different ones,
		// and the log is where the rules' inputs can be read afterwards.
		verdict = "BROKE [" + strings.Join(it.Findings.brokenNames(), "; ") + "]"
	case steady(it):
		verdict = "BROKE WITHOUT FAULTS"
	}
	x.t.Logf("shakedown: %s: %d steps, horizon %v, %d ops: %s (%v%s)%s", what, len(s.Steps), s.Horizon(),
		len(it.History.Ops), verdict, it.Wall.Round(time.Millisecond), machineSuffix(it.History), oneLine(s))
	if steady(it) && x.steady == nil && !x.controlling {
		x.steady = it
		x.t.Logf("shakedown: broke without faults (before the first fault took effect):\n%s", it.Steady)
	}
	if it.RunErr != nil {
		x.t.Logf("shakedown: %s: run reported: %v", what, it.RunErr)
	}
	if it.early != "" {
		x.early++
		x.t.Logf("shakedown: %s: %s", what, it.early)
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

// oneLineOr is a schedule on one line, for errors.
func oneLineOr(s sim.Schedule) string {
	if len(s.Steps) == 0 {
		return "(no faults)"
	}
	return strings.TrimPrefix(oneLine(s), ": ")
}

// machineSuffix is ", CPU pressure 63%, load 9.1" for a real run whose
// machine the kernel described, "" otherwise.
func machineSuffix(h *sim.History) string {
	if h == nil || h.Machine == nil {
		return ""
	}
	return ", " + h.Machine.String()
}

// pressures says how starved of CPU the machine, and each dependency
// after the last heal, were in a flaky failure's run and in each of its
// reruns ("" where the kernel did not say): a failure that came only when
// the machine or the dependency was starved is more likely the machine's
// than one that came at the same pressure as the runs that held.
func pressures(it *Iteration) string {
	if it.History == nil || it.History.Machine == nil {
		return ""
	}
	var again []string
	for _, r := range it.again {
		if r.History != nil && r.History.Machine != nil {
			again = append(again, runCPU(r.History))
		}
	}
	s := " (CPU waits in the failing run: " + runCPU(it.History)
	if len(again) > 0 {
		s += "; in the reruns: " + strings.Join(again, "; ")
	}
	return s + ")"
}

// runCPU is "machine 87%, db 5% (using 0.01 CPUs) until the last heal and
// 60% (using 0.12 CPUs) after" for a real run: the machine's CPU
// pressure, and the share of the time before and after the last heal
// (the whole run when nothing healed) during which each dependency that
// tells waited for a CPU, with the CPU it used.
func runCPU(h *sim.History) string {
	s := fmt.Sprintf("machine %.0f%%", 100*h.Machine.CPUPressure)
	figure := func(d sim.DependencyCPU, from, to time.Duration) string {
		w := d.WaitedBetween(from, to)
		if w < 0 {
			return ""
		}
		f := fmt.Sprintf("%.0f%%", 100*w)
		u, o := d.UsedBetween(from, to), d.OpenedBetween(from, to)
		switch {
		case u >= 0 && o >= 0:
			f += fmt.Sprintf(" (using %.2f CPUs, %.0f connections opened)", u, o)
		case u >= 0:
			f += fmt.Sprintf(" (using %.2f CPUs)", u)
		}
		return f
	}
	heal, why := lastHeal(h)
	for _, d := range h.Machine.Dependencies {
		if why != "" {
			if f := figure(d, 0, math.MaxInt64); f != "" {
				s += fmt.Sprintf(", %s %s", d.Target, f)
			}
			continue
		}
		before, after := figure(d, 0, heal), figure(d, heal, math.MaxInt64)
		switch {
		case before != "" && after != "":
			s += fmt.Sprintf(", %s %s until the last heal and %s after", d.Target, before, after)
		case after != "":
			s += fmt.Sprintf(", %s %s after the last heal", d.Target, after)
		}
	}
	return s
}
