package logs

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/sim"
)

const (
	tp    = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	trace = "4bf92f3577b34da6a3ce929d0e0e4736"
)

func TestHandlerFindsTheTraceID(t *testing.T) {
	type ctxKey struct{}
	tests := []struct {
		name string
		log  func(l *slog.Logger, ctx context.Context)
		want string
	}{
		{"trace_id attribute", func(l *slog.Logger, ctx context.Context) { l.Warn("x", "trace_id", trace) }, trace},
		{"camel case, upper hex", func(l *slog.Logger, ctx context.Context) { l.Warn("x", "traceId", strings.ToUpper(trace)) }, trace},
		{"traceparent attribute", func(l *slog.Logger, ctx context.Context) { l.Warn("x", "traceparent", tp) }, trace},
		{"in a group", func(l *slog.Logger, ctx context.Context) { l.Warn("x", slog.Group("otel", "trace_id", trace)) }, trace},
		{"from the logger", func(l *slog.Logger, ctx context.Context) { l.With("trace_id", trace).Warn("x") }, trace},
		{"under WithGroup", func(l *slog.Logger, ctx context.Context) { l.WithGroup("req").Warn("x", "trace.id", trace) }, trace},
		{"from the context", func(l *slog.Logger, ctx context.Context) {
			l.WarnContext(context.WithValue(ctx, ctxKey{}, trace), "x")
		}, trace},
		{"the record's own wins over the logger's", func(l *slog.Logger, ctx context.Context) {
			l.With("trace_id", strings.Repeat("1", 32)).Warn("x", "trace_id", trace)
		}, trace},
		// Not trace IDs: the wrong length, all zeros, a key that does not
		// name a trace.
		{"short", func(l *slog.Logger, ctx context.Context) { l.Warn("x", "trace_id", "4bf92f") }, ""},
		{"all zeros", func(l *slog.Logger, ctx context.Context) { l.Warn("x", "trace_id", strings.Repeat("0", 32)) }, ""},
		{"other key", func(l *slog.Logger, ctx context.Context) { l.Warn("x", "order_id", trace) }, ""},
		{"none", func(l *slog.Logger, ctx context.Context) { l.Warn("x") }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Capture{FromContext: func(ctx context.Context) string { s, _ := ctx.Value(ctxKey{}).(string); return s }}
			tt.log(slog.New(c.Handler("svc", nil)), context.Background())
			recs := c.Records()
			require.Len(t, recs, 1)
			require.Equal(t, tt.want, recs[0].TraceID)
			if tt.want != "" {
				require.Len(t, c.Trace(tt.want), 1)
				for _, a := range recs[0].Attrs {
					require.NotContains(t, a.Value.String(), trace, "the trace ID is kept once, in TraceID")
				}
			}
		})
	}
}

