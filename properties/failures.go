package properties

import (
	"fmt"
	"time"

	"github.com/shakedown/shakedown/sim"
)

// ErrorRate holds when at most the fraction Max of the ops in a window did
// not succeed (outcome Failed or Unknown). In the During window each fault
// is judged on its own.
type ErrorRate struct {
	// Max is the highest allowed fraction, in [0, 1].
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

func (e ErrorRate) Check(h *sim.History) error {
	if !(e.Max >= 0 && e.Max <= 1) {
		return fmt.Errorf("properties: %s: Max = %v must be in [0, 1]", e.Name(), e.Max)
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
type Recovery struct {
	// Within is the time the client has to recover. Required.
	Within time.Duration
	// Kinds limits the ops judged to these kinds (default all).
	Kinds []string
}

func (r Recovery) Name() string {
	return fmt.Sprintf("no failure later than %v after the last heal%s", r.Within, kindsSuffix(r.Kinds))
}

func (r Recovery) Check(h *sim.History) error {
	if r.Within < 0 {
		return fmt.Errorf("properties: %s: Within = %v must not be negative", r.Name(), r.Within)
	}
	heal, why := lastHeal(h)
	if why != "" {
		return &NoEvidence{Invariant: r.Name(), Reason: why}
	}
	deadline := heal + r.Within
	var vs Violations
	seen := 0
	for _, op := range h.Ops {
		if !kindMatch(r.Kinds, op.Kind) || op.End <= deadline {
			continue
		}
		seen++
		if op.Outcome != sim.OK {
			vs = append(vs, Violation{
				Invariant: r.Name(), Window: fmt.Sprintf("op %d (%s) after the last heal at %v", op.ID, op.Kind, heal), At: op.End,
				Got: fmt.Sprintf("%s at %v%s", op.Outcome, op.End, errSuffix(op.Err)), Want: fmt.Sprintf("ok from %v on", deadline),
				Excess: (op.End - deadline).String() + " after the recovery deadline",
			})
		}
	}
	if seen == 0 {
		return &NoEvidence{Invariant: r.Name(), Reason: fmt.Sprintf("no op%s ended after %v (heal at %v + %v); the run ended at %v: lengthen the cooldown",
			kindsText(r.Kinds), deadline, heal, r.Within, h.Duration)}
	}
	if len(vs) > 0 {
		return vs
	}
	return nil
}

// FailFast holds when every op that fails while a fault holds returns
// within Within of its intended start: the client gives up quickly (a
// timeout, an open breaker) instead of hanging. A run in which no op failed
// during a fault has no evidence.
type FailFast struct {
	// Within is the bound on a failed op's latency. Required.
	Within time.Duration
	// Kinds limits the ops judged to these kinds (default all).
	Kinds []string
}

func (f FailFast) Name() string {
	return fmt.Sprintf("failed ops return within %v during faults%s", f.Within, kindsSuffix(f.Kinds))
}

func (f FailFast) Check(h *sim.History) error {
	if f.Within <= 0 {
		return fmt.Errorf("properties: %s: Within = %v must be positive", f.Name(), f.Within)
	}
	sps, why := spans(h, sim.During, f.Kinds)
	if why != "" {
		return &NoEvidence{Invariant: f.Name(), Reason: why}
	}
	var vs Violations
	failed := 0
	seen := map[uint64]bool{}
	for _, sp := range sps {
		for _, op := range sp.ops {
			if op.Outcome == sim.OK || seen[op.ID] {
				continue
			}
			seen[op.ID] = true
			failed++
			if l := op.Latency(); l > f.Within {
				vs = append(vs, Violation{
					Invariant: f.Name(), Window: fmt.Sprintf("op %d (%s) %s", op.ID, op.Kind, sp.label), At: op.Intended,
					Got: fmt.Sprintf("%s after %v%s", op.Outcome, l, errSuffix(op.Err)), Want: fmt.Sprintf("<= %v", f.Within), Excess: (l - f.Within).String(),
				})
			}
		}
	}
	if failed == 0 {
		return &NoEvidence{Invariant: f.Name(), Reason: fmt.Sprintf("no op%s failed while a fault held", kindsText(f.Kinds))}
	}
	if len(vs) > 0 {
		return vs
	}
	return nil
}
