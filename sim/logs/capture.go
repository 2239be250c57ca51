package logs

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/shakedown/shakedown/sim"
)

// Capture keeps the records of the services and dependencies of a test,
// indexed by trace ID. Its zero value is ready to use, and it is safe for
// concurrent use. One Capture serves every run of a check: the records of
// a run are told from another's by their trace IDs (derived from the
// run's seed) and their times (within the run's); see [Capture.ForOp].
//
// A record's trace ID is taken, in this order, from an attribute whose
// key names a trace ("trace_id", "traceId", "trace.id", "trace-id", also
// under a group such as "otel.trace_id") holding 32 hex digits, or from
// an attribute "traceparent" holding a W3C traceparent; then, for a
// record of [Capture.Handler], from FromContext.
type Capture struct {
	// FromContext returns the trace ID a record's context carries, for
	// services that keep it in the context rather than in an attribute
	// (with OpenTelemetry: trace.SpanContextFromContext(ctx).TraceID()
	// as a string). Nil looks at attributes only.
	FromContext func(ctx context.Context) string

	mu      sync.Mutex
	recs    []Record
	byTrace map[string][]int     // trace ID -> indexes in recs
	count   map[string][2]int    // service -> records, records at Warn or above
	polled  map[string]time.Time // service -> time of the last line Poll read
}

// Add keeps r.
func (c *Capture) Add(r Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addLocked(r)
}

func (c *Capture) addLocked(r Record) {
	if r.TraceID != "" {
		if c.byTrace == nil {
			c.byTrace = map[string][]int{}
		}
		c.byTrace[r.TraceID] = append(c.byTrace[r.TraceID], len(c.recs))
	}
	c.recs = append(c.recs, r)
	if c.count == nil {
		c.count = map[string][2]int{}
	}
	n := c.count[r.Service]
	n[0]++
	if r.Level >= slog.LevelWarn {
		n[1]++
	}
	c.count[r.Service] = n
}

// Records returns a copy of every record kept, in the order they came.
func (c *Capture) Records() []Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.recs)
}

// Trace returns the records that carry trace ID id, in the order they
// came.
func (c *Capture) Trace(id string) []Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	idx := c.byTrace[id]
	out := make([]Record, len(idx))
	for i, j := range idx {
		out[i] = c.recs[j]
	}
	return out
}

// Reset drops every record kept. Simulated runs need it: every
// testing/synctest bubble starts its clock at the same instant, so a
// schedule run twice (with the same seed, so the same trace IDs) would
// find the first run's records in the second's time. Call it from the
// Config's World, which builds each simulated run:
//
//	World: func(t testing.TB) sim.World { capture.Reset(); ... }
//
// Lines already read by [Capture.Poll] are not read again.
func (c *Capture) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recs, c.byTrace, c.count = nil, nil, nil
}

// ForOp returns the records that carry the trace ID op sent in the run h
// recorded (see [sim.History.Traceparent]) and were written from the
// op's intended start until within after its end, in the order they came.
// The time bound keeps another run of the same schedule (same seed, same
// trace IDs) out; a history without a start time (Began) is not bounded.
func (c *Capture) ForOp(h *sim.History, op sim.Op, within time.Duration) []Record {
	id := TraceID(h, op.ID)
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Record
	for _, j := range c.byTrace[id] {
		if r := c.recs[j]; inRun(h, op, within, r.Time) {
			out = append(out, r)
		}
	}
	return out
}

func inRun(h *sim.History, op sim.Op, within time.Duration, at time.Time) bool {
	if h.Began.IsZero() {
		return true
	}
	return !at.Before(h.Began.Add(op.Intended)) && !at.After(h.Began.Add(op.End+within))
}

// TraceID returns the trace ID (32 lowercase hex digits) that the op with
// the given ID sent in the run h recorded.
func TraceID(h *sim.History, op uint64) string { return h.Traceparent(op)[3:35] }

// Report limits: lines kept per op, and in all.
const (
	maxLinesPerOp = 20
	maxLines      = 50_000
)

// OpLines returns the records of each op of h that has any (see
// [Capture.ForOp]), one line each with its time as an offset from the
// run's start, for sim.ReportOptions.OpLogs: clicking an op in the report
// shows them. An op's lines stop at 20 and all lines at 50,000, failed
// ops first.
func (c *Capture) OpLines(h *sim.History, within time.Duration) map[uint64][]string {
	out := map[uint64][]string{}
	total := 0
	for _, failed := range []bool{true, false} {
		for _, op := range h.Ops {
			if (op.Outcome != sim.OK) != failed || total >= maxLines {
				continue
			}
			recs := c.ForOp(h, op, within)
			if len(recs) == 0 {
				continue
			}
			lines := make([]string, 0, min(len(recs), maxLinesPerOp))
			for i, r := range recs {
				if i == maxLinesPerOp {
					lines = append(lines, "…")
					break
				}
				lines = append(lines, r.line(h.Began))
			}
			out[op.ID] = lines
			total += len(lines)
		}
	}
	return out
}

// Sampler returns a sampler of the number of records kept from service,
// in all ("<service>.records") and at Warn or above ("<service>.warn"),
// so the report draws the service's log rate beside the ops. Its name is
// "log".
//
// The sampler is also a [sim.OpLogger]: at the end of each run the runner
// keeps the records of every op that has any ([Capture.OpLines], up to
// [ReportWithin] after the op's end) in the history, so the report of
// that run, and of a check's failure, shows them when an op is clicked.
func (c *Capture) Sampler(service string) sim.Sampler {
	return captureSampler{sim.SamplerFunc("log", func(context.Context) (map[string]float64, error) {
		return c.counts(service), nil
	}), c}
}

// ReportWithin is how long after an op's end a record still belongs to
// the op in the lines the sampler of [Capture.Sampler] keeps.
const ReportWithin = time.Second

type captureSampler struct {
	sim.Sampler
	c *Capture
}

func (s captureSampler) OpLogs(h *sim.History) map[uint64][]string {
	return s.c.OpLines(h, ReportWithin)
}

func (c *Capture) counts(service string) map[string]float64 {
	c.mu.Lock()
	n := c.count[service]
	c.mu.Unlock()
	return map[string]float64{service + ".records": float64(n[0]), service + ".warn": float64(n[1])}
}
