package sim

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/shakedown/shakedown/toxics"
)

// Defaults for the zero values of [Settings].
const (
	DefaultCooldown = time.Second
	DefaultDrain    = 10 * time.Second
	// DefaultSettle bounds the wait for the quiet reading after the drain
	// (see [Settings.Settle]).
	DefaultSettle = 500 * time.Millisecond
	// AbandonGrace is how long ops may ignore the cancellation that
	// follows the drain before the run records them as abandoned
	// ([ErrAbandoned]) and returns without them.
	AbandonGrace = time.Second
	// RevertTimeout bounds each revert. Reverts run on a context that is
	// not cancelled with the run's, so a cancelled run still heals.
	RevertTimeout = 30 * time.Second
)

// World is what one run acts on and observes.
type World struct {
	// Targets are what the schedule's steps name.
	Targets []Target
	// Workload is the load to drive from the start of the run to its end.
	// The zero value drives none.
	Workload Workload
	// Samplers are polled every [Settings.SampleEvery] during the run,
	// and until they read the same twice after it (see [Settings.Settle]).
	Samplers []Sampler
}

// Settings tune a run; every zero value is a working default. Package
// properties embeds the same struct in its Config.
type Settings struct {
	// SampleEvery is the sampling interval. Zero means
	// [DefaultSampleEvery].
	SampleEvery time.Duration
	// Cooldown is how long the run goes on after the schedule's horizon
	// (its last revert), so recovery can be observed. Zero means
	// [DefaultCooldown]; a negative value means none.
	Cooldown time.Duration
	// Drain is how long ops still in flight at the end of the run may
	// take before their contexts are cancelled. Zero means
	// [DefaultDrain].
	Drain time.Duration
	// Settle bounds the wait, once the ops have drained, for the samplers
	// to read the same values twice in a row (10ms apart): the last of
	// those readings, placed at the end of the run, is the "quiet" one
	// that invariants of a quiet system (no connection still in use, no
	// goroutine leaked) judge. Pools release connections asynchronously
	// (pgxpool counts a connection being closed as acquired), so a reading
	// taken the moment the last op returns can still count them. Zero
	// means [DefaultSettle]; a negative value means one reading at once.
	Settle time.Duration
	// Logger receives a record for every fault applied and reverted, with
	// the seed and the step. Nil discards them.
	Logger *slog.Logger
}

// CooldownOrDefault is the cooldown a run with s really has: Cooldown,
// [DefaultCooldown] for zero, and none for a negative value.
func (s Settings) CooldownOrDefault() time.Duration {
	switch {
	case s.Cooldown == 0:
		return DefaultCooldown
	case s.Cooldown < 0:
		return 0
	}
	return s.Cooldown
}

// Plan says what one [Run] does. Only Schedule and Targets are needed;
// every other field has a working zero value.
type Plan struct {
	World
	Settings
	// Schedule is the faults to apply, validated against Targets before
	// anything starts.
	Schedule Schedule
	// Seed is the run's seed: op kinds, inputs and trace IDs all derive
	// from it. Zero is a seed like any other.
	Seed int64
	// Until, when set, may end the run early (see [Until]). A run that
	// must repeat exactly, or needs its whole history, leaves it nil.
	Until Until
}

func (p Plan) validate() error {
	var errs []error
	if err := p.Schedule.Validate(p.Targets); err != nil {
		errs = append(errs, err)
	}
	if err := p.Workload.validate(); err != nil {
		errs = append(errs, err)
	}
	for i, s := range p.Samplers {
		if s == nil {
			errs = append(errs, fmt.Errorf("sim: Plan.Samplers[%d] is nil", i))
		}
	}
	if p.SampleEvery < 0 {
		errs = append(errs, fmt.Errorf("sim: Plan.SampleEvery %v is negative", p.SampleEvery))
	}
	if p.Drain < 0 {
		errs = append(errs, fmt.Errorf("sim: Plan.Drain %v is negative", p.Drain))
	}
	return errors.Join(errs...)
}

