package obscheck

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/sim/logs"
	"github.com/shakedown/shakedown/toxics"
)

var began = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const ms = time.Millisecond

// history is a run with one fault on db from 1s to 2s, and the given ops.
func history(ops ...sim.Op) *sim.History {
	return &sim.History{Seed: 3, Began: began, Duration: 3 * time.Second, Ops: ops,
		Faults: []sim.FaultEvent{{Step: 0, Target: "db", Fault: toxics.Spec{Fault: toxics.Down{}}, Start: time.Second, End: 2 * time.Second}}}
}

func op(id uint64, at time.Duration, o sim.Outcome, err string) sim.Op {
	return sim.Op{ID: id, Kind: "orders", Intended: at, Start: at, End: at + 10*ms, Outcome: o, Err: err}
}

// logged adds a record of service at level for op id of h, at offset at.
func logged(c *logs.Capture, h *sim.History, id uint64, service string, level slog.Level, at time.Duration) {
	c.Add(logs.Record{Time: began.Add(at), Service: service, Level: level, Msg: "m", TraceID: logs.TraceID(h, id)})
}

func verdict(t *testing.T, inv properties.Invariant, h *sim.History) (properties.Verdict, error) {
	t.Helper()
	f := properties.Evaluate(h, []properties.Invariant{inv})[0]
	return f.Verdict, f.Err
}

func TestFailuresLogged(t *testing.T) {
	h := history(op(1, 500*ms, sim.OK, ""), op(2, 1200*ms, sim.Failed, "503"), op(3, 1500*ms, sim.Unknown, "timeout"),
		op(4, 2500*ms, sim.Missed, sim.ErrNotStarted.Error()))
	tests := []struct {
		name    string
		inv     FailuresLogged
		records func(c *logs.Capture)
		want    properties.Verdict
		errHas  string
	}{
		{"every failure logged", FailuresLogged{}, func(c *logs.Capture) {
			logged(c, h, 2, "checkout", slog.LevelWarn, 1205*ms)
			logged(c, h, 3, "checkout", slog.LevelError, 2*time.Second) // 490ms after its end: within 1s
		}, properties.Held, ""},
		{"one logged at Info only", FailuresLogged{}, func(c *logs.Capture) {
			logged(c, h, 2, "checkout", slog.LevelWarn, 1205*ms)
			logged(c, h, 3, "checkout", slog.LevelInfo, 1505*ms)
		}, properties.Broken, "op 3 (orders: timeout) at 1.51s: got 1 records with its trace ID, none at WARN or above"},
		{"too late", FailuresLogged{Within: 100 * ms}, func(c *logs.Capture) {
			logged(c, h, 2, "checkout", slog.LevelWarn, 1205*ms)
			logged(c, h, 3, "checkout", slog.LevelWarn, 2*time.Second)
		}, properties.Broken, "op 3"},
		{"by another service", FailuresLogged{Service: "checkout"}, func(c *logs.Capture) {
			logged(c, h, 2, "checkout", slog.LevelWarn, 1205*ms)
			logged(c, h, 3, "proxy", slog.LevelWarn, 1505*ms)
		}, properties.Broken, "no record with its trace ID"},
		{"ops not started are not judged", FailuresLogged{}, func(c *logs.Capture) {
			logged(c, h, 2, "checkout", slog.LevelWarn, 1205*ms)
			logged(c, h, 3, "checkout", slog.LevelWarn, 1505*ms)
			logged(c, h, 4, "checkout", slog.LevelInfo, 2505*ms) // never started: cannot have been logged
		}, properties.Held, ""},
		{"only the kinds judged", FailuresLogged{Kinds: []string{"stock"}}, func(*logs.Capture) {}, properties.Unjudged, "no op failed"},
		{"no Logs", FailuresLogged{}, nil, properties.Broken, "Logs is nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.records != nil {
				tt.inv.Logs = &logs.Capture{}
				tt.records(tt.inv.Logs)
			}
			v, err := verdict(t, tt.inv, h)
			require.Equal(t, tt.want, v, "%v", err)
			if tt.errHas != "" {
				require.ErrorContains(t, err, tt.errHas)
			}
		})
	}
}

