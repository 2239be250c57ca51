package breaker

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// Timeline is the run as text a person reads at a glance: the outages as
// they begin and end, every call through the breaker at the moment it
// returned (runs of alike calls folded into one line), the state the
// breaker reported, where the spec's state machine moved, and the
// violations marked with ✗ where they happened. A failing run is shown
// up to a few lines past its first violation.
func (r *Iteration) Timeline() string {
	type row struct {
		at     time.Duration
		order  int // fault rows before op rows at the same instant
		text   string
		state  string
		note   string
		shape  string // rows with the same non-empty shape fold together
		op     int
		mark   []string
		folded int // ops folded into this row, besides its own
		lastOp int
		lastAt time.Duration
		lat    [2]time.Duration // the shortest and longest call folded
	}
	marks := map[int][]string{}
	for _, v := range r.Violations {
		op := violationOp(v.Window)
		marks[op] = append(marks[op], v.Invariant+": got "+v.Got+"; want "+v.Want)
	}
	notes := r.timelineNotes()
	var rows []row
	for i, st := range r.Schedule.Sorted().Steps {
		rows = append(rows, row{at: st.At, text: fmt.Sprintf("── %s %s begins (step %d, until %v)", st.Target, st.Fault, i, fmtDur(st.End()))})
		if st.End() > st.At {
			rows = append(rows, row{at: st.End(), text: fmt.Sprintf("── %s %s ends", st.Target, st.Fault)})
		}
	}
	for _, o := range r.Ops {
		if o.seqStart == 0 {
			continue
		}
		text, shape := r.opWords(o)
		lat := o.End - o.Start
		rw := row{at: o.End, order: 1, text: text, shape: shape, op: o.ID, note: notes[o.ID], mark: marks[o.ID], lastOp: o.ID, lastAt: o.End,
			lat: [2]time.Duration{lat, lat}}
		if o.After != Unknown {
			rw.state = "[" + o.After.String() + "]"
		}
		rows = append(rows, rw)
	}
	slices.SortStableFunc(rows, func(a, b row) int {
		if a.at != b.at {
			return int(a.at - b.at)
		}
		return a.order - b.order
	})
	// Fold runs of alike ops.
	var out []row
	for _, rw := range rows {
		if n := len(out); n > 0 {
			p := &out[n-1]
			if rw.shape != "" && p.shape == rw.shape && p.state == rw.state && p.note == "" && rw.note == "" && len(p.mark) == 0 && len(rw.mark) == 0 {
				p.folded++
				p.lastOp, p.lastAt = rw.op, rw.at
				p.lat = [2]time.Duration{min(p.lat[0], rw.lat[0]), max(p.lat[1], rw.lat[1])}
				continue
			}
		}
		out = append(out, rw)
	}
	// Cut a failing run a few lines after its first violation.
	cut := len(out)
	for i, rw := range out {
		if len(rw.mark) > 0 {
			cut = min(len(out), i+6)
			break
		}
	}
	var b strings.Builder
	for _, rw := range out[:cut] {
		marker := "  "
		if len(rw.mark) > 0 {
			marker = "✗ "
		}
		text := rw.text
		if rw.folded > 0 {
			shape := strings.ReplaceAll(rw.shape, "%LAT%", latRange(rw.lat))
			text = fmt.Sprintf("ops %d..%d (%d calls, to %v) %s", rw.op, rw.lastOp, rw.folded+1, fmtDur(rw.lastAt), shape)
		}
		line := fmt.Sprintf("%s%10s  %-62s %-11s %s", marker, fmtDur(rw.at), text, rw.state, rw.note)
		b.WriteString(strings.TrimRight(line, " ") + "\n")
		for _, m := range rw.mark {
			b.WriteString("              ✗ " + m + "\n")
		}
	}
	if cut < len(out) {
		fmt.Fprintf(&b, "  %10s  ... %d more lines, to %v\n", "", len(out)-cut, fmtDur(r.Duration))
	}
	return b.String()
}

// violationOp is the op a violation's window names ("op 7", "call 9 (op
// 7)"), or 0.
func violationOp(window string) int {
	var op, call int
	if n, _ := fmt.Sscanf(window, "call %d (op %d)", &call, &op); n == 2 {
		return op
	}
	if n, _ := fmt.Sscanf(window, "op %d", &op); n == 1 {
		return op
	}
	return 0
}

