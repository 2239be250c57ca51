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

// Phase says where a [Window] lies relative to the faults.
type Phase uint8

const (
	// Before is the window from the start to the first fault.
	Before Phase = iota
	// During is the window of one fault, from its start to its end.
	During
	// After is the window from the last heal to the end of the run.
	After
)

func (p Phase) String() string {
	switch p {
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
// recovery after the last heal.
type Window struct {
	Phase Phase
	// Fault is the index in History.Faults of the fault a During window
	// covers, and -1 for the others.
	Fault int
	// From and To bound the window: an op belongs to it if its intended
	// start t has From <= t < To (the After window also takes t == To).
	From, To time.Duration
	// Label names the window for people: "before the first fault",
	// "fault 0: db blackhole()", "after the last heal".
	Label string
}

// Contains reports whether an op intended to start at t belongs to w.
func (w Window) Contains(t time.Duration) bool {
	return t >= w.From && (t < w.To || w.Phase == After && t == w.To)
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
			first = f.Start
		}
		last = max(last, to)
		during = append(during, Window{Phase: During, Fault: i, From: f.Start, To: to,
			Label: fmt.Sprintf("fault %d: %s %s", i, f.Target, faultString(f))})
	}
	if first < 0 {
		return []Window{{Phase: Before, Fault: -1, From: 0, To: end, Label: "whole run (no faults)"}}
	}
	ws := make([]Window, 0, len(during)+2)
	ws = append(ws, Window{Phase: Before, Fault: -1, From: 0, To: first, Label: "before the first fault"})
	ws = append(ws, during...)
	ws = append(ws, Window{Phase: After, Fault: -1, From: last, To: max(end, last), Label: "after the last heal"})
	return ws
}

func faultString(f FaultEvent) string {
	if f.Fault.Fault == nil {
		return "<nil>"
	}
	return f.Fault.Fault.String()
}

// Select returns the ops of h in w whose kind is kind; the empty kind
// selects every kind.
func (h *History) Select(w Window, kind string) []Op {
	var out []Op
	for _, op := range h.Ops {
		if w.Contains(op.Intended) && (kind == "" || op.Kind == kind) {
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

// Summary condenses a set of ops. Latencies run from each op's intended
// start to its end and include failed ops (a fast failure is a short
// latency). Quantiles are nearest-rank; all are zero when Count is zero.
type Summary struct {
	Count   int `json:"count"`
	OK      int `json:"ok"`
	Failed  int `json:"failed"`
	Unknown int `json:"unknown"`
	// ErrorRate is (Failed+Unknown)/Count, or 0 when Count is 0.
	ErrorRate float64       `json:"error_rate"`
	P50       time.Duration `json:"p50"`
	P90       time.Duration `json:"p90"`
	P99       time.Duration `json:"p99"`
	Max       time.Duration `json:"max"`
}

// Errors is the number of ops that did not succeed.
func (s Summary) Errors() int { return s.Failed + s.Unknown }

func (s Summary) String() string {
	return fmt.Sprintf("%d ops, %d errors (%.1f%%), p50 %v p90 %v p99 %v max %v",
		s.Count, s.Errors(), 100*s.ErrorRate, s.P50, s.P90, s.P99, s.Max)
}

// Summarize counts ops by outcome and computes latency quantiles.
func Summarize(ops []Op) Summary {
	a := summarizer{lat: make([]time.Duration, 0, len(ops))}
	for i := range ops {
		a.add(&ops[i])
	}
	return a.summary()
}

// summarizer accumulates a Summary one op at a time.
type summarizer struct {
	ok, failed, unknown int
	lat                 []time.Duration
}

func (a *summarizer) add(op *Op) {
	switch op.Outcome {
	case OK:
		a.ok++
	case Failed:
		a.failed++
	default:
		a.unknown++
	}
	a.lat = append(a.lat, op.Latency())
}

func (a *summarizer) summary() Summary {
	s := Summary{Count: len(a.lat), OK: a.ok, Failed: a.failed, Unknown: a.unknown}
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

// Summary summarizes the ops of h in w whose kind is kind ("" for all).
func (h *History) Summary(w Window, kind string) Summary {
	return Summarize(h.Select(w, kind))
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