func TestTraceReaches(t *testing.T) {
	h := history(op(1, 500*ms, sim.OK, ""), op(2, 1200*ms, sim.Failed, "503"), op(3, 2500*ms, sim.OK, ""))
	c := &logs.Capture{}
	inv := TraceReaches{Logs: c, Dependency: "payments"}
	logged(c, h, 1, "payments", slog.LevelInfo, 505*ms)
	v, err := verdict(t, inv, h)
	require.Equal(t, properties.Broken, v)
	require.ErrorContains(t, err, "op 3 (orders) at 2.51s: got no request with its trace ID")
	c.Add(logs.Record{Time: began.Add(2505 * ms), Service: "payments", Msg: "request"}) // no trace ID
	_, err = verdict(t, inv, h)
	require.ErrorContains(t, err, "1 of 2 successful ops untraced; 1 requests reached payments without a trace ID")

	logged(c, h, 3, "payments", slog.LevelInfo, 2505*ms)
	v, err = verdict(t, inv, h)
	require.Equal(t, properties.Held, v, "%v", err)

	v, _ = verdict(t, TraceReaches{Logs: c, Dependency: "payments", Kinds: []string{"stock"}}, h)
	require.Equal(t, properties.Unjudged, v)
}

// TestTraceReachesSkipsCorruption: an op a corrupt fault overlapped may
// have had its traceparent altered in flight, so it is not judged; the
// same op outside the fault is.
func TestTraceReachesSkipsCorruption(t *testing.T) {
	h := history(op(1, 2500*ms, sim.OK, ""))
	inv := TraceReaches{Logs: &logs.Capture{}, Dependency: "payments"}
	v, _ := verdict(t, inv, h)
	require.Equal(t, properties.Broken, v, "untraced, no corruption")

	h.Faults = append(h.Faults, sim.FaultEvent{Step: 1, Target: "payments", Fault: toxics.Spec{Fault: toxics.Corrupt{Probability: 0.5}},
		Start: 2400 * ms, End: 2600 * ms})
	v, err := verdict(t, inv, h)
	require.Equal(t, properties.Unjudged, v)
	require.ErrorContains(t, err, "every op that succeeded (1) overlapped a corrupt fault")

	h.Faults[1].Err = "not applied" // a fault that did not apply altered nothing
	v, _ = verdict(t, inv, h)
	require.Equal(t, properties.Broken, v)
}

func samples(name string, vals ...float64) []sim.Sample {
	var out []sim.Sample
	for i, v := range vals {
		out = append(out, sim.Sample{At: time.Duration(i) * 500 * ms, Name: name, Value: v})
	}
	return out
}

