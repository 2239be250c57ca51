package sim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"
)

// Phase says which part of a run a [Window] covers, relative to the
// faults. Invariants of package properties name a Phase to say which
// windows they judge.
type Phase uint8

const (
	// Overall is the whole run. [History.Windows] never returns it.
	Overall Phase = iota
	// Before is the calm before the first fault.
	Before
	// During is one fault, judged on its own.
	During
	// After is the recovery after the last heal.
	After
)

func (p Phase) String() string {
	switch p {
	case Overall:
		return "overall"
	case Before:
		return "before"
	case During:
		return "during"
	case After:
		return "after"
	}
	return fmt.Sprintf("Phase(%d)", uint8(p))
}

// Window is a span of a run's timeline that invariants and summaries look
// at separately: the calm before the first fault, each fault, and the
// recovery after the last heal. Which ops a window holds is decided by
// [Window.Holds] alone, for the report and the invariants alike.
type Window struct {
	Phase Phase
	// Fault is the index in History.Faults of the fault that bounds the
	// window: the fault a During window covers, the first fault applied
	// for a Before window (its start ends the window), the fault healed
	// last for an After window. It is -1 when there is no such fault: a
	// Before window with Fault -1 is a whole run without faults.
	Fault int
	// From and To bound the window on the timeline.
	From, To time.Duration
	// Label names the window for people: "before the first fault",
	// "fault 0: db blackhole()", "after the last heal".
	Label string
}

// Holds reports whether op belongs to w. The rule charges a fault's
// effect to the fault:
//
//   - Overall holds every op;
//   - Before holds the ops that ended before To, when the first fault
//     took effect (every op when Fault is -1: the run had no fault), so
//     an op caught by the fault is not counted as calm;
//   - During holds the ops whose interval, from intended start to end,
//     overlaps [From, To]: an op in flight when a blackhole began is its
//     victim;
//   - After holds the ops intended to start at or after From, the last
//     heal.
//
// An op can be in more than one window (in flight across two faults), or
// in none (intended between two faults and ended after the first).
func (w Window) Holds(op Op) bool {
	switch w.Phase {
	case Overall:
		return true
	case Before:
		return w.Fault < 0 || op.End < w.To
	case During:
		return op.Intended <= w.To && op.End >= w.From
	case After:
		return op.Intended >= w.From
	}
	return false
}

// Windows returns the windows of h in time order: Before (from 0 to the
// start of the first fault applied), one During window per fault applied
// (from its start to its end; to the end of the run if it was never
// reverted), and After (from the last end to the end of the run). A run
// without faults has a single Before window covering all of it. Faults
// that failed to apply have no window.
func (h *History) Windows() []Window {
	end := h.Duration
	for _, op := range h.Ops {
		end = max(end, op.Intended)
	}
	first, last := time.Duration(-1), time.Duration(0)
	firstFault, lastFault := -1, -1
	var during []Window
	for i, f := range h.Faults {
		if !f.Applied() {
			continue
		}
		to := f.End
		if to == 0 || f.RevertErr != "" {
			to = end
		}
		if first < 0 || f.Start < first {
			first, firstFault = f.Start, i
		}
		if lastFault < 0 || to >= last {
			last, lastFault = to, i
		}
		during = append(during, Window{Phase: During, Fault: i, From: f.Start, To: to,
			Label: fmt.Sprintf("fault %d: %s %s", i, f.Target, faultString(f))})
	}
	if first < 0 {
		return []Window{{Phase: Before, Fault: -1, From: 0, To: end, Label: "whole run (no faults)"}}
	}
	ws := make([]Window, 0, len(during)+2)
	ws = append(ws, Window{Phase: Before, Fault: firstFault, From: 0, To: first, Label: "before the first fault"})
	ws = append(ws, during...)
	ws = append(ws, Window{Phase: After, Fault: lastFault, From: last, To: max(end, last), Label: "after the last heal"})
	return ws
}

func faultString(f FaultEvent) string {
	if f.Fault.Fault == nil {
		return "<nil>"
	}
	return f.Fault.Fault.String()
}

// Select returns the ops of h that w holds ([Window.Holds]) whose kind is
// kind; the empty kind selects every kind.
func (h *History) Select(w Window, kind string) []Op {
	var out []Op
	for _, op := range h.Ops {
		if (kind == "" || op.Kind == kind) && w.Holds(op) {
			out = append(out, op)
		}
	}
	return out
}