// Run applies p.Schedule to p.Targets while p.Workload runs, and returns
// everything that happened as one [History].
//
// It validates the configuration first and returns a nil History if it is
// wrong. Then it starts the workload and the samplers, applies each step
// at its offset and reverts it when its duration ends, all from the
// calling goroutine with one timer for the next event. The order of the
// events depends on the schedule alone: by planned offset; at the same
// offset reverts, then applies, then the reverts of steps that take no
// time (a Restart, or For == 0); then by step index. A runner that falls
// behind the clock performs them in the same order, late. After
// the schedule's horizon the workload goes on for the cooldown, then no
// new op starts and ops in flight get p.Drain to finish. Once they have,
// the samplers are read until they settle (see [Settings.Settle]), and
// that quiet reading is the History's last, at the end of the run.
//
// On the wall clock the runner sleeps until 2 ms before each event, then
// yields in a loop until it is due, so a step starts within microseconds of
// its offset on a quiet machine (Go's timers alone wake up to a
// millisecond late), for at most 2 ms of CPU per event.
//
// Every timestamp is an offset from one start time, measured with
// time.Since, so under [testing/synctest] the run takes no wall time and
// every step starts exactly on time; events at the same instant take
// turns in a fixed order, so the same seed and schedule give the same
// History (see the package doc's Determinism).
//
// If ctx is cancelled, Run stops the workload, reverts every fault it
// applied and returns the partial History with an error wrapping
// ctx.Err(). A fault that could not be applied or reverted is recorded in
// its [FaultEvent] and is also in the returned error, as a [*StepError];
// so is a panic in an op. The History is complete in every case.
func Run(ctx context.Context, p Plan) (*History, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With(slog.Int64("seed", p.Seed))
	cooldown := p.CooldownOrDefault()
	drain := cmp.Or(p.Drain, DefaultDrain)
	every := cmp.Or(p.SampleEvery, DefaultSampleEvery)
	horizon := p.Schedule.Horizon()
	end := horizon + cooldown
	if end < horizon {
		end = math.MaxInt64 // a cooldown that overflows: run until cancelled
	}

	// In a synctest bubble, events at the same instant take turns in a
	// fixed order (see turns.go); detach before the turns end.
	ts := startTurns()
	defer ts.close()
	defer attachTurns(p.Targets, ts)()

	start := time.Now()
	var stalls *stallWatch
	var machine machineWatch
	if ts == nil { // real time (see stall.go and machine.go)
		stalls = watchStalls(start)
		machine = watchMachine(p.Targets, log)
	}
	r := &runner{p: p, log: log, start: start, turns: ts, targets: make(map[string]Target, len(p.Targets))}
	for _, t := range p.Targets {
		r.targets[t.Name()] = t
	}
	log.LogAttrs(ctx, slog.LevelInfo, "sim: run started", slog.Int("steps", len(p.Schedule.Steps)),
		slog.Duration("horizon", horizon), slog.Duration("end", end))

	opsCtx, cancelOps := context.WithCancelCause(ctx)
	defer cancelOps(nil)
	stop := make(chan struct{})
	var rec Recorder
	var wg, sampling sync.WaitGroup
	var work *workRun
	if len(p.Workload.Kinds) > 0 {
		work = newWorkRun(opsCtx, p.Seed, start, end, p.Workload, stop, &rec)
		work.stopErr = func() error { return context.Cause(ctx) }
		work.turns = ts
		driver := p.Workload.Driver
		if driver == nil {
			driver = ClosedLoop{}
		}
		wg.Go(func() { driver.drive(work) })
	}
	var samples []Sample
	var samplesMissed int
	if len(p.Samplers) > 0 {
		sampling.Go(func() { samples, samplesMissed = sampleLoop(opsCtx, p.Samplers, every, start, stop, log) })
	}

	// An early end (Plan.Until) ends the schedule as a cancellation
	// would, reverting what it applied, but is not the run's error.
	schedCtx, decided := r.watch(ctx, work, &rec, every)
	r.runSchedule(schedCtx)
	if schedCtx.Err() == nil {
		r.wait(schedCtx, end)
		if ctx.Err() != nil {
			r.cancelledAt = time.Since(start)
		}
	}
	close(stop)

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	drainTimer := time.NewTimer(drain)
	select {
	case <-done:
	case <-decided:
		// Decided: the ops in flight are cut off now, not waited for.
		r.endEarly(work, cancelOps)
	case <-drainTimer.C:
		log.LogAttrs(ctx, slog.LevelWarn, "sim: ops still in flight after the drain; cancelling them", slog.Duration("drain", drain))
		if work != nil {
			work.cut(time.Since(start))
		}
		cancelOps(ErrCutOff)
		// An op that ignores its context (a client with no timeout of
		// its own) must not hang the run: after a grace it is recorded
		// as abandoned and left to the client.
		grace := time.NewTimer(AbandonGrace)
		select {
		case <-done:
		case <-grace.C:
			if n := work.abandon(time.Since(start)); n > 0 {
				log.LogAttrs(ctx, slog.LevelWarn, "sim: ops ignored cancellation; recorded as abandoned",
					slog.Int("ops", n), slog.Duration("grace", AbandonGrace))
			}
		}
		grace.Stop()
	}
	drainTimer.Stop()
	r.unwatch()
	sampling.Wait()
	lapses := stalls.close()
	stalled := stallsOf(lapses)
	var load *Machine
	if ts == nil {
		load = machine.close(lapses)
	}

	h := &History{
		Seed:     p.Seed,
		Schedule: p.Schedule,
		Began:    start.Round(0).UTC(),
		Ops:      rec.Ops(),
		Faults:   r.events,
		Samples:  samples,
		Duration: time.Since(start),
		Machine:  load,

		SamplesMissed: samplesMissed,
	}
	if n := markStalled(h, stalled); n > 0 {
		log.LogAttrs(ctx, slog.LevelWarn, "sim: the test process was not run for a while; the ops it overlapped are recorded as missed",
			slog.Int("stalls", len(stalled)), slog.Int("ops", n))
	}
	if ctx.Err() == nil && len(p.Samplers) > 0 && !r.early {
		// The sampling loop's last reading comes when the load stops,
		// with ops still draining; the settled one comes once they have.
		quiet, missed := settle(ctx, p.Samplers, h.Duration, p.Settle, log)
		h.Samples = append(h.Samples, quiet...)
		h.SamplesMissed += missed
		gatherOpLogs(h, p.Samplers, log)
	}
	errs := r.errs
	if work != nil {
		if err := work.panicked(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := ctx.Err(); err != nil {
		if r.cancelledAt == 0 {
			r.cancelledAt = h.Duration // while ops drained
		}
		errs = append([]error{fmt.Errorf("sim: run cancelled at %v: %w", r.cancelledAt, context.Cause(ctx))}, errs...)
	}
	log.LogAttrs(ctx, slog.LevelInfo, "sim: run finished", slog.Int("ops", len(h.Ops)),
		slog.Int("faults", len(h.Faults)), slog.Duration("duration", h.Duration), slog.Int("errors", len(errs)))
	return h, errors.Join(errs...)
}

// runner applies one schedule. Only Run's goroutine touches it.
type runner struct {
	p           Plan
	log         *slog.Logger
	start       time.Time
	targets     map[string]Target
	events      []FaultEvent
	errs        []error
	cancelledAt time.Duration
	timer       *time.Timer
	turns       *turns // in a bubble: wait by turns (see turns.go)
	// evMu guards events for the watcher of an early end (until.go);
	// early says the run ended early.
	evMu    sync.Mutex
	early   bool
	unwatch func()
}

// active is a fault that is applied and not yet reverted.
type active struct {
	step   int
	event  int // index in runner.events
	revert func(context.Context) error
}

// event is one planned apply or revert.
type event struct {
	at    time.Duration
	phase int // at the same instant: 0 reverts, 1 applies, 2 reverts of zero-length steps applied then
	step  int
}

// plan returns the schedule's events in the order the runner performs
// them: by planned offset; at the same offset reverts, then applies, then
// the reverts of steps that take no time; then by step index. The order
// depends on the schedule alone, so a runner that falls behind the clock
// still performs the events in the same order, only late.
func plan(s Schedule) []event {
	evs := make([]event, 0, 2*len(s.Steps))
	for i, st := range s.Steps {
		evs = append(evs, event{at: st.At, phase: 1, step: i})
		if st.End() == st.At {
			evs = append(evs, event{at: st.At, phase: 2, step: i})
		} else {
			evs = append(evs, event{at: st.End(), phase: 0, step: i})
		}
	}
	slices.SortFunc(evs, func(a, b event) int {
		return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.phase, b.phase), cmp.Compare(a.step, b.step))
	})
	return evs
}

