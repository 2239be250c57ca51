package properties

import (
	"fmt"
	"time"

	"github.com/shakedown/shakedown/sim"
)

// candidate judges one candidate of shrinking and returns its iteration
// when it fails (nil when not): a schedule already run takes its verdict;
// a new one that breaks is run once more, and fails only if it breaks
// again. Past budget since shrinking began (when budget > 0), or when a
// run no longer fits before the test's deadline, no new candidate is run.
func (x *explorer) candidate(s sim.Schedule, budget time.Duration) *Iteration {
	key := scheduleKey(s)
	it, ok := x.cache[key]
	if ok {
		x.hits++
	} else {
		if x.fatal != nil || budget > 0 && time.Since(x.shrinkStart) > budget {
			x.noteUnrun()
			return nil // out of shrink time: reject the candidate without running it
		}
		if !x.fits(s.Horizon(), 2) {
			x.stopped = "the test's deadline cut shrinking short"
			x.noteUnrun()
			return nil
		}
		if it = x.run(s, "shrinking", nil); it == nil {
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
	return it
}

// minimize takes rapid's shrunk failure on to a 1-minimal schedule (see
// [Minimize]), each candidate judged as rapid's are; rapid has half of
// Exploration.ShrinkTime, this pass the rest.
func (x *explorer) minimize() {
	if x.fatal != nil || x.last == nil {
		return
	}
	from := x.last
	runs, hits := x.runs, x.hits
	x.minimizing = true
	s := Minimize(x.cfg.Bounds, from.Schedule, func(c sim.Schedule) bool {
		return x.candidate(c, x.cfg.ShrinkTime) != nil
	})
	x.minimizing = false
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

// minimality says whether the shrunk schedule is 1-minimal: it is when
// the 1-minimal pass ran every candidate it asked about.
func minimality(unrun int) string {
	if unrun == 0 {
		return "1-minimal"
	}
	return fmt.Sprintf("not shown 1-minimal: %d smaller candidates were left unrun (the shrink budget, Exploration.ShrinkTime, or the test's deadline ran out)", unrun)
}
