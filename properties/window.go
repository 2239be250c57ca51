package properties

import (
	"fmt"
	"slices"
	"time"

	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// Window says which part of a run an invariant looks at. The windows are
// those of [sim.History.Windows] (the same the report shows); which ops an
// invariant counts in them is stricter than an op's intended start, so
// that a fault's effect is charged to the fault:
//
//   - Before holds the ops that ended before the first fault took effect
//     (the whole run if none did), so an op caught by the fault is not
//     counted as calm;
//   - During is judged once per fault, over the ops whose interval (from
//     intended start to end) overlaps the fault's: an op in flight when a
//     blackhole began is its victim;
//   - After holds the ops intended to start at or after the last heal.
type Window uint8

const (
	// Overall is the whole run.
	Overall Window = iota
	// Before is the calm before the first fault.
	Before
	// During is each fault that took effect, judged on its own.
	During
	// After is the recovery after the last fault was reverted.
	After
)

func (w Window) String() string {
	switch w {
	case Overall:
		return "overall"
	case Before:
		return "before"
	case During:
		return "during"
	case After:
		return "after"
	}
	return fmt.Sprintf("Window(%d)", uint8(w))
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

func overlaps(op sim.Op, from, to time.Duration) bool {
	return op.Intended <= to && op.End >= from
}

// spans cuts h into the spans of window w, keeping ops of the given kinds
// (all kinds when empty). When the window does not exist in this run it
// returns a reason instead.
func spans(h *sim.History, w Window, kinds []string) ([]span, string) {
	ops := func(keep func(sim.Op) bool) []sim.Op {
		var out []sim.Op
		for _, op := range h.Ops {
			if kindMatch(kinds, op.Kind) && keep(op) {
				out = append(out, op)
			}
		}
		return out
	}
	ws := h.Windows()
	switch w {
	case Overall:
		return []span{{label: "over the whole run", from: 0, to: h.Duration, ops: ops(func(sim.Op) bool { return true })}}, ""
	case Before:
		b := ws[0]
		if len(ws) == 1 {
			return []span{{label: b.Label, from: 0, to: b.To, ops: ops(func(sim.Op) bool { return true })}}, ""
		}
		return []span{{label: fmt.Sprintf("%s at %v", b.Label, b.To), from: 0, to: b.To,
			ops: ops(func(op sim.Op) bool { return op.End < b.To })}}, ""
	case During:
		var out []span
		for _, win := range ws {
			if win.Phase != sim.During {
				continue
			}
			from, to := win.From, win.To
			out = append(out, span{label: fmt.Sprintf("during %s (%v..%v)", win.Label, from, to), from: from, to: to,
				event: &h.Faults[win.Fault], ops: ops(func(op sim.Op) bool { return overlaps(op, from, to) })})
		}
		if len(out) == 0 {
			return nil, "no fault took effect in this run"
		}
		return out, ""
	case After:
		if _, why := lastHeal(h); why != "" {
			return nil, why
		}
		a := ws[len(ws)-1]
		return []span{{label: fmt.Sprintf("%s at %v", a.Label, a.From), from: a.From, to: a.To,
			ops: ops(func(op sim.Op) bool { return op.Intended >= a.From })}}, ""
	}
	return nil, fmt.Sprintf("unknown window %v", w)
}

// judged runs judge over the spans of w and gathers the result: nil when
// every span held, Violations when any broke, NoEvidence when no span
// held ops (or the window does not exist). Spans without ops are skipped.
func judged(name string, h *sim.History, w Window, kinds []string, judge func(sp span) []Violation) error {
	if w > After {
		return fmt.Errorf("properties: %s: unknown window %d", name, w)
	}
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
