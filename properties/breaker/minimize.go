package breaker

import (
	"fmt"
	"time"

	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/sim"
)

// run runs s once, counting it, or returns its earlier run; nil means a
// fatal error, kept in x.fatal.
func (x *explorer) run(s sim.Schedule) *Iteration {
	key := s.String()
	if run, ok := x.seen[key]; ok {
		return run
	}
	start := time.Now()
	run, err := runIn(x.t, x.cfg, s)
	x.wall += time.Since(start)
	if err != nil {
		x.fatal = err
		return nil
	}
	x.runs++
	x.ops += int64(len(run.Ops))
	if x.seen == nil {
		x.seen = map[string]*Iteration{}
	}
	x.seen[key] = run
	return run
}

// minimizeRuns bounds the new runs of the 1-minimal pass. A count, not a
// time: the pass reaches the same schedule from the same start on any
// machine. It is a bound for safety: four steps of a 60s configuration,
// each value bisected over its range, take a few hundred runs.
const minimizeRuns = 2000

// minimize takes rapid's shrunk counterexample on to a 1-minimal schedule
// with properties.Minimize (which merges steps too). The pass is not bound
// by ShrinkTime, only by minimizeRuns and the test's deadline: with a
// wall-clock budget, a loaded machine left rapid's local minimum as it was
// (TestExploreCatches saw four steps where the last one alone breaks the
// spec). A run in virtual time gives the same verdict every time, so each
// candidate runs once.
func (x *explorer) minimize() {
	if x.fatal != nil || x.last == nil {
		return
	}
	broken := map[string]*Iteration{}
	runs := x.runs
	s := properties.Minimize(x.cfg.Bounds, x.last.Schedule, func(s sim.Schedule) bool {
		if x.fatal != nil {
			return false
		}
		if _, ran := x.seen[s.String()]; !ran {
			if x.runs-runs >= minimizeRuns {
				x.stopped = fmt.Sprintf("the 1-minimal pass stopped after %d runs", minimizeRuns)
				return false
			}
			if !x.fits(1) {
				x.stopped = "the test's deadline cut shrinking short"
				return false
			}
		}
		run := x.run(s)
		if run == nil || !run.Broken() {
			return false
		}
		broken[s.String()] = run
		return true
	})
	if run := broken[s.String()]; run != nil {
		x.last = run
	}
}
