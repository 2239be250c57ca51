package otelexport

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func attrInt(k string, v int64) attribute.KeyValue { return attribute.Int64(k, v) }
func attrString(k, v string) attribute.KeyValue    { return attribute.String(k, v) }
func resourceName(s tracetest.SpanStub) string {
	v, _ := s.Resource.Set().Value("service.name")
	return v.AsString()
}
