package sim

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"
)

// Until decides, during a run, that the run may end early: it is called
// with the history so far and the ops still in flight, and returns true
// once nothing that could follow would change what the caller wants to
// know of the run (an invariant that can no longer hold, say).
//
// The history so far holds the ops that ended (by ID), the faults applied
// and reverted so far, and its Duration is the offset of the call; it has
// no samples. The ops in flight have their Start and Intended, and End
// set to the offset of the call.
//
// A run with an Until calls it every [Settings.SampleEvery], from the
// start to the end of the drain. Once it returns true the run ends at
// once: the schedule stops and every fault applied is reverted, as when
// the run is cancelled; no new op starts; the ops in flight are recorded
// as cut off by the run's end ([ErrCutOff], [Missed]: the framework's,
// not the service's) and cancelled, and the run does not wait for them
// (those that ignore cancellation are left to the client, as abandoned
// ops are); the samplers' quiet reading is not taken. Run returns no
// error for it: the History ends where the run did.
//
// Under testing/synctest the calls do not take turns with the run's
// other events (see the package doc's Determinism): when one returns
// true can differ from one run of the same seed to the next, so a run
// that must repeat exactly has no Until.
type Until func(h *History, inFlight []Op) bool

// errEarly is the cause of the schedule's end when Until decided.
var errEarly = errors.New("sim: the run's Until decided that it may end early")

// watch starts the watcher of p.Until, when set: it returns the context
// the schedule runs on (cancelled when Until decides) and a channel
// closed then. Without an Until they are ctx and nil. r.unwatch stops
// the watcher.
func (r *runner) watch(ctx context.Context, work *workRun, rec *Recorder, every time.Duration) (context.Context, <-chan struct{}) {
	r.unwatch = func() {}
	if r.p.Until == nil {
		return ctx, nil
	}
	sctx, cancel := context.WithCancelCause(ctx)
	decided, quit, exited := make(chan struct{}), make(chan struct{}), make(chan struct{})
	r.unwatch = func() {
		close(quit)
		<-exited
		cancel(nil)
	}
	go func() {
		defer close(exited)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
			}
			if r.decide(work, rec) {
				close(decided)
				cancel(errEarly)
				return
			}
		}
	}()
	return sctx, decided
}

// decide calls p.Until with the run so far; a panic in it decides
// nothing.
func (r *runner) decide(work *workRun, rec *Recorder) (yes bool) {
	defer func() {
		if recover() != nil {
			yes = false
		}
	}()
	now := time.Since(r.start)
	r.evMu.Lock()
	faults := slices.Clone(r.events)
	r.evMu.Unlock()
	h := &History{Seed: r.p.Seed, Schedule: r.p.Schedule, Ops: rec.Ops(), Faults: faults, Duration: now}
	var inFlight []Op
	if work != nil {
		work.mu.Lock()
		for _, id := range slices.Sorted(maps.Keys(work.inflight)) {
			op := work.inflight[id]
			op.End = now
			inFlight = append(inFlight, op)
		}
		work.mu.Unlock()
	}
	return r.p.Until(h, inFlight)
}

// endEarly ends a run that Until decided: the ops in flight are recorded
// as cut off, nothing more is recorded, and their contexts are cancelled.
func (r *runner) endEarly(work *workRun, cancelOps context.CancelCauseFunc) {
	r.early = true
	now := time.Since(r.start)
	if work != nil {
		work.mu.Lock()
		work.abandoned = true
		for _, id := range slices.Sorted(maps.Keys(work.inflight)) {
			op := work.inflight[id]
			op.End = max(now, op.Start)
			op.Outcome = Missed
			op.Err = ErrCutOff.Error() + "; " + errEarly.Error()
			work.rec.Record(op)
		}
		work.inflight = nil
		work.mu.Unlock()
	}
	cancelOps(ErrCutOff)
}
