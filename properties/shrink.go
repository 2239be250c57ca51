package properties

import (
	"fmt"
	"slices"

	"github.com/shakedown/shakedown/sim"
)

// candidate judges one candidate of shrinking and returns its iteration
// when it fails (nil when not): a schedule already run takes its verdict;
// a new one that breaks is run once more, and fails only if it breaks
// again, and not only beside a dependency the machine starved
// (unscheduled.go; logged the first time). No new candidate is run past
// out() (rapid's shrink time, the 1-minimal pass's count of runs), or
// when a run no longer fits before the test's deadline.
func (x *explorer) candidate(s sim.Schedule, out func() bool) *Iteration {
	key := scheduleKey(s)
	it, ok := x.cache[key]
	if ok {
		x.hits++
	} else {
		if x.fatal != nil || out() {
			x.noteUnrun()
			return nil // out of budget: reject the candidate without running it
		}
		if !x.fits(s.Horizon(), 2) {
			x.stopped = "the test's deadline cut shrinking short"
			x.noteUnrun()
			return nil
		}
		if it = x.shrinkRun(s); it == nil {
			return nil // fatal; recorded
		}
		if broke(it) {
			x.confirm(it, min(x.reproduce, 1), "confirming", broke)
		}
		x.cache[key] = it
	}
	if !broke(it) || !it.confirmed() {
		return nil
	}
	if awayIn(it, x.cfg.Invariants) != "" {
		return it // the client's own, whatever the machine (explore.go, stands)
	}
	if why, _ := unscheduled(it, x.base, x.cfg.Invariants); why != "" {
		if !ok {
			x.t.Logf("shakedown: shrinking: the candidate does not count as failing: %s", why)
		}
		return nil
	}
	return it
}

// minimizeRuns bounds the runs of the 1-minimal pass: a count, not a
// time, so that whether a shrunk failure is 1-minimal does not depend on
// how busy the machine is. It is a bound for safety (a pass over one or
// two steps takes tens of runs); the test's deadline bounds the pass too.
var minimizeRuns = 2000

// minimize takes rapid's shrunk failure on to a 1-minimal schedule (see
// [Minimize]), each candidate judged as rapid's are. Exploration.ShrinkTime
// bounds rapid's shrinking only, not this pass: a wall-clock budget left
// the checkout's shrunk failure short of 1-minimal on a loaded machine.
func (x *explorer) minimize() {
	if x.fatal != nil || x.last == nil {
		return
	}
	from := x.last
	runs, hits := x.runs, x.hits
	x.minimizing = true
	s := minimize(x.cfg.Bounds, from.Schedule, func(c sim.Schedule) bool {
		it := x.candidate(c, func() bool { return x.runs-runs >= minimizeRuns })
		if it != nil {
			x.accept(it)
		}
		return it != nil
	}, func(cs []sim.Schedule) { x.offered = cs })
	x.minimizing, x.offered, x.ahead = false, nil, nil
	if it := x.cache[scheduleKey(s)]; it != nil && broke(it) && it.confirmed() {
		x.last = it
	}
	x.t.Logf("shakedown: minimized (%d runs, %d cached verdicts) from %s to %s: %s", x.runs-runs, x.hits-hits, oneLineOr(from.Schedule), oneLineOr(x.last.Schedule), minimality(x.unrun))
}

// noteUnrun counts a candidate of the 1-minimal pass that was not run:
// the result is then not proven 1-minimal.
func (x *explorer) noteUnrun() {
	if x.minimizing {
		x.unrun++
	}
}

// accept notes it, a failing schedule, as the one shrinking goes on
// from, and keeps it on the path finish may walk back along (finish
// drops the repeats a cached verdict makes).
func (x *explorer) accept(it *Iteration) {
	x.last = it
	x.path = append(x.path, it)
}

// Minimality says how small Failure is, when it is not flaky: "1-minimal"
// (no neighbour one move milder fails: see [Minimize]); "not shown
// 1-minimal" when the 1-minimal pass ran out of runs or time; "not
// 1-minimal" when the shrunk schedule did not hold up and Failure is a
// schedule shrinking accepted before it; "not shrunk" when Failure is the
// first failure. Each but the first with the reason.
func (r *Result) Minimality() string {
	if r.walkedBack != "" {
		return r.walkedBack
	}
	return minimality(r.unrun)
}

// minimality says whether the shrunk schedule is 1-minimal: it is when
// the 1-minimal pass ran every candidate it asked about.
func minimality(unrun int) string {
	if unrun == 0 {
		return "1-minimal"
	}
	return fmt.Sprintf("not shown 1-minimal: %d smaller candidates were left unrun (the test's deadline, or the pass's bound of %d runs, ran out)", unrun, minimizeRuns)
}

// shrinkRun runs s, a candidate of shrinking, as run does. In the
// 1-minimal pass with Parallel above 1, s and the candidates the pass
// offered after it (see minimize) not yet judged are run side by side,
// up to Parallel of them, and those after s wait in x.ahead for the pass
// to ask: it asks in order and stops at the first that fails, so the
// ones after that are run for nothing, and are not counted.
func (x *explorer) shrinkRun(s sim.Schedule) *Iteration {
	key := scheduleKey(s)
	o, ok := x.ahead[key]
	if !ok {
		x.runAhead(key)
		o, ok = x.ahead[key]
	}
	if !ok {
		return x.run(s, "shrinking", nil)
	}
	delete(x.ahead, key)
	return x.ran(s, "shrinking", o)
}

// runAhead runs the offered candidate of the given key and the ones
// after it that are not judged yet, up to x.parallel() in all, side by
// side, keeping their outcomes in x.ahead. It runs none unless two or
// more would go side by side.
func (x *explorer) runAhead(key string) {
	i := slices.IndexFunc(x.offered, func(c sim.Schedule) bool { return scheduleKey(c) == key })
	if i < 0 || x.parallel() < 2 {
		return
	}
	var wave []sim.Schedule
	keys := map[string]bool{}
	for _, c := range x.offered[i:] {
		k := scheduleKey(c)
		if _, judged := x.cache[k]; judged || keys[k] {
			continue
		}
		if _, waiting := x.ahead[k]; waiting {
			continue
		}
		keys[k] = true
		wave = append(wave, c)
		if len(wave) == x.parallel() {
			break
		}
	}
	if len(wave) < 2 {
		return
	}
	if x.ahead == nil {
		x.ahead = map[string]outcome{}
	}
	for j, o := range x.runAll(wave, nil, nil) {
		x.ahead[scheduleKey(wave[j])] = o
	}
	x.aheadRuns += len(wave)
}
