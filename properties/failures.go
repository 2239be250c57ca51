package properties

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/shakedown/shakedown/sim"
)

// ErrorRate holds when at most the fraction Max of the ops in a window did
// not succeed (outcome Failed or Unknown). In the During window each fault
// is judged on its own.
type ErrorRate struct {
	// Max is the highest allowed fraction, in [0, 1]: 0.05 for 5%.
	Max float64
	// Window is the part of the run judged (default sim.Overall); the
	// ops it counts are those sim.Window.Holds.
	Window sim.Phase
	// Kinds limits the ops judged to these kinds (default all).
	Kinds []string
}

func (e ErrorRate) Name() string {
	return fmt.Sprintf("error rate <= %s%% %s%s", trimFloat(e.Max*100), e.Window, kindsSuffix(e.Kinds))
}

func (e ErrorRate) validate() error {
	return invalid(e.Name(), fraction("Max", e.Max), phaseOK(e.Window), kindsOK("Kinds", e.Kinds))
}

func (e ErrorRate) kinds() []string { return e.Kinds }

func (e ErrorRate) Check(h *sim.History) error {
	if err := e.validate(); err != nil {
		return err
	}
	return judged(e.Name(), h, e.Window, e.Kinds, func(sp span) []Violation {
		return rateViolation(e.Name(), sp, e.Max)
	})
}

func rateViolation(name string, sp span, most float64) []Violation {
	bad, first := 0, sim.Op{}
	for _, op := range sp.ops {
		if op.Outcome != sim.OK {
			if bad == 0 {
				first = op
			}
			bad++
		}
	}
	rate := float64(bad) / float64(len(sp.ops))
	if rate <= most {
		return nil
	}
	return []Violation{{
		Invariant: name, Window: sp.label, At: sp.from,
		Got: fmt.Sprintf("%d of %d ops failed (%s%%; first: op %d %s at %v%s)", bad, len(sp.ops), trimFloat(rate*100),
			first.ID, first.Kind, first.Intended, errSuffix(first.Err)),
		Want:   fmt.Sprintf("<= %s%%", trimFloat(most*100)),
		Excess: trimFloat((rate-most)*100) + " points",
	}}
}

// Recovery holds when no op fails later than Within after the last fault
// was reverted: the client recovers on its own once the dependency is back.
// An op that ends after that moment counts as evidence.
//
// Within is counted in the time the machine let the dependencies run. In
// a real run whose dependencies can say how they fared for CPU
// ([sim.Machine]'s Dependencies), the deadline moves on by the time,
// after the heal and before the deadline, during which the most starved
// of them had a process ready to run and waiting for a CPU, at most
// Within more: on a shared runner whose other work starves a database
// that is catching up after a fault, recovering takes as long as the
// machine makes it, however resilient the client. A client that is
// slow to recover on its own (a breaker open too long, a pool that waits
// before it dials again) leaves its dependencies idle, and nothing moves
// its deadline; on an idle machine nothing moves any deadline. The
// violation says by how much the deadline moved, and a run that the
// moved deadline leaves without an op to judge has no evidence.
type Recovery struct {
	// Within is the time the client has to recover. Required.
	Within time.Duration
	// Kinds limits the ops judged to these kinds (default all).
	Kinds []string
}

func (r Recovery) Name() string {
	return fmt.Sprintf("no failure later than %v after the last heal%s", r.Within, kindsSuffix(r.Kinds))
}

func (r Recovery) validate() error {
	return invalid(r.Name(), nonNegative("Within", r.Within), kindsOK("Kinds", r.Kinds))
}

func (r Recovery) kinds() []string { return r.Kinds }

