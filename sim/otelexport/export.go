package otelexport

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/shakedown/shakedown/sim"
)

// Options dress an export. The zero value is ready to use.
type Options struct {
	// Service is the service.name of the spans' resource (default
	// "shakedown").
	Service string
}

// batch is how many spans go to the exporter in one call.
const batch = 1024

// Export writes the run h recorded to exp as OpenTelemetry spans:
//
//   - one span per op, named after its kind, of kind client, from its
//     start to its end, with the trace ID and span ID of the traceparent
//     it sent (sim.History.Traceparent): the service's own spans for that
//     request are its children in a tracing backend. A failed op has
//     status Error with its error. Its attributes are shakedown.op.id,
//     .kind, .outcome and .intended (the offset it was meant to start
//     at), and it links to the span of every fault that held while it
//     ran;
//   - one span for the run, "shakedown run", in a trace of its own, with
//     the seed and the schedule;
//   - one span per fault, "fault <target> <kind>", a child of the run's
//     span, from when it was applied to when it was reverted (to the end
//     of the run if it never was), with shakedown.fault.target, .kind,
//     .spec and .step; status Error when it did not apply or revert.
//
// The run's and the faults' IDs are derived from the seed, so exporting
// one History twice gives the same spans. exp is not shut down.
func Export(ctx context.Context, exp sdktrace.SpanExporter, h *sim.History, opts Options) error {
	if exp == nil || h == nil {
		return errors.New("otelexport: exporter and history are required")
	}
	keep := &keeper{}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithIDGenerator(fixedIDs{}),
		sdktrace.WithSpanProcessor(keep),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", cmp.Or(opts.Service, "shakedown")))),
	)
	defer func() { _ = tp.Shutdown(context.WithoutCancel(ctx)) }()
	tr := tp.Tracer("github.com/shakedown/shakedown/sim/otelexport")
	at := func(d time.Duration) time.Time { return h.Began.Add(d) }

	runTrace := traceID(h.Seed, "run")
	runCtx, run := tr.Start(withIDs(ctx, runTrace, spanID(h.Seed, "run", 0)), "shakedown run",
		trace.WithNewRoot(), trace.WithTimestamp(at(0)),
		trace.WithAttributes(attribute.Int64("shakedown.seed", h.Seed), attribute.String("shakedown.schedule", h.Schedule.String())))

	faults := make([]trace.Link, len(h.Faults))
	for i, f := range h.Faults {
		kind := "?"
		if f.Fault.Fault != nil {
			kind = string(f.Fault.Fault.Kind())
		}
		spec, _ := f.Fault.MarshalJSON()
		_, s := tr.Start(withIDs(runCtx, runTrace, spanID(h.Seed, "fault", uint64(i))), "fault "+f.Target+" "+kind,
			trace.WithTimestamp(at(f.Start)),
			trace.WithAttributes(attribute.String("shakedown.fault.target", f.Target), attribute.String("shakedown.fault.kind", kind),
				attribute.String("shakedown.fault.spec", string(spec)), attribute.Int("shakedown.fault.step", f.Step)))
		switch {
		case f.Err != "":
			s.SetStatus(codes.Error, "not applied: "+f.Err)
		case f.RevertErr != "":
			s.SetStatus(codes.Error, "not reverted: "+f.RevertErr)
		}
		faults[i] = trace.Link{SpanContext: s.SpanContext()}
		end := f.End
		if end == 0 || end < f.Start {
			end = h.Duration
		}
		s.End(trace.WithTimestamp(at(end)))
	}

	for _, op := range h.Ops {
		tid, sid, err := parseTraceparent(h.Traceparent(op.ID))
		if err != nil {
			return fmt.Errorf("otelexport: op %d: %w", op.ID, err)
		}
		var links []trace.Link
		for i, f := range h.Faults {
			end := f.End
			if end == 0 {
				end = h.Duration
			}
			if f.Applied() && f.Start <= op.End && end >= op.Intended {
				links = append(links, faults[i])
			}
		}
		_, s := tr.Start(withIDs(ctx, tid, sid), op.Kind,
			trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(at(op.Start)), trace.WithLinks(links...),
			trace.WithAttributes(attribute.Int64("shakedown.op.id", int64(op.ID)), attribute.String("shakedown.op.kind", op.Kind),
				attribute.String("shakedown.op.outcome", op.Outcome.String()), attribute.String("shakedown.op.intended", op.Intended.String())))
		if op.Outcome != sim.OK {
			s.SetStatus(codes.Error, op.Err)
		}
		s.End(trace.WithTimestamp(at(op.End)))
	}
	run.End(trace.WithTimestamp(at(h.Duration)))

	for i := 0; i < len(keep.spans); i += batch {
		if err := exp.ExportSpans(ctx, keep.spans[i:min(i+batch, len(keep.spans))]); err != nil {
			return fmt.Errorf("otelexport: export spans: %w", err)
		}
	}
	return nil
}

// keeper is a span processor that keeps the spans that end, for one
// export at the end.
type keeper struct{ spans []sdktrace.ReadOnlySpan }

func (k *keeper) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (k *keeper) OnEnd(s sdktrace.ReadOnlySpan)                   { k.spans = append(k.spans, s) }
func (k *keeper) Shutdown(context.Context) error                  { return nil }
func (k *keeper) ForceFlush(context.Context) error                { return nil }

// fixedIDs gives each span the IDs its context carries (withIDs).
type fixedIDs struct{}

type idsKey struct{}

type ids struct {
	t trace.TraceID
	s trace.SpanID
}

func withIDs(ctx context.Context, t trace.TraceID, s trace.SpanID) context.Context {
	return context.WithValue(ctx, idsKey{}, ids{t, s})
}

func (fixedIDs) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	v, _ := ctx.Value(idsKey{}).(ids)
	return v.t, v.s
}

func (fixedIDs) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	v, _ := ctx.Value(idsKey{}).(ids)
	return v.s
}

// parseTraceparent returns the trace and parent IDs of a traceparent.
func parseTraceparent(tp string) (trace.TraceID, trace.SpanID, error) {
	var t trace.TraceID
	var s trace.SpanID
	if len(tp) != 55 {
		return t, s, fmt.Errorf("traceparent %q: want 55 characters", tp)
	}
	if _, err := hex.Decode(t[:], []byte(tp[3:35])); err != nil {
		return t, s, fmt.Errorf("traceparent %q: %w", tp, err)
	}
	if _, err := hex.Decode(s[:], []byte(tp[36:52])); err != nil {
		return t, s, fmt.Errorf("traceparent %q: %w", tp, err)
	}
	return t, s, nil
}

// traceID and spanID derive IDs from the seed, a label and an index.
func traceID(seed int64, label string) trace.TraceID {
	var t trace.TraceID
	binary.BigEndian.PutUint64(t[:8], hash(seed, label, 0))
	binary.BigEndian.PutUint64(t[8:], hash(seed, label, 1))
	return t
}

func spanID(seed int64, label string, i uint64) trace.SpanID {
	var s trace.SpanID
	binary.BigEndian.PutUint64(s[:], hash(seed, label, i+2))
	return s
}

func hash(seed int64, label string, i uint64) uint64 {
	f := fnv.New64a()
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(seed))
	binary.BigEndian.PutUint64(b[8:], i)
	f.Write(b[:])
	f.Write([]byte(label))
	return f.Sum64() | 1 // never the invalid all-zero ID
}
