package properties

import (
	"fmt"
	"slices"
	"time"

	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// judgedOp reports whether op counts as evidence about the service: the
// one place every invariant of this package asks. An op whose outcome the
// framework did not observe (not started on time, cut off by the run's own
// end: sim.Missed) is the framework's miss, never the service's failure,
// slowness or success. Linearizable, which judges effects rather than
// outcomes, treats an op that does not count as one of unknown outcome.
func judgedOp(op sim.Op) bool {
	return op.Outcome != sim.Missed
}

// span is one stretch of the timeline and the ops in it.
type span struct {
	label    string
	from, to time.Duration
	ops      []sim.Op
	event    *sim.FaultEvent // set for During spans
}

// applied returns the faults that took effect, by start.
func applied(h *sim.History) []sim.FaultEvent {
	var out []sim.FaultEvent
	for _, e := range h.Faults {
		if e.Applied() {
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b sim.FaultEvent) int { return cmpDur(a.Start, b.Start) })
	return out
}

func cmpDur(a, b time.Duration) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// neverReverted reports whether a fault may still have held at the end of
// the run: it was not reverted, or reverting it failed. A restart is a
// point in time and needs no revert.
func neverReverted(e sim.FaultEvent) bool {
	if e.Fault.Fault != nil && e.Fault.Fault.Kind() == toxics.KindRestart {
		return false
	}
	return e.End == 0 || e.End < e.Start || e.RevertErr != ""
}

// lastHeal returns when the last applied fault was reverted, and an
// explanation when there is no such moment.
func lastHeal(h *sim.History) (time.Duration, string) {
	fs := applied(h)
	if len(fs) == 0 {
		return 0, "no fault took effect in this run"
	}
	var heal time.Duration
	for _, e := range fs {
		if neverReverted(e) {
			return 0, fmt.Sprintf("fault %d (%s) was never reverted", e.Step, e.Target)
		}
		heal = max(heal, e.End, e.Start)
	}
	return heal, ""
}

func kindMatch(kinds []string, k string) bool { return len(kinds) == 0 || slices.Contains(kinds, k) }

// spans cuts h into the spans of phase w, keeping the ops of the given
// kinds (all kinds when empty) that each window holds ([sim.Window.Holds],
// the rule the report uses too). When the window does not exist in this
// run it returns a reason instead.
func spans(h *sim.History, w sim.Phase, kinds []string) ([]span, string) {
	of := func(win sim.Window) []sim.Op {
		var out []sim.Op
		for _, op := range h.Ops {
			if judgedOp(op) && kindMatch(kinds, op.Kind) && win.Holds(op) {
				out = append(out, op)
			}
		}
		return out
	}
	ws := h.Windows()
	switch w {
	case sim.Overall:
		all := sim.Window{Phase: sim.Overall, Fault: -1, To: h.Duration, Label: "over the whole run"}
		return []span{{label: all.Label, from: 0, to: all.To, ops: of(all)}}, ""
	case sim.Before:
		b := ws[0]
		label := b.Label
		if b.Fault >= 0 {
			label = fmt.Sprintf("%s at %v", b.Label, b.To)
		}
		return []span{{label: label, from: 0, to: b.To, ops: of(b)}}, ""
	case sim.During:
		var out []span
		for _, win := range ws {
			if win.Phase != sim.During {
				continue
			}
			out = append(out, span{label: fmt.Sprintf("during %s (%v..%v)", win.Label, win.From, win.To), from: win.From, to: win.To,
				event: &h.Faults[win.Fault], ops: of(win)})
		}
		if len(out) == 0 {
			return nil, "no fault took effect in this run"
		}
		return out, ""
	case sim.After:
		if _, why := lastHeal(h); why != "" {
			return nil, why
		}
		a := ws[len(ws)-1]
		return []span{{label: fmt.Sprintf("%s at %v", a.Label, a.From), from: a.From, to: a.To, ops: of(a)}}, ""
	}
	return nil, fmt.Sprintf("unknown window %v", w)
}

// judged runs judge over the spans of w and gathers the result: nil when
// every span held, Violations when any broke, NoEvidence when no span
// held ops (or the window does not exist). Spans without ops are skipped.
func judged(name string, h *sim.History, w sim.Phase, kinds []string, judge func(sp span) []Violation) error {
	sps, why := spans(h, w, kinds)
	if why != "" {
		return &NoEvidence{Invariant: name, Reason: why}
	}
	var vs Violations
	seen := false
	for _, sp := range sps {
		if len(sp.ops) == 0 {
			continue
		}
		seen = true
		vs = append(vs, judge(sp)...)
	}
	if !seen {
		return &NoEvidence{Invariant: name, Reason: fmt.Sprintf("no ops%s %s", kindsText(kinds), windowText(sps))}
	}
	if len(vs) > 0 {
		return vs
	}
	return nil
}

// phaseText names a window in a sentence.
func phaseText(w sim.Phase) string {
	switch w {
	case sim.Overall:
		return "over the run"
	case sim.Before:
		return "before the first fault"
	case sim.During:
		return "during each fault"
	case sim.After:
		return "after the last heal"
	}
	return w.String()
}

func kindsText(kinds []string) string {
	if len(kinds) == 0 {
		return ""
	}
	return fmt.Sprintf(" of kind %v", kinds)
}

func windowText(sps []span) string {
	if len(sps) == 1 {
		return sps[0].label
	}
	return fmt.Sprintf("in any of %d fault windows", len(sps))
}
