package properties

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"pgregory.net/rapid"

	"github.com/shakedown/shakedown/properties/internal/search"
	"github.com/shakedown/shakedown/sim"
)

// Simulated runs can go side by side: each has a testing/synctest bubble
// and a World of its own, so the search's schedules, a failure's
// confirming runs and the 1-minimal pass's candidates (shrink.go,
// shrinkRun) are made on up to Exploration.Parallel cores at once, and
// judged in the order a search one run at a time would have made them.
// Real runs share one set of dependencies and go one at a time.

// searchBatch is how many schedules a simulated search draws at a time
// (one rapid check). The size is fixed, not the number of cores, so that a
// seed explores the same schedules and finds the same failure with any
// Parallel.
const searchBatch = 8

// batchSize is how many schedules the search draws at a time: searchBatch
// when simulated, one when real.
func (x *explorer) batchSize() int {
	if x.cfg.Simulate {
		return searchBatch
	}
	return 1
}

// batchesOf says, for a message about rapid's checks, what one check is
// when it is a batch ("" when it is one schedule).
func (x *explorer) batchesOf() string {
	if x.batchSize() == 1 {
		return ""
	}
	return fmt.Sprintf(" checks, each a batch of up to %d schedules", x.batchSize())
}

// parallel is how many simulated runs go at once (1 for real runs).
func (x *explorer) parallel() int {
	if !x.cfg.Simulate {
		return 1
	}
	return max(x.cfg.Parallel, 1)
}

// sideBySide reports whether n runs would go side by side.
func (x *explorer) sideBySide(n int) bool { return n > 1 && x.parallel() > 1 }

// errFailedOffTheTest ends an exploration whose run, made beside others,
// failed the test itself.
var errFailedOffTheTest = errors.New("properties: a run made beside others failed the test (t.Fatal or t.FailNow in its World, Reset or workload, or the race detector in its bubble): see the log above; the exploration stops")

// outcome is what one run made, before ran counts and logs it.
type outcome struct {
	it   *Iteration
	err  error
	done bool
}

// batch is the schedules of one search step, and whose they are.
type batch struct {
	schedules []sim.Schedule
	mine      []bool // false: another shard's (see shard.go)
	outcomes  []outcome
}

// drawBatch draws the search's next batch: up to batchSize schedules, as
// many as the iterations left allow.
func (x *explorer) drawBatch(rt *rapid.T) *batch {
	n := min(x.batchSize(), x.cfg.Iterations-x.iterations)
	b := &batch{schedules: make([]sim.Schedule, n), mine: make([]bool, n), outcomes: make([]outcome, n)}
	for i := range n {
		b.schedules[i] = x.gen.Draw(rt, "schedule")
	}
	for i, s := range b.schedules {
		b.mine[i] = x.mine(x.iterations+1+i, s)
	}
	return b
}

// outcome returns the run of the batch's i-th schedule, running it first,
// side by side with those of the schedules after it that are this shard's
// and not run yet: up to the first that breaks, where a search one run at
// a time would stop (a run already under way then is kept).
func (b *batch) outcome(x *explorer, i int) outcome {
	if !b.outcomes[i].done {
		var at []int
		for j := i; j < len(b.schedules); j++ {
			if b.mine[j] && !b.outcomes[j].done {
				at = append(at, j)
			}
		}
		ss := make([]sim.Schedule, len(at))
		for k, j := range at {
			ss[k] = b.schedules[j]
		}
		for k, o := range x.runAll(ss, nil, func(o outcome) bool { return o.err != nil || broke(o.it) }) {
			if o.done {
				b.outcomes[at[k]] = o
			}
		}
	}
	return b.outcomes[i]
}

// reruns makes n runs of s side by side for confirm, each looking for
// what e says (a copy of its own), and returns their outcomes in order.
func (x *explorer) reruns(s sim.Schedule, n int, e *early) []outcome {
	ss := make([]sim.Schedule, n)
	es := make([]*early, n)
	for i := range n {
		ss[i] = s
		if e != nil {
			c := *e
			es[i] = &c
		}
	}
	return x.runAll(ss, es, nil)
}

// runAll runs ss (the i-th looking for what es[i] says, when es is not
// nil) on up to x.parallel() goroutines, each run as run makes it, and
// returns their outcomes, not yet counted: ran counts and logs them. With
// stop, once a run it is true for is done, no run of a schedule after it
// is started; those are left not done.
func (x *explorer) runAll(ss []sim.Schedule, es []*early, stop func(outcome) bool) []outcome {
	out := make([]outcome, len(ss))
	one := func(i int) {
		var e *early
		if es != nil {
			e = es[i]
		}
		out[i] = x.runOne(ss[i], e)
	}
	workers := min(x.parallel(), len(ss))
	if workers <= 1 {
		// On the caller's goroutine, as one run at a time always was: a
		// bubble that fails the test ends it there.
		for i := range ss {
			one(i)
			if stop != nil && stop(out[i]) {
				break
			}
		}
		return out
	}
	var next, stopAt atomic.Int64 // the next place to start; the first stopping place known
	stopAt.Store(int64(len(ss)))
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(ss) || int64(i) > stopAt.Load() {
					return
				}
				if !search.Contained(func() { one(i) }) {
					out[i] = outcome{err: errFailedOffTheTest, done: true}
				}
				if stop == nil || !stop(out[i]) {
					continue
				}
				for {
					cur := stopAt.Load()
					if int64(i) >= cur || stopAt.CompareAndSwap(cur, int64(i)) {
						break
					}
				}
			}
		})
	}
	wg.Wait()
	return out
}