func TestCounterRises(t *testing.T) {
	failing := history(op(1, 1200*ms, sim.Failed, "503"))
	tests := []struct {
		name    string
		h       *sim.History
		samples []sim.Sample
		inv     CounterRises
		want    properties.Verdict
		errHas  string
	}{
		// Readings every 500ms: 0, 0.5, 1, 1.5, 2, 2.5, 3s; the fault holds
		// from 1s to 2s, judged from the reading at 1s to the one at 3s.
		{"rises", failing, samples("api.errors_total", 0, 0, 0, 1, 2, 2, 2), CounterRises{Metric: "api.errors_total"}, properties.Held, ""},
		{"flat", failing, samples("api.errors_total", 4, 4, 4, 4, 4, 4, 4), CounterRises{Metric: "api.errors_total"}, properties.Broken,
			"fault 0: db down() at 1s: got a rise of 0 from 1s to 3s while 1 ops failed, want >= 1"},
		{"rose before the fault only", failing, samples("api.errors_total", 0, 5, 5, 5, 5, 5, 5), CounterRises{Metric: "api.errors_total"}, properties.Broken, "rise of 0"},
		{"a restart counts from zero", failing, samples("api.errors_total", 9, 9, 9, 0, 2, 2, 2), CounterRises{Metric: "api.errors_total", MinRise: 2}, properties.Held, ""},
		{"less than MinRise", failing, samples("api.errors_total", 0, 0, 0, 1, 2, 2, 2), CounterRises{Metric: "api.errors_total", MinRise: 3}, properties.Broken, "want >= 3"},
		{"series summed", failing, append(samples(`api.errors_total{code="500"}`, 0, 0, 0, 0, 0, 0, 0), samples(`api.errors_total{code="503"}`, 0, 0, 0, 1, 1, 1, 1)...),
			CounterRises{Metric: "api.errors_total"}, properties.Held, ""},
		{"one series", failing, append(samples(`api.errors_total{code="500"}`, 0, 0, 0, 0, 0, 0, 0), samples(`api.errors_total{code="503"}`, 0, 0, 0, 1, 1, 1, 1)...),
			CounterRises{Metric: `api.errors_total{code="500"}`}, properties.Broken, "rise of 0"},
		{"no failure during the fault", history(op(1, 1200*ms, sim.OK, "")), samples("api.errors_total", 0, 0, 0, 0, 0, 0, 0), CounterRises{Metric: "api.errors_total"},
			properties.Unjudged, "no op failed while a fault held"},
		{"another target", failing, samples("api.errors_total", 0, 0, 0, 0, 0, 0, 0), CounterRises{Metric: "api.errors_total", Target: "cache"}, properties.Unjudged, ""},
		{"no readings", failing, nil, CounterRises{Metric: "api.errors_total"}, properties.Unjudged, "no reading of api.errors_total"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.h.Samples = tt.samples
			v, err := verdict(t, tt.inv, tt.h)
			require.Equal(t, tt.want, v, "%v", err)
			if tt.errHas != "" {
				require.ErrorContains(t, err, tt.errHas)
			}
		})
	}
}

func TestBreakerGauge(t *testing.T) {
	const gauge = `api.breaker_open{dep="db"}`
	rejected := func(id uint64, at time.Duration) sim.Op {
		return op(id, at, sim.Failed, "503 postgres: circuit breaker open")
	}
	tests := []struct {
		name   string
		h      *sim.History
		gauge  []float64 // readings at 0, 0.5s, 1s...
		want   properties.Verdict
		errHas string
	}{
		{"agrees", history(rejected(1, 1200*ms), op(2, 2600*ms, sim.OK, "")), []float64{0, 0, 1, 1, 0, 0, 0}, properties.Held, ""},
		{"turned away while the gauge read closed", history(rejected(1, 1200*ms)), []float64{0, 0, 0, 0, 0, 0, 0}, properties.Broken,
			"op 1 (orders: 503 postgres: circuit breaker open) at 1.2s: got turned away by an open breaker while the gauge read 0 from 1s to 1.5s"},
		{"succeeded while the gauge read open", history(op(1, 1200*ms, sim.OK, "")), []float64{0, 0, 1, 1, 0, 0, 0}, properties.Broken,
			"succeeded while the gauge read open from 1s to 1.5s"},
		{"nothing to judge", history(op(1, 1200*ms, sim.OK, "")), []float64{0, 0, 0, 0, 0, 0, 0}, properties.Unjudged, "no op was turned away"},
		{"no readings", history(rejected(1, 1200*ms)), nil, properties.Unjudged, "no reading"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.h.Samples = samples(gauge, tt.gauge...)
			v, err := verdict(t, BreakerGauge{Gauge: gauge, Rejected: "circuit breaker open"}, tt.h)
			require.Equal(t, tt.want, v, "%v", err)
			if tt.errHas != "" {
				require.ErrorContains(t, err, tt.errHas)
			}
		})
	}
	// gobreaker's State: open is 2.
	h := history(rejected(1, 1200*ms))
	h.Samples = samples(gauge, 0, 0, 2, 2, 0, 0, 0)
	v, err := verdict(t, BreakerGauge{Gauge: gauge, Open: 2, Rejected: "circuit breaker open"}, h)
	require.Equal(t, properties.Held, v, "%v", err)
}
