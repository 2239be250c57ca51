package otelexport

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var began = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func history() *sim.History {
	return &sim.History{Seed: 9, Began: began, Duration: 3 * time.Second,
		Schedule: sim.Schedule{Steps: []sim.Step{{At: time.Second, For: time.Second, Target: "db", Fault: toxics.Blackhole{}}}},
		Ops: []sim.Op{
			{ID: 0, Kind: "orders", Intended: 100 * time.Millisecond, Start: 100 * time.Millisecond, End: 120 * time.Millisecond},
			{ID: 1, Kind: "orders", Intended: 1100 * time.Millisecond, Start: 1100 * time.Millisecond, End: 1900 * time.Millisecond, Outcome: sim.Unknown, Err: "timeout"},
		},
		Faults: []sim.FaultEvent{
			{Step: 0, Target: "db", Fault: toxics.Spec{Fault: toxics.Blackhole{}}, Start: time.Second, End: 2 * time.Second},
			{Step: 1, Target: "cache", Fault: toxics.Spec{Fault: toxics.Down{}}, Start: 2 * time.Second, Err: "no such link"},
		}}
}

func TestExport(t *testing.T) {
	h := history()
	exp := tracetest.NewInMemoryExporter()
	require.NoError(t, Export(context.Background(), exp, h, Options{Service: "checkout-test"}))
	spans := exp.GetSpans()
	require.Len(t, spans, 5) // two faults, two ops, the run
	byName := map[string][]tracetest.SpanStub{}
	for _, s := range spans {
		byName[s.Name] = append(byName[s.Name], s)
	}

	run := byName["shakedown run"][0]
	require.Equal(t, began, run.StartTime)
	require.Equal(t, began.Add(3*time.Second), run.EndTime)
	require.Contains(t, run.Attributes, attrInt("shakedown.seed", 9))

	blackhole := byName["fault db blackhole"][0]
	require.Equal(t, run.SpanContext.TraceID(), blackhole.SpanContext.TraceID(), "a fault is a span of the run's trace")
	require.Equal(t, run.SpanContext.SpanID(), blackhole.Parent.SpanID())
	require.Equal(t, began.Add(time.Second), blackhole.StartTime)
	require.Equal(t, began.Add(2*time.Second), blackhole.EndTime)
	require.Equal(t, codes.Unset, blackhole.Status.Code)
	require.Contains(t, blackhole.Attributes, attrString("shakedown.fault.spec", `{"kind":"blackhole"}`))
	notApplied := byName["fault cache down"][0]
	require.Equal(t, codes.Error, notApplied.Status.Code)
	require.Equal(t, "not applied: no such link", notApplied.Status.Description)
	require.Equal(t, began.Add(3*time.Second), notApplied.EndTime, "never reverted: to the end of the run")

	ops := byName["orders"]
	require.Len(t, ops, 2)
	for i, s := range ops {
		tp := h.Traceparent(uint64(i))
		require.Equal(t, tp[3:35], s.SpanContext.TraceID().String(), "op %d carries the trace ID it sent", i)
		require.Equal(t, tp[36:52], s.SpanContext.SpanID().String(), "op %d: the service's spans are its children", i)
		require.False(t, s.Parent.IsValid())
		require.Equal(t, trace.SpanKindClient, s.SpanKind)
		require.Equal(t, "checkout-test", resourceName(s))
	}
	require.Equal(t, began.Add(1100*time.Millisecond), ops[1].StartTime)
	require.Equal(t, began.Add(1900*time.Millisecond), ops[1].EndTime)
	require.Equal(t, codes.Error, ops[1].Status.Code)
	require.Equal(t, "timeout", ops[1].Status.Description)
	require.Empty(t, ops[0].Links, "op 0 ran before any fault")
	require.Len(t, ops[1].Links, 1)
	require.Equal(t, blackhole.SpanContext.SpanID(), ops[1].Links[0].SpanContext.SpanID(), "op 1 ran while db was blackholed")

	// The same history gives the same spans.
	again := tracetest.NewInMemoryExporter()
	require.NoError(t, Export(context.Background(), again, h, Options{}))
	for i, s := range again.GetSpans() {
		require.Equal(t, spans[i].SpanContext, s.SpanContext)
	}
}

func TestExportErrors(t *testing.T) {
	require.ErrorContains(t, Export(context.Background(), nil, history(), Options{}), "required")
	require.ErrorContains(t, Export(context.Background(), failing{}, history(), Options{}), "otelexport: export spans: collector down")
}

type failing struct{}

func (failing) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error {
	return errors.New("collector down")
}
func (failing) Shutdown(context.Context) error { return nil }