// runSchedule applies and reverts every step, returning after the last
// revert or, if ctx is cancelled, once everything applied is reverted.
func (r *runner) runSchedule(ctx context.Context) {
	live := map[int]active{}
	for _, ev := range plan(r.p.Schedule) {
		r.wait(ctx, ev.at)
		if ctx.Err() != nil {
			break
		}
		if ev.phase == 1 {
			if a, ok := r.apply(ctx, ev.step); ok {
				live[ev.step] = a
			}
			continue
		}
		if a, ok := live[ev.step]; ok {
			delete(live, ev.step)
			r.revert(ctx, a)
		}
	}
	if ctx.Err() == nil {
		return
	}
	r.cancelledAt = time.Since(r.start)
	r.log.LogAttrs(ctx, slog.LevelWarn, "sim: run cancelled; reverting every applied fault",
		slog.Duration("offset", r.cancelledAt), slog.Int("applied", len(live)), slog.Any("cause", context.Cause(ctx)))
	for _, i := range slices.Sorted(maps.Keys(live)) {
		r.revert(ctx, live[i])
	}
}

// spinWindow is how long before an event the runner stops sleeping and
// yields in a loop instead. Go's timers wake up to about a millisecond late
// when the process is idle (the poller sleeps in whole milliseconds), so
// sleeping to the last moment would make every step that late.
const spinWindow = 2 * time.Millisecond

