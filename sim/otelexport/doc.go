// Package otelexport exports a run as OpenTelemetry spans, so the faults
// shakedown injected show in a tracing backend beside the service's own
// spans:
//
//	exp, err := otlptracehttp.New(ctx) // or any sdktrace.SpanExporter
//	...
//	h, err := sim.Run(ctx, plan)
//	...
//	err = otelexport.Export(ctx, exp, h, otelexport.Options{Service: "checkout-shakedown"})
//
// Each op becomes a client span with the trace ID and span ID of the
// traceparent it sent (sim.History.Traceparent), so the service's server
// span for that request is its child; a failed op has status Error.
// Each fault is a span of its own, under one span for the run, and each
// op links to the faults that held while it ran. See [Export].
//
// This package imports the OpenTelemetry SDK; the core packages (sim,
// properties) do not.
package otelexport
