package properties

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/sim"
)

// answered gives target's record in it, for the 100 ms from each t, the
// requests its Link saw answered there, their mean wait, and the requests
// left waiting at its end, by f.
func answered(it *Iteration, target string, f func(t time.Duration) (n float64, wait time.Duration, waiting float64)) *Iteration {
	for i := range it.History.Machine.Dependencies {
		d := &it.History.Machine.Dependencies[i]
		if d.Target != target {
			continue
		}
		d.Answered, d.AnswerTime, d.Waiting = nil, nil, nil
		for s := range len(d.Slots) {
			n, w, waiting := f(time.Duration(s) * sim.DependencySlot)
			d.Answered, d.AnswerTime, d.Waiting = append(d.Answered, n), append(d.AnswerTime, n*w.Seconds()), append(d.Waiting, waiting)
		}
	}
	return it
}

// answering gives db's record in it the requests its Link saw answered in
// each 100ms, and their mean wait: n and wait outside the cache fault
// (500ms to 1s), during and wait in it; none is left waiting at a slot's
// end, but held in the fault.
func answering(it *Iteration, n, during float64, wait, inFault time.Duration, held ...float64) *Iteration {
	return answered(it, "db", func(at time.Duration) (float64, time.Duration, float64) {
		if at < 500*time.Millisecond || at >= time.Second {
			return n, wait, 0
		}
		if len(held) > 0 {
			return during, inFault, held[0]
		}
		return during, inFault, 0
	})
}

// TestUnscheduledAnswers: rule 9 with the dependency's answers timed. A
// starved db that kept the orders waiting, while they asked no more of
// it, explains an Isolation failure under a cache fault even when it
// burned more CPU on the same requests, and so does one that held every
// request unanswered through the fault; one that answered as it always
// did, or that nobody asked anything, slowed nothing (the orders failed
// of something else: no fallback for the cache), and a client that asked
// it three times as much is a storm: each of those stands.
func TestUnscheduledAnswers(t *testing.T) {
	iso := Isolation{Uses: map[string][]string{"orders": {"db"}, "stock": {"cache"}}, MaxErrorRate: 0.01}
	invs := []Invariant{iso}
	const usual = 5 * time.Millisecond
	failure := func(use, before float64, during float64, inFault time.Duration, held ...float64) *Iteration {
		it := answering(unscheduledRun(0.95, 0.40, use, before, "", iso.Name()), 4, during, usual, inFault, held...)
		for range 3 {
			it.again = append(it.again, answering(unscheduledRun(0.95, 0.40, use, before, "", iso.Name()), 4, during, usual, inFault, held...))
			it.Reruns++
			it.Reproduced++
		}
		return it
	}
	base := answering(unscheduledRun(0.9, 0.05, 0.1, 0.1, ""), 4, 4, usual, usual)
	base.History.Faults, base.Schedule = nil, sim.Schedule{}

	for _, tc := range []struct {
		name      string
		it        *Iteration
		want, not string // the reason it is the machine's, or why it stands
	}{
		{name: "late, asked no more, the CPU as before", it: failure(0.1, 0.1, 4, 80*time.Millisecond),
			want: "kept its requests waiting (on average run 1: 80ms against 5ms; run 2: 80ms against 5ms"},
		{name: "late, asked no more, but more CPU on the same requests", it: failure(0.3, 0.1, 4, 80*time.Millisecond),
			want: "run 1: asked 40.0 requests a second against 40.0 in the runs compared with, answering each in 80ms on average against 5ms: the same work, dearer on a starved CPU"},
		{name: "answered as always: no fallback for the cache", it: failure(0.1, 0.1, 4, 6*time.Millisecond),
			not: "db: answered in 6ms on average while faults of other targets held (run 1 of those that broke), against 5ms before the first fault and in the runs compared with: not late, so it slowed nothing"},
		{name: "nobody asked it", it: failure(0.1, 0.1, 0, 0),
			not: "db: answered no request while faults of other targets held, and none waited (run 1 of those that broke): the ops that broke did not wait for it"},
		{name: "asked, and answered nothing until the fault ended", it: failure(0.1, 0.1, 0, 0, 3),
			want: "while faults of other targets held, db waited for a CPU 40%/40%/40%/40% of the time in the 4 runs that broke"},
		{name: "a retry storm onto it", it: failure(0.3, 0.1, 12, 80*time.Millisecond),
			not: "asked 120.0 requests a second, more than the 51.0 the runs compared with allow: more work"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			why, not := unscheduled(tc.it, base, invs)
			if tc.want != "" {
				require.Contains(t, why, tc.want)
				require.Empty(t, not)
				return
			}
			require.Empty(t, why)
			require.Contains(t, not, tc.not)
		})
	}

	// Not timed (a target that is no sim.AnswerTimer): the CPU alone, as
	// before; more CPU is more work.
	it := failure(0.3, 0.1, 4, 80*time.Millisecond)
	for _, r := range append([]*Iteration{it, base}, it.again...) {
		for i := range r.History.Machine.Dependencies {
			r.History.Machine.Dependencies[i].Answered, r.History.Machine.Dependencies[i].AnswerTime = nil, nil
		}
	}
	why, not := unscheduled(it, base, invs)
	require.Empty(t, why)
	require.Contains(t, not, "db: used 0.30 CPUs while faults of other targets held")
	it = failure(0.1, 0.1, 4, 6*time.Millisecond)
	for _, r := range append([]*Iteration{it, base}, it.again...) {
		for i := range r.History.Machine.Dependencies {
			r.History.Machine.Dependencies[i].Answered, r.History.Machine.Dependencies[i].AnswerTime = nil, nil
		}
	}
	why, _ = unscheduled(it, base, invs)
	require.Contains(t, why, "a dependency the schedule was not faulting was starved", "untimed, lateness is not asked")
}
