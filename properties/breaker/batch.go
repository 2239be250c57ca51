package breaker

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shakedown/shakedown/properties/internal/search"
	"github.com/shakedown/shakedown/sim"
)

// batchSize is how many schedules the exploration draws at a time. The
// schedules of a batch run side by side, each in a bubble of its own, on
// up to GOMAXPROCS cores, and are judged in the order they were drawn; the
// size is fixed, so the same rapid seed explores the same schedules and
// gives the same result on any number of cores.
const batchSize = 8

// errFailedOffTheTest ends an exploration whose run, made beside others,
// failed the test itself.
var errFailedOffTheTest = errors.New("breaker: a run made beside others failed the test (t.Fatal or t.FailNow in the breaker's New, or the race detector in its bubble): see the log above; the exploration stops")

// runBatch runs the schedules of a batch side by side and returns their
// runs in order, counted as [explorer.run] counts them, up to and
// including the first broken one or the one that failed to run (nil,
// with x.fatal set): what a run one after the other would have made.
// Once one is broken or failed, the schedules after it are not started.
func (x *explorer) runBatch(batch []sim.Schedule) []*Iteration {
	runs := make([]*Iteration, len(batch))
	errs := make([]error, len(batch))
	walls := make([]time.Duration, len(batch))
	workers := x.workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, len(batch))
	var next atomic.Int64
	var stopAt atomic.Int64 // the first broken or failed place known so far
	stopAt.Store(int64(len(batch)))
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(batch) || int64(i) > stopAt.Load() {
					return
				}
				start := time.Now()
				if !search.Contained(func() { runs[i], errs[i] = runIn(x.t, x.cfg, batch[i]) }) {
					errs[i] = errFailedOffTheTest
				}
				walls[i] = time.Since(start)
				if errs[i] != nil || runs[i].Broken() {
					for {
						cur := stopAt.Load()
						if int64(i) >= cur || stopAt.CompareAndSwap(cur, int64(i)) {
							break
						}
					}
				}
			}
		})
	}
	wg.Wait()
	var out []*Iteration
	for i, run := range runs {
		x.wall += walls[i] / time.Duration(workers)
		if errs[i] != nil {
			x.fatal = errs[i]
			return append(out, nil)
		}
		x.runs++
		x.ops += int64(len(run.Ops))
		out = append(out, run)
		if run.Broken() {
			break
		}
	}
	return out
}
