package properties

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shakedown/shakedown/sim"
)

// finalOnPrefix is the optional hook of an invariant whose breaking on a
// prefix of a run is final: when it breaks the prefix, it breaks the whole
// run, with at least the prefix's violations, whatever follows.
//
// The prefix it is asked about holds the ops that ended, the faults
// applied and reverted so far, and the ops still in flight that no end of
// the run can turn into the framework's misses, ended at the prefix's
// Duration (each op's latency so far: a lower bound of its latency). It
// has no samples. An invariant whose verdict depends on what comes later
// (a rate that more ops can lower, a recovery, a window that later faults
// move, the quiet reading at the end) has no hook, or says false.
type finalOnPrefix interface{ finalOn(p *sim.History) bool }

// early is what a confirming run looks for: the invariants that broke in
// the run it confirms. Such a run ends as soon as one of them, with the
// finalOnPrefix hook, is broken for good by a violation the schedule is
// to blame for (see decide); its verdict is then the same as the whole
// run's would be, without waiting for the rest of the run, its drain or
// the abandon grace of ops that ignore cancellation.
type early struct {
	want []string // names of the invariants that broke
	// decided holds the findings that ended the run (set by the run's
	// sim.Until, read after sim.Run returned).
	decided Findings
	at      time.Duration
}

// earlyFor returns what a confirming run of it looks for, or nil when none
// of its broken invariants can end a run early.
func earlyFor(it *Iteration, invs []Invariant) *early {
	var want []string
	for _, f := range it.Findings {
		if f.Verdict != Broken {
			continue
		}
		for _, inv := range invs {
			if _, ok := inv.(finalOnPrefix); ok && inv.Name() == f.Invariant {
				want = append(want, f.Invariant)
			}
		}
	}
	if len(want) == 0 {
		return nil
	}
	return &early{want: want}
}

// until is the sim.Until of a confirming run on a workload with the given
// timeout (0: none).
func (e *early) until(invs []Invariant, timeout time.Duration) sim.Until {
	return func(h *sim.History, inFlight []sim.Op) bool {
		fs := e.decide(onPrefix(h, inFlight, timeout), invs)
		if len(fs) == 0 {
			return false
		}
		e.decided, e.at = fs, h.Duration
		return true
	}
}

// onPrefix is the prefix an invariant's finalOn judges: h with the ops in
// flight whose outcome the framework will observe. An op in flight is cut
// off by the run's end (and missed) only before its own timeout; with no
// timeout, or past it, it ends as the service makes it, or is abandoned,
// and its latency is at least what it is now.
func onPrefix(h *sim.History, inFlight []sim.Op, timeout time.Duration) *sim.History {
	p := *h
	p.Ops = slices.Clone(h.Ops)
	for _, op := range inFlight {
		if timeout > 0 && op.Start+timeout > h.Duration {
			continue
		}
		op.Outcome = sim.Unknown
		op.Err = "still in flight"
		p.Ops = append(p.Ops, op)
	}
	return &p
}

// decide returns the findings of the wanted invariants that p breaks for
// good and that the schedule is to blame for: a fault took effect and a
// violation is dated at or after it, so the whole run cannot count them
// as steady state. It returns none while the framework has missed more
// than maxMissed of p's ops so far (the whole run would not be judged).
func (e *early) decide(p *sim.History, invs []Invariant) Findings {
	first, faulted := firstFault(p)
	if !faulted {
		return nil
	}
	if n, of := missedOps(p); float64(n) > maxMissed*float64(of) {
		return nil
	}
	var out Findings
	for _, inv := range invs {
		fp, ok := inv.(finalOnPrefix)
		if !ok || !slices.Contains(e.want, inv.Name()) || !fp.finalOn(p) {
			continue
		}
		err := safeCheck(inv, p)
		var vs Violations
		if !errors.As(err, &vs) || !slices.ContainsFunc(vs, func(v Violation) bool { return v.At >= first }) {
			continue
		}
		out = append(out, Finding{Invariant: inv.Name(), Verdict: Broken, Err: err})
	}
	return out
}

// String says why the run ended early, for the log.
func (e *early) String() string {
	var names []string
	for _, f := range e.decided {
		names = append(names, f.Invariant)
	}
	return fmt.Sprintf("ended early at %v: broken for good: %s", e.at.Round(time.Millisecond), strings.Join(names, "; "))
}
