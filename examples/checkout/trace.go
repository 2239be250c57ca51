package checkout

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
)

// TraceParent is the W3C Trace Context request header,
// "00-<32 hex trace ID>-<16 hex parent ID>-<2 hex flags>".
const TraceParent = "traceparent"

// ParseTraceParent returns the trace ID of a W3C traceparent header value,
// and false when the value is malformed (then a service starts a new trace).
func ParseTraceParent(v string) (traceID string, ok bool) {
	// version "-" trace-id "-" parent-id "-" flags: 2+1+32+1+16+1+2 = 55.
	if len(v) < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return "", false
	}
	version, trace, parent, flags := v[:2], v[3:35], v[36:52], v[53:55]
	if !lowerHex(version) || version == "ff" || !lowerHex(trace) || !lowerHex(parent) || !lowerHex(flags) {
		return "", false
	}
	// Version 00 has exactly these fields; a later version may append
	// more, after a dash.
	if (version == "00" && len(v) != 55) || (len(v) > 55 && v[55] != '-') {
		return "", false
	}
	if allZero(trace) || allZero(parent) {
		return "", false
	}
	return trace, true
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func allZero(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}

// newID returns 32 random hex digits: order IDs and fresh trace IDs. They
// come from crypto/rand rather than the run's seed because they must not
// collide across runs that share a seed and a database; no decision of the
// service depends on them.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails on supported platforms
	return hex.EncodeToString(b[:])
}

type traceKey struct{}

func withTraceID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, traceKey{}, id)
}

// TraceID returns the trace ID the service attached to a request's
// context, or "".
func TraceID(ctx context.Context) string {
	id, _ := ctx.Value(traceKey{}).(string)
	return id
}

// traceHandler adds the trace ID of the record's context to every log
// line, so code deep in a call (a breaker changing state, a failed
// compensation) logs it without passing a logger around.
type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := TraceID(ctx); id != "" {
		r.AddAttrs(slog.String("trace_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(as)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}
