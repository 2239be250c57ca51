package properties

import (
	"fmt"
	"slices"
	"time"

	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// Window says which part of a run an invariant looks at. An op belongs to
// a window by the interval from its intended start to its end.
type Window uint8

const (
	// Overall is the whole run.
	Overall Window = iota
	// Before holds the ops that ended before the first fault took effect
	// (the whole run if none did).
	Before
	// During is judged once per fault that took effect, over the ops
	// whose interval overlaps the fault's.
	During
	// After holds the ops intended to start once the last fault was
	// reverted.
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

// faultEnd is when the fault stopped holding; one never reverted holds to
// the end of the run.
func faultEnd(h *sim.History, e sim.FaultEvent) time.Duration {
	if neverReverted(e) {
		return max(h.Duration, e.Start)
	}
	return e.End
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

func faultLabel(h *sim.History, e sim.FaultEvent) string {
	f := "<nil>"
	if e.Fault.Fault != nil {
		f = e.Fault.Fault.String()
	}
	return fmt.Sprintf("during fault %d (%s %s at %v..%v)", e.Step, e.Target, f, e.Start, faultEnd(h, e))
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
	fs := applied(h)
	switch w {
	case Overall:
		return []span{{label: "over the whole run", from: 0, to: h.Duration, ops: ops(func(sim.Op) bool { return true })}}, ""
	case Before:
		if len(fs) == 0 {
			return []span{{label: "before any fault (none took effect)", from: 0, to: h.Duration, ops: ops(func(sim.Op) bool { return true })}}, ""
		}
		first := fs[0].Start
		return []span{{label: fmt.Sprintf("before the first fault at %v", first), from: 0, to: first,
			ops: ops(func(op sim.Op) bool { return op.End < first })}}, ""
	case During:
		if len(fs) == 0 {
			return nil, "no fault took effect in this run"
		}
		out := make([]span, 0, len(fs))
		for i := range fs {
			e := fs[i]
			from, to := e.Start, faultEnd(h, e)
			out = append(out, span{label: faultLabel(h, e), from: from, to: to, event: &fs[i],
				ops: ops(func(op sim.Op) bool { return overlaps(op, from, to) })})
		}
		return out, ""
	case After:
		heal, why := lastHeal(h)
		if why != "" {
			return nil, why
		}
		return []span{{label: fmt.Sprintf("after the last heal at %v", heal), from: heal, to: h.Duration,
			ops: ops(func(op sim.Op) bool { return op.Intended >= heal })}}, ""
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