func (r Recovery) Check(h *sim.History) error {
	if err := r.validate(); err != nil {
		return err
	}
	heal, why := lastHeal(h)
	if why != "" {
		return &NoEvidence{Invariant: r.Name(), Reason: why}
	}
	deadline, waited := r.deadline(h, heal)
	moved := ""
	if waited > 0 {
		moved = fmt.Sprintf(" + %v its dependencies waited for a CPU", waited)
	}
	var vs Violations
	seen := 0
	for _, op := range r.late(h, deadline) {
		seen++
		if op.Outcome != sim.OK {
			vs = append(vs, Violation{
				Invariant: r.Name(), Window: fmt.Sprintf("op %d (%s) after the last heal at %v", op.ID, op.Kind, heal), At: op.End,
				Got: fmt.Sprintf("%s at %v%s", op.Outcome, op.End, errSuffix(op.Err)), Want: fmt.Sprintf("ok from %v on (heal + %v%s)", deadline, r.Within, moved),
				Excess: (op.End - deadline).String() + " after the recovery deadline",
			})
		}
	}
	if seen == 0 {
		return &NoEvidence{Invariant: r.Name(), Reason: fmt.Sprintf("no op%s ended after %v (heal at %v + %v%s); the run ended at %v: lengthen the cooldown",
			kindsText(r.Kinds), deadline, heal, r.Within, moved, h.Duration)}
	}
	if len(vs) > 0 {
		return vs
	}
	return nil
}

// late is the ops r judges in h: those of its kinds that ended after
// the deadline (Recovery.deadline).
func (r Recovery) late(h *sim.History, deadline time.Duration) []sim.Op {
	var out []sim.Op
	for _, op := range h.Ops {
		if judgedOp(op) && kindMatch(r.Kinds, op.Kind) && op.End > deadline {
			out = append(out, op)
		}
	}
	return out
}

// deadline is when r starts judging h, whose last heal was at heal:
// Within after it, moved on by the time the dependencies waited for a
// CPU in between (waited; see Recovery).
//
// A run whose deadline the machine's time moved past its last op has no
// evidence: the machine left the client no time of its own to recover
// in, and the reason says so ("lengthen the cooldown"). Judging such a
// run by its last ops blamed the client for the machine: a database
// waiting for a CPU 96% of the 3 s after the heal had 0.1 s to catch up.
func (r Recovery) deadline(h *sim.History, heal time.Duration) (deadline, waited time.Duration) {
	waited = dependenciesWaited(h, heal, r.Within)
	return heal + r.Within + waited, waited
}

// dependenciesWaited is the time, from `from` until within after it plus
// that time itself, during which the dependency of h most starved in
// each 100 ms had a process waiting for a CPU, at most within: the time
// the machine kept the dependencies from running in a stretch of within
// that they had to themselves. 0 in a run whose dependencies did not say
// (simulated, or not Linux).
func dependenciesWaited(h *sim.History, from, within time.Duration) time.Duration {
	if h == nil || h.Machine == nil || len(h.Machine.Dependencies) == 0 || within <= 0 {
		return 0
	}
	var waited time.Duration
	to := from + within
	for i := int(from / sim.DependencySlot); waited < within; i++ {
		at := time.Duration(i) * sim.DependencySlot
		if at >= to {
			break
		}
		share, known := 0.0, false
		for _, d := range h.Machine.Dependencies {
			if i < len(d.Slots) && d.Slots[i] >= 0 {
				share, known = max(share, d.Slots[i]), true
			}
		}
		if !known {
			continue // a slot no dependency could say about moves nothing
		}
		// The deadline moves on as the slot goes by: within it, t of the
		// slot's time moves it share*t, so it is met in the slot after
		// (to-start)/(1-share), when that is short of the slot's end.
		start, end := max(at, from), at+sim.DependencySlot
		t := end - start
		if share < 1 {
			t = min(t, time.Duration(float64(to-start)/(1-share)))
		}
		w := time.Duration(share * float64(t))
		waited += w
		to += w
	}
	return min(waited, within)
}

// FailFast holds when every op that fails while a fault holds returns
// within Within of its intended start: the client gives up quickly (a
// timeout, an open breaker) instead of hanging.
//
// A circuit breaker only opens after it has seen its threshold of
// failures, each of which waits for the call's timeout; Grace and After
// leave those out, so that a breaker that opens at its threshold holds and
// one that never opens (or only after 1,000 failures) breaks:
//
//	properties.FailFast{Within: 50 * time.Millisecond, After: 5} // a breaker that opens after 5 failures
//
// An op is judged only once both have passed; the zero values judge every
// failed op. A run in which no op failed during a fault, or every failure
// was left out, has no evidence. A breaker that half-opens while the fault
// still holds lets a probe through, which waits like any call: verify
// half-open behaviour with package breaker.
type FailFast struct {
	// Within is the bound on a failed op's latency. Required.
	Within time.Duration
	// Grace leaves out the ops that started within Grace of the start of
	// a fault they overlap (ops already in flight at its start included).
	Grace time.Duration
	// After leaves out, in each fault, the ops that started before its
	// After-th failure ended: the failures a breaker counts before it
	// opens, and the calls it had already let through.
	After int
	// Kinds limits the ops judged to these kinds (default all).
	Kinds []string
}