func TestHandlerPassesOn(t *testing.T) {
	var buf bytes.Buffer
	c := &Capture{}
	l := slog.New(c.Handler("checkout", slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	l = l.With("variant", "resilient").WithGroup("req")
	l.Debug("not emitted, not kept")
	l.Warn("dependency failed", "err", "timeout", "trace_id", trace)
	require.Contains(t, buf.String(), "level=WARN msg=\"dependency failed\" variant=resilient req.err=timeout req.trace_id="+trace)
	recs := c.Records()
	require.Len(t, recs, 1)
	r := recs[0]
	require.Equal(t, slog.LevelWarn, r.Level)
	require.Equal(t, "checkout", r.Service)
	require.Equal(t, "dependency failed", r.Msg)
	require.Equal(t, []slog.Attr{slog.String("variant", "resilient"), slog.String("req.err", "timeout")}, r.Attrs)
	require.Contains(t, r.String(), "WARN checkout: dependency failed variant=resilient req.err=timeout trace_id="+trace)
}

func TestParseLine(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name, line string
		want       Record
	}{
		{
			name: "slog JSON",
			line: `{"time":"2026-01-02T03:04:06.5Z","level":"WARN","msg":"dependency failed","err":"postgres: timeout","trace_id":"` + trace + `"}`,
			want: Record{Time: at.Add(1500 * time.Millisecond), Level: slog.LevelWarn, Msg: "dependency failed", TraceID: trace,
				Attrs: []slog.Attr{slog.String("err", "postgres: timeout")}},
		},
		{
			name: "zerolog-style JSON with nested fields and numbers",
			line: `{"level":"error","message":"boom","http":{"status":503,"took":0.5},"ok":false,"traceparent":"` + tp + `"}`,
			want: Record{Time: at, Level: slog.LevelError, Msg: "boom", TraceID: trace,
				Attrs: []slog.Attr{slog.Int64("http.status", 503), slog.Float64("http.took", 0.5), slog.Bool("ok", false)}},
		},
		{
			name: "slog level offset",
			line: `{"level":"WARN+2","msg":"m"}`,
			want: Record{Time: at, Level: slog.LevelWarn + 2, Msg: "m"},
		},
		{
			name: "slog text",
			line: `time=2026-01-02T03:04:05Z level=ERROR msg="db down" trace_id=` + trace + "\n",
			want: Record{Time: at, Level: slog.LevelError, Msg: `time=2026-01-02T03:04:05Z level=ERROR msg="db down" trace_id=` + trace, TraceID: trace},
		},
		{
			name: "plain text",
			line: "testserver ready echo=[::]:7000 http=[::]:8080",
			want: Record{Time: at, Level: slog.LevelInfo, Msg: "testserver ready echo=[::]:7000 http=[::]:8080"},
		},
		{
			name: "broken JSON is text",
			line: `{"level":"WARN",`,
			want: Record{Time: at, Level: slog.LevelInfo, Msg: `{"level":"WARN",`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.want.Service = "api"
			require.Equal(t, tt.want, ParseLine("api", at, tt.line))
		})
	}
}

func FuzzParseLine(f *testing.F) {
	f.Add(`{"level":"WARN","msg":"x","trace_id":"` + trace + `"}`)
	f.Add(`level=warn traceparent=` + tp)
	f.Add(`{"a":{"b":[1,2,{"c":null}]}}`)
	f.Fuzz(func(t *testing.T, line string) {
		r := ParseLine("s", time.Time{}, line)
		if r.TraceID != "" && (len(r.TraceID) != 32 || strings.ToLower(r.TraceID) != r.TraceID) {
			t.Fatalf("trace ID %q is not 32 lowercase hex digits", r.TraceID)
		}
	})
}

// TestForOp: an op's records are those with its trace ID inside the run's
// time, from its intended start until Within after its end.
func TestForOp(t *testing.T) {
	began := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := &sim.History{Seed: 7, Began: began, Ops: []sim.Op{
		{ID: 1, Kind: "get", Intended: time.Second, Start: time.Second, End: 2 * time.Second, Outcome: sim.Failed, Err: "boom"},
		{ID: 2, Kind: "get", Intended: time.Second, Start: time.Second, End: 2 * time.Second},
	}}
	id := TraceID(h, 1)
	require.Equal(t, ParseTraceparent(h.Traceparent(1)), id)
	c := &Capture{}
	at := func(d time.Duration) time.Time { return began.Add(d) }
	c.Add(Record{Time: at(500 * time.Millisecond), Service: "s", Msg: "before the op", TraceID: id})
	c.Add(Record{Time: at(1500 * time.Millisecond), Service: "s", Msg: "during", TraceID: id, Level: slog.LevelWarn})
	c.Add(Record{Time: at(2500 * time.Millisecond), Service: "s", Msg: "within", TraceID: id})
	c.Add(Record{Time: at(4 * time.Second), Service: "s", Msg: "too late", TraceID: id})
	c.Add(Record{Time: at(1500 * time.Millisecond), Service: "s", Msg: "op 2", TraceID: TraceID(h, 2)})
	c.Add(Record{Time: at(1500 * time.Millisecond), Service: "s", Msg: "no trace"})

	msgs := func(rs []Record) (out []string) {
		for _, r := range rs {
			out = append(out, r.Msg)
		}
		return out
	}
	require.Equal(t, []string{"during", "within"}, msgs(c.ForOp(h, h.Ops[0], time.Second)))
	require.Equal(t, []string{"op 2"}, msgs(c.ForOp(h, h.Ops[1], time.Second)))

	lines := c.OpLines(h, time.Second)
	require.Equal(t, map[uint64][]string{
		1: {"+1.5s WARN s: during trace_id=" + id, "+2.5s INFO s: within trace_id=" + id},
		2: {"+1.5s INFO s: op 2 trace_id=" + TraceID(h, 2)},
	}, lines)

	c.Reset()
	require.Empty(t, c.ForOp(h, h.Ops[0], time.Second))
	require.Empty(t, c.Records())
}

func TestPollReadsEachLineOnce(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	written := []struct {
		at   time.Time
		text string
	}{
		{t0, `{"level":"WARN","msg":"a"}`},
		{t0.Add(time.Millisecond), "plain b"},
	}
	var sinces []time.Time
	read := func(_ context.Context, since time.Time, line func(time.Time, string)) error {
		sinces = append(sinces, since)
		// Like Docker, since is inclusive.
		for _, w := range written {
			if !w.at.Before(since) {
				line(w.at, w.text)
			}
		}
		return nil
	}
	c := &Capture{}
	s := c.Poll("api", read)
	require.Equal(t, "log", s.Name())
	got, err := s.Sample(context.Background())
	require.NoError(t, err)
	require.Equal(t, map[string]float64{"api.records": 2, "api.warn": 1}, got)

	written = append(written, struct {
		at   time.Time
		text string
	}{t0.Add(2 * time.Millisecond), "level=error c"})
	// A second sampler (a World built per run) goes on where the first
	// stopped.
	got, err = c.Poll("api", read).Sample(context.Background())
	require.NoError(t, err)
	require.Equal(t, map[string]float64{"api.records": 3, "api.warn": 2}, got)
	require.Equal(t, []time.Time{{}, t0.Add(time.Millisecond)}, sinces)

	_, err = c.Poll("api", func(context.Context, time.Time, func(time.Time, string)) error {
		return errors.New("no such container")
	}).Sample(context.Background())
	require.ErrorContains(t, err, "read the lines of api: no such container")
	_, err = c.Poll("api", nil).Sample(context.Background())
	require.ErrorContains(t, err, "read is nil")
}

func TestMiddleware(t *testing.T) {
	c := &Capture{}
	srv := httptest.NewServer(c.Middleware("payments", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	})))
	t.Cleanup(srv.Close)
	for _, h := range []string{tp, ""} {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/pay", nil)
		require.NoError(t, err)
		if h != "" {
			req.Header.Set("traceparent", h)
		}
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusTeapot, resp.StatusCode)
	}
	recs := c.Records()
	require.Len(t, recs, 2)
	require.Equal(t, trace, recs[0].TraceID)
	require.Equal(t, "", recs[1].TraceID)
	require.Equal(t, "payments", recs[0].Service)
	require.Equal(t, []slog.Attr{slog.String("method", "POST"), slog.String("path", "/pay")}, recs[0].Attrs)
}

