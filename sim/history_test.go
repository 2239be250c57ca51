package sim

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shakedown/shakedown/toxics"
	"github.com/stretchr/testify/require"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want Outcome
	}{
		{nil, OK},
		{syscall.ECONNREFUSED, Failed},
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}, Failed},
		{fmt.Errorf("get: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), Failed},
		{&net.DNSError{Err: "no such host", Name: "db"}, Failed},
		{ErrNotStarted, Missed},
		{fmt.Errorf("%w; the op returned: %w", ErrCutOff, context.Canceled), Missed},
		{context.DeadlineExceeded, Unknown},
		{context.Canceled, Unknown},
		{os.ErrDeadlineExceeded, Unknown},
		{&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, Unknown},
		{syscall.EPIPE, Unknown},
		{io.EOF, Unknown},
		{io.ErrUnexpectedEOF, Unknown},
		{errStub, Unknown},
	} {
		require.Equal(t, tc.want, Classify(tc.err), "%v", tc.err)
	}
}

func TestTraceparent(t *testing.T) {
	require.Empty(t, Traceparent(context.Background()))
	_, ok := OpID(context.Background())
	require.False(t, ok)

	ctx := withOp(context.Background(), 42, 7)
	id, ok := OpID(ctx)
	require.True(t, ok)
	require.EqualValues(t, 7, id)
	tp := Traceparent(ctx)
	require.Regexp(t, regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-01$`), tp)
	require.Equal(t, tp, Traceparent(withOp(context.Background(), 42, 7)), "deterministic")
	seen := map[string]bool{tp[3:35]: true}
	for _, c := range []struct {
		seed int64
		id   uint64
	}{{42, 8}, {43, 7}, {0, 0}, {0, 1}, {-1, 7}} {
		other := traceparent(c.seed, c.id)
		require.False(t, seen[other[3:35]], "trace ID of %v repeats", c)
		seen[other[3:35]] = true
	}
}

func TestRecorderConcurrent(t *testing.T) {
	var r Recorder
	var wg sync.WaitGroup
	const workers, each = 8, 3000 // spans several chunks
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				r.Record(Op{ID: uint64(i*workers + w), Kind: "k"})
			}
		})
	}
	wg.Wait()
	ops := r.Ops()
	require.Equal(t, workers*each, r.Len())
	require.Len(t, ops, workers*each)
	for i, op := range ops {
		require.EqualValues(t, i, op.ID)
	}
}

// TestRecorderOpsOrder: Ops orders by ID, and ops with the same ID keep
// the order they were recorded in, as a stable sort would.
func TestRecorderOpsOrder(t *testing.T) {
	var r Recorder
	var want []Op
	for i := range 300 {
		op := Op{ID: uint64((i * 7919) % 97), Input: fmt.Sprint(i)}
		r.Record(op)
		want = append(want, op)
	}
	slices.SortStableFunc(want, func(a, b Op) int { return cmp.Compare(a.ID, b.ID) })
	require.Equal(t, want, r.Ops())
}

// sampleHistory is a small history with two kinds of op and three faults
// (one failed to apply), used by the window, JSON and report tests.
func sampleHistory() *History {
	sched := Schedule{Steps: []Step{
		{At: 1 * time.Second, For: 1 * time.Second, Target: "db", Fault: toxics.Blackhole{}},
		{At: 1500 * time.Millisecond, For: 1 * time.Second, Target: "cache", Fault: toxics.Latency{Delay: ms(200), Jitter: ms(20)}},
		{At: 3 * time.Second, For: 500 * time.Millisecond, Target: "cache", Fault: toxics.Down{}},
	}}
	h := &History{
		Seed:     99,
		Schedule: sched,
		Began:    time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
		Duration: 4 * time.Second,
		Faults: []FaultEvent{
			{Step: 0, Target: "db", Fault: toxics.Spec{Fault: sched.Steps[0].Fault}, Start: 1*time.Second + 100, End: 2*time.Second + 200},
			{Step: 1, Target: "cache", Fault: toxics.Spec{Fault: sched.Steps[1].Fault}, Start: 1500*time.Millisecond + 50, End: 2500 * time.Millisecond},
			{Step: 2, Target: "cache", Fault: toxics.Spec{Fault: sched.Steps[2].Fault}, Start: 3 * time.Second, Err: "no such link"},
		},
		Samples: []Sample{{At: 0, Name: "goroutines", Value: 12}, {At: time.Second, Name: "goroutines", Value: 40.5}},
	}
	// One op every 100ms, alternating kinds; db ops fail during the
	// blackhole, cache ops are slow during the latency fault.
	for i := range 40 {
		at := time.Duration(i) * 100 * time.Millisecond
		op := Op{ID: uint64(i), Kind: "orders", Intended: at, Start: at + ms(1), End: at + ms(10), Input: fmt.Sprint(i)}
		if i%2 == 1 {
			op.Kind = "stock"
		}
		switch {
		case op.Kind == "orders" && at > time.Second && at <= 2*time.Second:
			op.End, op.Outcome, op.Err = at+ms(500), Unknown, "context deadline exceeded"
		case op.Kind == "stock" && at > 1500*time.Millisecond && at < 2500*time.Millisecond:
			op.End = at + ms(210)
		case i == 35:
			op.Outcome, op.Err = Failed, "dial tcp: connection refused"
		default:
			op.Output = "ok"
		}
		h.Ops = append(h.Ops, op)
	}
	return h
}

func TestWindows(t *testing.T) {
	h := sampleHistory()
	ws := h.Windows()
	require.Equal(t, []Window{
		{Phase: Before, Fault: 0, From: 0, To: time.Second + 100, Label: "before the first fault"},
		{Phase: During, Fault: 0, From: time.Second + 100, To: 2*time.Second + 200, Label: "fault 0: db blackhole()"},
		{Phase: During, Fault: 1, From: 1500*time.Millisecond + 50, To: 2500 * time.Millisecond, Label: "fault 1: cache latency(200ms±20ms)"},
		{Phase: After, Fault: 1, From: 2500 * time.Millisecond, To: 4 * time.Second, Label: "after the last heal"},
	}, ws)
	require.Equal(t, []string{"orders", "stock"}, h.Kinds())

	// Membership is Window.Holds: Before holds the ops that ended before
	// the first fault, During those in flight at any moment of the fault,
	// After those intended from the last heal on.
	before := h.Stats(ws[0], "")
	require.Equal(t, Stats{Count: 10, OK: 10, P50: ms(10), P90: ms(10), P99: ms(10), Max: ms(10)}, before,
		"the ops at 0 .. 0.9s; the op at 1s ends after the fault began")
	blackhole := h.Stats(ws[1], "orders")
	require.Equal(t, 6, blackhole.Count, "orders at 1.0s .. 2.0s (the op at 1s was in flight when the fault began)")
	require.Equal(t, 5, blackhole.Unknown)
	require.InDelta(t, 5.0/6, blackhole.ErrorRate, 1e-9)
	require.Equal(t, ms(500), blackhole.P50)
	require.Zero(t, StatsOf(h.Select(ws[1], "stock")).Errors(), "stock does not touch db")
	latency := h.Stats(ws[2], "stock")
	require.Equal(t, 6, latency.Count, "stock at 1.5s .. 2.5s: in flight at the start, and intended at the heal")
	require.Equal(t, ms(210), latency.P99)
	after := h.Stats(ws[3], "")
	require.Equal(t, 15, after.Count)
	require.Equal(t, 1, after.Failed)
	require.Equal(t, "15 ops, 1 errors (6.7%), p50 10ms p90 10ms p99 10ms max 10ms", after.String())

	none := (&History{Duration: time.Second}).Windows()
	require.Equal(t, []Window{{Phase: Before, Fault: -1, To: time.Second, Label: "whole run (no faults)"}}, none)
	require.Equal(t, Stats{}, StatsOf(nil))
}

func TestWindowHolds(t *testing.T) {
	op := func(intended, end time.Duration) Op { return Op{Intended: intended, Start: intended, End: end} }
	for _, tc := range []struct {
		name string
		w    Window
		op   Op
		want bool
	}{
		{"overall holds every op", Window{Phase: Overall}, op(5*time.Second, 6*time.Second), true},
		{"before: ended before the fault", Window{Phase: Before, Fault: 0, To: time.Second}, op(0, time.Second-1), true},
		{"before: ended as the fault began", Window{Phase: Before, Fault: 0, To: time.Second}, op(0, time.Second), false},
		{"before without faults holds the whole run", Window{Phase: Before, Fault: -1, To: time.Second}, op(time.Second, 2*time.Second), true},
		{"during: in flight at the start", Window{Phase: During, From: time.Second, To: 2 * time.Second}, op(0, time.Second), true},
		{"during: intended at the end", Window{Phase: During, From: time.Second, To: 2 * time.Second}, op(2*time.Second, 3*time.Second), true},
		{"during: ended before", Window{Phase: During, From: time.Second, To: 2 * time.Second}, op(0, time.Second-1), false},
		{"during: intended after", Window{Phase: During, From: time.Second, To: 2 * time.Second}, op(2*time.Second+1, 3*time.Second), false},
		{"after: intended at the heal", Window{Phase: After, From: time.Second, To: 2 * time.Second}, op(time.Second, 3*time.Second), true},
		{"after: in flight at the heal", Window{Phase: After, From: time.Second, To: 2 * time.Second}, op(time.Second-1, 3*time.Second), false},
		{"unknown phase holds nothing", Window{Phase: 9}, op(0, 0), false},
	} {
		require.Equal(t, tc.want, tc.w.Holds(tc.op), tc.name)
	}
	require.Equal(t, []string{"overall", "before", "during", "after", "Phase(9)"},
		[]string{Overall.String(), Before.String(), During.String(), After.String(), Phase(9).String()})
}

func TestQuantile(t *testing.T) {
	lat := make([]time.Duration, 100)
	for i := range lat {
		lat[i] = time.Duration(i + 1)
	}
	require.Equal(t, time.Duration(50), quantile(lat, 0.5))
	require.Equal(t, time.Duration(99), quantile(lat, 0.99))
	require.Equal(t, time.Duration(1), quantile(lat[:1], 0.99))
}

func TestHistoryJSONRoundTrip(t *testing.T) {
	h := sampleHistory()
	var buf bytes.Buffer
	require.NoError(t, h.WriteJSON(&buf))
	got, err := ReadHistory(bytes.NewReader(buf.Bytes()))
	require.NoError(t, err)
	require.Equal(t, h, got)
	var again bytes.Buffer
	require.NoError(t, got.WriteJSON(&again))
	require.Equal(t, buf.String(), again.String())

	_, err = ReadHistory(strings.NewReader(`{"seed":1,"bogus":2}`))
	require.ErrorContains(t, err, `sim: read history: json: unknown field "bogus"`)
	_, err = ReadHistory(strings.NewReader(`{"ops":[{"outcome":"maybe"}]}`))
	require.ErrorContains(t, err, `outcome "maybe" is not one of ok, failed, unknown`)
	_, err = ReadHistory(strings.NewReader(`{} x`))
	require.ErrorContains(t, err, "trailing data")
}

// TestRunHistoryJSON checks that what Run records (including its Began
// time) survives JSON exactly.
func TestRunHistoryJSON(t *testing.T) {
	h, err := Run(t.Context(), Plan{
		World: World{
			Samplers: []Sampler{Goroutines()},
			Targets:  []Target{&stubTarget{name: "db", start: time.Now()}},
			Workload: Workload{Driver: OpenLoop{Rate: 500}, Kinds: []OpKind{{Name: "a", Do: func(context.Context, string) (string, error) {
				return "out", nil
			}}}},
		},
		Settings: Settings{
			Cooldown:    ms(30),
			SampleEvery: ms(10),
		},
		Seed:     5,
		Schedule: Schedule{Steps: []Step{{At: ms(5), For: ms(10), Target: "db", Fault: toxics.Down{}}}},
	})
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, h.WriteJSON(&buf))
	got, err := ReadHistory(&buf)
	require.NoError(t, err)
	require.Equal(t, h, got)
}
