package breaker

import (
	"container/heap"
	"time"
)

// A breaker's behaviour can change only at a few moments: when an outage
// begins or ends, when a call it let through fails, when a probe starts
// or ends, when the state it reports changes, when its open time runs
// out after it opened, and when the spec wants it closed again. Between them it is in one state, and a call
// more or less tells nothing new. So a run makes its calls on the grid of
// the period (a prime number of nanoseconds, see Config.period), at every
// grid point within the window of such a moment, and farther from every
// moment, at gaps that grow with the distance: a run costs about the same
// number of calls whatever its time scale, a 60s open time as a 500ms one.
//
// Every moment is known before the window around it begins: the outages'
// edges and the recovery bound from the schedule, and a failure's open
// time at least OpenFor ahead, which no gap may jump over.

// pacer chooses the grid points of a run's calls. The recorder adds the
// moments it learns from the calls' ends; the run's loop asks for the next
// point. Its caller holds the recorder's lock.
type pacer struct {
	p time.Duration // the grid, the period
	// Every grid point from a moment's lead before it to after after it
	// is called.
	after  time.Duration
	maxGap time.Duration // the longest gap: a moment added now is not jumped over
	last   time.Duration // the latest moment passed (or -1<<62 for none)
	ahead  moments       // the moments to come, soonest first
}

// sparseness divides the distance from the nearest window into the gap:
// at 1 the distance doubles at each call away from a window, and every
// stretch [d, 2d] of distance from one holds a call, so a transition off
// its time by d is seen about d later. (At 2 the catches of
// TestExploreCatches came after the same schedules, seed for seed, for
// about 45% more calls in a 60s configuration.)
const sparseness = 1

// leads: how long before a moment the calls are dense. Before an outage
// begins, calls made up to CallTimeout earlier may still be in flight and
// meet it; before an open time runs out, a few calls must be turned away.
type lead uint8

const (
	leadEdge lead = iota
	leadChange
)

func newPacer(c Config) *pacer {
	s := c.Spec
	p := c.period()
	// After a moment: the calls that meet an outage, up to the threshold
	// of failures and beyond; the probes and the successes that close a
	// half-open breaker. A failure that ends later, a probe that ends and
	// a state that changes are moments of their own.
	after := s.FailFast + 2*s.Slack + c.Latency +
		time.Duration(s.FailureThreshold+s.HalfOpenProbes+s.SuccessesToClose+2)*p
	return &pacer{p: p, after: after, last: -1 << 62,
		// A failure that ends just after a gap was chosen puts a moment
		// OpenFor later: the gap must end before that moment's lead.
		maxGap: max(p, (s.OpenFor-c.leadOf(leadChange)-s.Slack)/2)}
}

// leadOf is how long before a moment of the kind the calls are dense.
func (c Config) leadOf(l lead) time.Duration {
	d := 2*c.Spec.Slack + 3*c.period()
	if l == leadEdge {
		d += c.Spec.CallTimeout + c.Latency
	}
	return d
}

// add notes a moment at which the breaker's behaviour may change, dense
// from lead before it.
func (pc *pacer) add(m, lead time.Duration) { heap.Push(&pc.ahead, moment{m, lead}) }

// next is the grid index of the call after the one at index k.
func (pc *pacer) next(k int) int {
	t := time.Duration(k) * pc.p
	for len(pc.ahead) > 0 && pc.ahead[0].at <= t {
		pc.last = max(pc.last, heap.Pop(&pc.ahead).(moment).at)
	}
	d := t - pc.last - pc.after
	if len(pc.ahead) > 0 {
		m := pc.ahead[0]
		d = min(d, m.at-m.lead-t)
	}
	gap := min(pc.maxGap, d/sparseness)
	return k + max(1, int(gap/pc.p))
}

type moment struct{ at, lead time.Duration }

// moments is a min-heap of moments by the start of their leads.
type moments []moment

func (m moments) Len() int           { return len(m) }
func (m moments) Less(i, j int) bool { return m[i].at-m[i].lead < m[j].at-m[j].lead }
func (m moments) Swap(i, j int)      { m[i], m[j] = m[j], m[i] }
func (m *moments) Push(x any)        { *m = append(*m, x.(moment)) }
func (m *moments) Pop() any {
	old := *m
	x := old[len(old)-1]
	*m = old[:len(old)-1]
	return x
}