// Kinds returns the op kinds in h, sorted.
func (h *History) Kinds() []string {
	seen := map[string]bool{}
	var out []string
	for _, op := range h.Ops {
		if !seen[op.Kind] {
			seen[op.Kind] = true
			out = append(out, op.Kind)
		}
	}
	slices.Sort(out)
	return out
}

// Stats condenses a set of ops. Latencies run from each op's intended
// start to its end and include failed ops (a fast failure is a short
// latency). Quantiles are nearest-rank; all are zero when Count is zero.
// Ops the framework [Missed] are counted in Missed alone: they are not in
// Count, ErrorRate or the latencies.
type Stats struct {
	// Count is the ops whose outcome was observed: OK+Failed+Unknown.
	Count   int `json:"count"`
	OK      int `json:"ok"`
	Failed  int `json:"failed"`
	Unknown int `json:"unknown"`
	Missed  int `json:"missed,omitempty"`
	// ErrorRate is (Failed+Unknown)/Count, or 0 when Count is 0.
	ErrorRate float64       `json:"error_rate"`
	P50       time.Duration `json:"p50"`
	P90       time.Duration `json:"p90"`
	P99       time.Duration `json:"p99"`
	Max       time.Duration `json:"max"`
}

// Errors is the number of ops that did not succeed.
func (s Stats) Errors() int { return s.Failed + s.Unknown }

func (s Stats) String() string {
	missed := ""
	if s.Missed > 0 {
		missed = fmt.Sprintf(" (and %d missed)", s.Missed)
	}
	return fmt.Sprintf("%d ops%s, %d errors (%.1f%%), p50 %v p90 %v p99 %v max %v",
		s.Count, missed, s.Errors(), 100*s.ErrorRate, s.P50, s.P90, s.P99, s.Max)
}

// StatsOf counts ops by outcome and computes latency quantiles.
func StatsOf(ops []Op) Stats {
	a := tally{lat: make([]time.Duration, 0, len(ops))}
	for i := range ops {
		a.add(&ops[i])
	}
	return a.stats()
}

// tally accumulates Stats one op at a time.
type tally struct {
	ok, failed, unknown, missed int
	lat                         []time.Duration
}

func (a *tally) add(op *Op) {
	switch op.Outcome {
	case OK:
		a.ok++
	case Failed:
		a.failed++
	case Missed:
		a.missed++
		return
	default:
		a.unknown++
	}
	a.lat = append(a.lat, op.Latency())
}

func (a *tally) stats() Stats {
	s := Stats{Count: len(a.lat), OK: a.ok, Failed: a.failed, Unknown: a.unknown, Missed: a.missed}
	if s.Count == 0 {
		return s
	}
	slices.Sort(a.lat)
	s.ErrorRate = float64(s.Errors()) / float64(s.Count)
	s.P50, s.P90, s.P99 = quantile(a.lat, 0.50), quantile(a.lat, 0.90), quantile(a.lat, 0.99)
	s.Max = a.lat[len(a.lat)-1]
	return s
}

// quantile is the nearest-rank q-quantile of sorted, non-empty lat.
func quantile(lat []time.Duration, q float64) time.Duration {
	rank := int(math.Ceil(q*float64(len(lat)))) - 1
	return lat[min(max(rank, 0), len(lat)-1)]
}

// Stats condenses the ops of h in w whose kind is kind ("" for all).
func (h *History) Stats(w Window, kind string) Stats {
	return StatsOf(h.Select(w, kind))
}

// WriteJSON writes h as one JSON object. [ReadHistory] reads it back
// exactly. Offsets are integer nanoseconds; the schedule uses its hand
// written form.
func (h *History) WriteJSON(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(h); err != nil {
		return fmt.Errorf("sim: write history: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("sim: write history: %w", err)
	}
	return nil
}

// ReadHistory reads a History written by [History.WriteJSON]. Unknown
// fields, an invalid schedule or outcome, and trailing data are errors.
func ReadHistory(r io.Reader) (*History, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("sim: read history: %w", err)
	}
	var h History
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("sim: read history: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("sim: read history: trailing data after the JSON object")
	}
	return &h, nil
}