// BenchmarkHandler is the cost of capturing a record: the service's own
// JSON handler alone, then wrapped by a Capture.
func BenchmarkHandler(b *testing.B) {
	base := func() slog.Handler { return slog.NewJSONHandler(discard{}, nil) }
	run := func(b *testing.B, h slog.Handler) {
		l := slog.New(h).With("variant", "resilient")
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			l.LogAttrs(ctx, slog.LevelWarn, "dependency failed", slog.String("err", "postgres: timeout"), slog.String("trace_id", trace))
		}
	}
	b.Run("bare", func(b *testing.B) { run(b, base()) })
	b.Run("captured", func(b *testing.B) {
		c := &Capture{}
		run(b, c.Handler("checkout", base()))
		b.ReportMetric(float64(len(c.Records())), "records")
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func TestParseTraceparent(t *testing.T) {
	for v, want := range map[string]string{
		tp:                                     trace,
		strings.ToUpper(tp):                    trace,
		"01-" + tp[3:] + "-later":              trace, // a later version may append fields
		"00-" + tp[3:] + "-later":              "",    // version 00 may not
		"ff-" + tp[3:]:                         "",    // forbidden version
		tp[:36] + "0000000000000000" + tp[52:]: "",    // zero parent ID
		"00-" + strings.Repeat("0", 32) + tp[35:]:                 "", // zero trace ID
		"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01": "",
		"": "",
	} {
		if got := ParseTraceparent(v); got != want {
			t.Errorf("ParseTraceparent(%q) = %q, want %q", v, got, want)
		}
	}
}