// opWords is one op in words, and its shape: what alike ops share, with
// %LAT% for their time, so that ops that took different times fold too.
func (r *Iteration) opWords(o Op) (text, shape string) {
	lat := o.End - o.Start
	took := latRange([2]time.Duration{lat, lat})
	calls := ""
	if n := len(o.Calls); n > 1 {
		retries := "retries"
		if n == 2 {
			retries = "retry"
		}
		calls = fmt.Sprintf(" after %d calls (%d %s)", n, n-1, retries)
	}
	from := ""
	if lat >= 2*r.Latency && lat > 0 {
		from = fmt.Sprintf(" (made at %v)", fmtDur(o.Start))
	}
	switch {
	case o.TurnedAway():
		shape = fmt.Sprintf("turned away %%LAT%%: %s", shortErr(o.Err))
		text = fmt.Sprintf("op %d turned away %s: %s", o.ID, took, shortErr(o.Err))
	case o.Err == "":
		shape = fmt.Sprintf("ok%s %%LAT%%", calls)
		text = fmt.Sprintf("op %d ok%s %s%s", o.ID, calls, took, from)
	default:
		shape = fmt.Sprintf("failed%s %%LAT%%: %s", calls, shortErr(o.Err))
		text = fmt.Sprintf("op %d failed%s %s: %s%s", o.ID, calls, took, shortErr(o.Err), from)
	}
	return text, shape
}

// latRange is how long calls took, in words: "at once", "in 1ms", "in
// 20ms..200ms".
func latRange(l [2]time.Duration) string {
	switch {
	case l[1] == 0:
		return "at once"
	case fmtDur(l[0]) == fmtDur(l[1]):
		return "in " + fmtDur(l[0])
	}
	return "in " + fmtDur(l[0]) + ".." + fmtDur(l[1])
}

// shortErr keeps the last part of an error message, the part that says
// what happened ("connection refused", "circuit breaker open").
func shortErr(err string) string {
	if err == "" {
		return "no error"
	}
	if i := strings.LastIndex(err, ": "); i >= 0 && i+2 < len(err) {
		return err[i+2:]
	}
	return err
}

// History is the run as a sim.History, for sim.WriteReport and the tools
// that read histories: the calls through the breaker as ops of kind
// "call" (Failed when turned away, Unknown when a call that reached the
// dependency failed), the calls that reached the dependency as ops of kind
// "dependency", the outages as faults, and the breaker's reported state as
// the sample "breaker.state" (0 closed, 1 half-open, 2 open).
func (r *Iteration) History() *sim.History {
	h := &sim.History{Schedule: r.Schedule, Duration: r.Duration}
	var last State
	for _, o := range r.Ops {
		if o.seqStart == 0 {
			continue
		}
		op := sim.Op{ID: uint64(o.ID), Kind: "call", Intended: o.Start, Start: o.Start, End: o.End, Err: o.Err,
			Output: fmt.Sprintf("%d calls to the dependency", len(o.Calls))}
		switch {
		case o.TurnedAway():
			op.Outcome, op.Output = sim.Failed, "turned away"
		case o.Err != "":
			op.Outcome = sim.Unknown
		}
		h.Ops = append(h.Ops, op)
		if s := o.After; s != Unknown && s != last {
			h.Samples = append(h.Samples, sim.Sample{At: o.End, Name: "breaker.state", Value: map[State]float64{Closed: 0, HalfOpen: 1, Open: 2}[s]})
			last = s
		}
	}
	for _, c := range r.Calls {
		op := sim.Op{ID: uint64(len(r.Ops) + c.ID), Kind: "dependency", Intended: c.Start, Start: c.Start, End: c.End, Err: c.Err,
			Input: fmt.Sprintf("op %d attempt %d", c.Op, c.Attempt)}
		if c.Failed {
			op.Outcome = sim.Unknown
		}
		h.Ops = append(h.Ops, op)
	}
	slices.SortStableFunc(h.Ops, func(a, b sim.Op) int { return int(a.ID) - int(b.ID) })
	for i, st := range r.Schedule.Sorted().Steps {
		h.Faults = append(h.Faults, sim.FaultEvent{Step: i, Target: st.Target, Fault: toxics.Spec{Fault: st.Fault}, Start: st.At, End: st.End()})
	}
	return h
}