// wait blocks until offset at or until ctx is done. It sleeps on a timer
// until spinWindow before at, then yields until at. Under
// testing/synctest the clock does not move while a goroutine runs, so a
// clock that stands still across a yield means a virtual clock: then it
// sleeps the rest on the timer, which virtual time makes exact.
func (r *runner) wait(ctx context.Context, at time.Duration) {
	if r.turns != nil {
		if at >= math.MaxInt64/2 {
			<-ctx.Done() // no end: until cancelled
			return
		}
		r.turns.wait(r.start.Add(at), turnKey{class: turnStep}, ctx.Done())
		return
	}
	if d := at - spinWindow - time.Since(r.start); d > 0 {
		if !r.sleep(ctx, d) {
			return
		}
	}
	prev := time.Since(r.start)
	for prev < at {
		if ctx.Err() != nil {
			return
		}
		runtime.Gosched()
		now := time.Since(r.start)
		if now == prev {
			r.sleep(ctx, at-now)
			return
		}
		prev = now
	}
}

// sleep sleeps for d on the runner's timer; false means ctx is done.
func (r *runner) sleep(ctx context.Context, d time.Duration) bool {
	if r.timer == nil {
		r.timer = time.NewTimer(d)
	} else {
		r.timer.Reset(d)
	}
	select {
	case <-r.timer.C:
		return true
	case <-ctx.Done():
		r.timer.Stop()
		return false
	}
}

func (r *runner) stepAttrs(i int) slog.Attr {
	st := r.p.Schedule.Steps[i]
	return slog.Group("step", slog.Int("index", i), slog.String("target", st.Target),
		slog.String("fault", st.Fault.String()), slog.Duration("at", st.At), slog.Duration("for", st.For))
}

func (r *runner) apply(ctx context.Context, i int) (active, bool) {
	st := r.p.Schedule.Steps[i]
	ev := FaultEvent{Step: i, Target: st.Target, Fault: toxics.Spec{Fault: st.Fault}, Start: time.Since(r.start)}
	var revert func(context.Context) error
	err := protect(fmt.Sprintf("Apply of target %q", st.Target), func() error {
		var e error
		revert, e = r.targets[st.Target].Apply(ctx, st.Fault)
		return e
	})
	r.evMu.Lock()
	r.events = append(r.events, ev)
	if err != nil {
		r.events[len(r.events)-1].Err = err.Error()
	}
	r.evMu.Unlock()
	if err != nil {
		r.errs = append(r.errs, &StepError{Index: i, Step: st, Err: fmt.Errorf("apply: %w", err)})
		r.log.LogAttrs(ctx, slog.LevelError, "sim: fault not applied", r.stepAttrs(i),
			slog.Duration("offset", ev.Start), slog.Any("err", err))
		return active{}, false
	}
	r.log.LogAttrs(ctx, slog.LevelInfo, "sim: fault applied", r.stepAttrs(i),
		slog.Duration("offset", ev.Start), slog.Duration("late", ev.Start-st.At))
	return active{step: i, event: len(r.events) - 1, revert: revert}, true
}

func (r *runner) revert(ctx context.Context, a active) {
	st := r.p.Schedule.Steps[a.step]
	ev := &r.events[a.event]
	began := time.Since(r.start)
	err := protect(fmt.Sprintf("revert of target %q", st.Target), func() error {
		if a.revert == nil {
			return nil
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), RevertTimeout)
		defer cancel()
		return a.revert(rctx)
	})
	r.evMu.Lock()
	defer r.evMu.Unlock()
	if err != nil {
		ev.RevertErr = err.Error()
		r.errs = append(r.errs, &StepError{Index: a.step, Step: st, Err: fmt.Errorf("revert: %w", err)})
		r.log.LogAttrs(ctx, slog.LevelError, "sim: fault not reverted", r.stepAttrs(a.step),
			slog.Duration("offset", began), slog.Any("err", err))
		return
	}
	ev.End = time.Since(r.start)
	r.log.LogAttrs(ctx, slog.LevelInfo, "sim: fault reverted", r.stepAttrs(a.step),
		slog.Duration("offset", began), slog.Duration("held", ev.End-ev.Start))
}

// attachTurns hands ts to the simulated networks among targets that have
// none, and returns the function that takes it back.
func attachTurns(targets []Target, ts *turns) (detach func()) {
	if ts == nil {
		return func() {}
	}
	var nets []*Network
	for _, t := range targets {
		sn, ok := t.(interface{ simNetwork() *Network })
		if !ok {
			continue
		}
		if n := sn.simNetwork(); n != nil && n.turns.CompareAndSwap(nil, ts) {
			nets = append(nets, n)
		}
	}
	return func() {
		for _, n := range nets {
			n.turns.CompareAndSwap(ts, nil)
		}
	}
}