func (f FailFast) Name() string {
	s := fmt.Sprintf("failed ops return within %v during faults", f.Within)
	switch {
	case f.Grace > 0 && f.After > 0:
		s += fmt.Sprintf(" (after a grace of %v and the %s failure of each)", f.Grace, ordinal(f.After))
	case f.Grace > 0:
		s += fmt.Sprintf(" (after a grace of %v)", f.Grace)
	case f.After > 0:
		s += fmt.Sprintf(" (after the %s failure of each)", ordinal(f.After))
	}
	return s + kindsSuffix(f.Kinds)
}

func ordinal(n int) string {
	suffix := "th"
	switch {
	case n%100 >= 11 && n%100 <= 13:
	case n%10 == 1:
		suffix = "st"
	case n%10 == 2:
		suffix = "nd"
	case n%10 == 3:
		suffix = "rd"
	}
	return fmt.Sprintf("%d%s", n, suffix)
}

func (f FailFast) validate() error {
	return invalid(f.Name(), positive("Within", f.Within), nonNegative("Grace", f.Grace), nonNegative("After", f.After), kindsOK("Kinds", f.Kinds))
}

func (f FailFast) kinds() []string { return f.Kinds }

// graced returns the IDs of the ops of sp that started before its grace
// or its After-th failure ended.
func (f FailFast) graced(sp span) map[uint64]bool {
	from := sp.from + f.Grace
	if f.After > 0 {
		var ends []time.Duration
		for _, op := range sp.ops {
			if op.Outcome != sim.OK {
				ends = append(ends, op.End)
			}
		}
		if len(ends) < f.After {
			from = math.MaxInt64 // too few failures: a breaker never had to open
		} else {
			slices.Sort(ends)
			from = max(from, ends[f.After-1])
		}
	}
	out := map[uint64]bool{}
	for _, op := range sp.ops {
		if op.Start < from {
			out[op.ID] = true
		}
	}
	return out
}

func (f FailFast) Check(h *sim.History) error {
	if err := f.validate(); err != nil {
		return err
	}
	sps, why := spans(h, sim.During, f.Kinds)
	if why != "" {
		return &NoEvidence{Invariant: f.Name(), Reason: why}
	}
	// An op in flight across two faults is left out when either fault's
	// grace covers it: either may have caused its failure.
	graced := map[uint64]bool{}
	for _, sp := range sps {
		for id := range f.graced(sp) {
			graced[id] = true
		}
	}
	var vs Violations
	failed, judgedN := 0, 0
	seen := map[uint64]bool{}
	for _, sp := range sps {
		for _, op := range sp.ops {
			if op.Outcome == sim.OK || seen[op.ID] {
				continue
			}
			seen[op.ID] = true
			failed++
			if graced[op.ID] {
				continue
			}
			judgedN++
			if l := op.Latency(); l > f.Within {
				vs = append(vs, Violation{
					Invariant: f.Name(), Window: fmt.Sprintf("op %d (%s) %s", op.ID, op.Kind, sp.label), At: op.Intended,
					Got: fmt.Sprintf("%s after %v%s", op.Outcome, l, errSuffix(op.Err)), Want: fmt.Sprintf("<= %v", f.Within), Excess: (l - f.Within).String(),
				})
			}
		}
	}
	switch {
	case failed == 0:
		return &NoEvidence{Invariant: f.Name(), Reason: fmt.Sprintf("no op%s failed while a fault held", kindsText(f.Kinds))}
	case judgedN == 0:
		return &NoEvidence{Invariant: f.Name(), Reason: fmt.Sprintf("%d op%s failed while a fault held, all before the grace ended", failed, kindsText(f.Kinds))}
	case len(vs) > 0:
		return vs
	}
	return nil
}
