package logs

import (
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Record is one thing a service reported: a log record it emitted (through
// [Capture.Handler], or as a line of its container's output), or a
// request a dependency received ([Capture.Middleware]).
type Record struct {
	// Time is when the record was written: the slog record's time, the
	// time field of a JSON line or else the time Docker read the line, or
	// when the request arrived.
	Time time.Time
	// Service names where it came from, as given to the Capture.
	Service string
	// Level is the record's level; a line that does not say is Info.
	Level slog.Level
	// Msg is the message; for a line that is not JSON, the whole line.
	Msg string
	// TraceID is the W3C trace ID (32 lowercase hex digits) the record
	// carries, or "". See [Capture] for where it is looked for.
	TraceID string
	// Attrs are the record's other attributes, groups flattened with "."
	// ("http.status"), in the order they were added.
	Attrs []slog.Attr
}

// String is the record on one line: time, level, service, message and
// attributes in logfmt style.
func (r Record) String() string {
	var b strings.Builder
	b.WriteString(r.Time.Format("15:04:05.000"))
	fmt.Fprintf(&b, " %s %s: %s", r.Level, r.Service, r.Msg)
	writeAttrs(&b, r)
	return b.String()
}

// line is String with the time as an offset from a run's start.
func (r Record) line(began time.Time) string {
	var b strings.Builder
	d := r.Time.Sub(began)
	if began.IsZero() {
		d = 0
	}
	sign := "+"
	if d < 0 {
		sign, d = "-", -d
	}
	fmt.Fprintf(&b, "%s%v %s %s: %s", sign, d.Round(time.Millisecond), r.Level, r.Service, r.Msg)
	writeAttrs(&b, r)
	return b.String()
}

func writeAttrs(b *strings.Builder, r Record) {
	for _, a := range r.Attrs {
		b.WriteByte(' ')
		b.WriteString(a.Key)
		b.WriteByte('=')
		v := a.Value.String()
		if v == "" || strings.ContainsAny(v, " \"=") {
			v = fmt.Sprintf("%q", v)
		}
		b.WriteString(v)
	}
	if r.TraceID != "" {
		b.WriteString(" trace_id=")
		b.WriteString(r.TraceID)
	}
}

// traceOf returns the trace ID in a value of an attribute whose key names
// a trace ("trace_id", "traceId", "trace.id", "otel.trace_id"): a
// 32-digit trace ID, or a traceparent header value ("traceparent"). It
// returns "" for any other key or value.
func traceOf(key, value string) string {
	k := normalKey(key)
	switch {
	case k == "traceid" || strings.HasSuffix(k, ".traceid"):
		if len(value) == 32 && isID(value) {
			return strings.ToLower(value)
		}
	case k == "traceparent" || strings.HasSuffix(k, ".traceparent"):
		return ParseTraceparent(value)
	}
	return ""
}

// normalKey lowercases key and drops '_' and '-', and the dots inside
// its last group-separated part: "trace_id", "traceId", "trace-id" and
// "trace.id" are all "traceid", "otel.trace_id" is "otel.traceid".
// Keys longer than 64 bytes are not normalized (they name no trace).
func normalKey(key string) string {
	if len(key) > 64 {
		return ""
	}
	var b [64]byte
	n := 0
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c == '_' || c == '-':
			continue
		case c == '.':
			// A dot before "id" or "parent" joins one key ("trace.id");
			// any other dot separates groups.
			if rest := strings.ToLower(key[i+1:]); rest == "id" || rest == "parent" {
				continue
			}
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		b[n] = c
		n++
	}
	return string(b[:n])
}

// ParseTraceparent returns the trace ID of a W3C traceparent header value
// ("00-<trace ID>-<parent ID>-<flags>"), or "" when v is not one.
func ParseTraceparent(v string) string {
	if len(v) < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' || v[:2] == "ff" {
		return ""
	}
	if (v[:2] == "00" && len(v) != 55) || (len(v) > 55 && v[55] != '-') {
		return ""
	}
	version, trace, parent, flags := v[:2], v[3:35], v[36:52], v[53:55]
	if !isHex(version) || !isHex(flags) || !isID(trace) || !isID(parent) {
		return ""
	}
	return strings.ToLower(trace)
}

// isHex reports whether s is hex digits (of either case).
func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil && len(s)%2 == 0
}

// isID reports whether s is a trace or span ID: hex digits, not all zero.
func isID(s string) bool { return isHex(s) && strings.Trim(s, "0") != "" }
