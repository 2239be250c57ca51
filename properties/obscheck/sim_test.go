package obscheck_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/properties/obscheck"
	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/sim/logs"
	"github.com/shakedown/shakedown/sim/promscrape"
	"github.com/shakedown/shakedown/toxics"
)

// flaw is what a variant of the pay service gets wrong.
type flaw int

const (
	none          flaw = iota
	dropsTrace         // logs its failures without the trace ID
	noPropagate        // does not pass the traceparent on to payments
	countsNothing      // never counts an error
	gaugeLies          // its breaker gauge always reads closed
)

// payService is a service under test in the simulated network: POST /pay
// calls the payments dependency through a breaker (open for 300ms after
// 3 failures in a row), logs each failure at Warn with the trace ID, and
// exposes an error counter and a breaker gauge on /metrics.
type payService struct {
	flaw     flaw
	log      *slog.Logger
	client   *http.Client
	payments string

	mu        sync.Mutex
	fails     int
	openUntil time.Time
	errors    int
}

func (s *payService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/metrics" {
		s.mu.Lock()
		open := 0
		if time.Now().Before(s.openUntil) && s.flaw != gaugeLies {
			open = 1
		}
		fmt.Fprintf(w, "# TYPE pay_errors_total counter\npay_errors_total{route=\"/pay\"} %d\n# TYPE breaker_open gauge\nbreaker_open %d\n", s.errors, open)
		s.mu.Unlock()
		return
	}
	tp := r.Header.Get("traceparent")
	ctx := r.Context()
	log := s.log.With("trace_id", logs.ParseTraceparent(tp))
	if s.flaw == dropsTrace {
		log = s.log
	}
	s.mu.Lock()
	open := time.Now().Before(s.openUntil)
	s.mu.Unlock()
	err := errors.New("circuit breaker open")
	if !open {
		err = s.call(ctx, tp)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.fails = 0
		io.WriteString(w, "paid")
		return
	}
	if s.flaw != countsNothing {
		s.errors++
	}
	if !open {
		if s.fails++; s.fails >= 3 {
			s.openUntil, s.fails = time.Now().Add(300*time.Millisecond), 0
		}
	}
	log.WarnContext(ctx, "payment failed", "err", err.Error())
	http.Error(w, err.Error(), http.StatusServiceUnavailable)
}

func (s *payService) call(ctx context.Context, tp string) error {
	ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.payments+"/charge", nil)
	if err != nil {
		return err
	}
	if s.flaw != noPropagate {
		req.Header.Set("traceparent", tp)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// config is a simulated check of the pay service with the given flaw.
func config(f flaw, capture *logs.Capture) properties.Config {
	return properties.Config{
		Simulate: true,
		World: func(t testing.TB) sim.World {
			capture.Reset() // every bubble's clock starts at the same instant
			n := sim.NewNetwork(1)
			t.Cleanup(func() { n.Close() })
			client := &http.Client{Transport: &http.Transport{DialContext: n.Dial}, Timeout: time.Second}
			t.Cleanup(client.CloseIdleConnections)
			payments, err := n.FakeHTTP("payments", capture.Middleware("payments", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
			require.NoError(t, err)
			svc := &payService{flaw: f, log: slog.New(capture.Handler("pay", nil)), client: client, payments: payments.URL()}
			api, err := n.FakeHTTP("api", svc)
			require.NoError(t, err)
			pay := func(ctx context.Context, _ string) (string, error) {
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, api.URL()+"/pay", nil)
				if err != nil {
					return "", err
				}
				req.Header.Set("traceparent", sim.Traceparent(ctx))
				resp, err := client.Do(req)
				if err != nil {
					return "", err
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusOK {
					return "", fmt.Errorf("%d %s", resp.StatusCode, strings.TrimSpace(string(b)))
				}
				return "", nil
			}
			return sim.World{
				Targets:  []sim.Target{payments},
				Workload: sim.Workload{Driver: sim.OpenLoop{Rate: 50}, Kinds: []sim.OpKind{{Name: "pay", Do: pay}}},
				Samplers: []sim.Sampler{
					&promscrape.Scraper{Label: "api", URL: api.URL() + "/metrics", Client: client},
					capture.Sampler("pay"),
				},
			}
		},
		Settings: sim.Settings{Cooldown: time.Second},
		Bounds: properties.Bounds{
			Targets:  []properties.TargetKinds{{Name: "payments", Kinds: []toxics.Kind{toxics.KindDown, toxics.KindBlackhole}}},
			MaxSteps: 2, Horizon: 3 * time.Second,
			Fault: properties.DurationRange{Min: 500 * time.Millisecond, Max: 2 * time.Second},
		},
		Invariants: []properties.Invariant{
			obscheck.FailuresLogged{Logs: capture, Service: "pay"},
			obscheck.TraceReaches{Logs: capture, Dependency: "payments"},
			obscheck.CounterRises{Metric: "api.pay_errors_total", Target: "payments"},
			obscheck.BreakerGauge{Gauge: "api.breaker_open", Rejected: "circuit breaker open"},
		},
	}
}

// TestObservabilityInSimulation runs one outage of payments against each
// variant of the pay service: the faithful one holds every invariant,
// and each flaw breaks exactly the invariant that looks for it.
func TestObservabilityInSimulation(t *testing.T) {
	down := sim.Schedule{Steps: []sim.Step{{At: 500 * time.Millisecond, For: time.Second, Target: "payments", Fault: toxics.Down{}}}}
	tests := []struct {
		flaw   flaw
		broken string // the invariant it breaks, "" for none
	}{
		{none, ""},
		{dropsTrace, "every failed op logged"},
		{noPropagate, "trace ID of every successful op reaches payments"},
		{countsNothing, "api.pay_errors_total rises"},
		{gaugeLies, "api.breaker_open agrees"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.flaw), func(t *testing.T) {
			capture := &logs.Capture{}
			it, err := properties.RunSchedule(t, config(tt.flaw, capture), down, 1)
			require.NoError(t, err)
			for _, f := range it.Findings {
				want := properties.Held
				if tt.broken != "" && strings.HasPrefix(f.Invariant, tt.broken) {
					want = properties.Broken
				}
				require.Equal(t, want, f.Verdict, "%s: %v", f.Invariant, f.Err)
			}
			if tt.broken != "" {
				t.Logf("caught:\n%s", it.Findings)
			}
			if tt.flaw == none {
				// The run kept what the service logged for its failed
				// ops, so the report Check writes of a failure (the
				// one SaveFailure writes) shows them on a click.
				logged := 0
				for _, op := range it.History.Ops {
					if op.Outcome != sim.OK && len(it.History.OpLogs[op.ID]) > 0 {
						require.Contains(t, it.History.OpLogs[op.ID][0], "WARN pay: payment failed")
						logged++
					}
				}
				require.Positive(t, logged, "failed ops with their log lines")
				_, _, report := properties.SaveFailure(t, t.TempDir(), it)
				b, err := os.ReadFile(report)
				require.NoError(t, err)
				require.Contains(t, string(b), "WARN pay: payment failed")
			}
		})
	}
}

// TestObservabilityCheck: the faithful pay service passes a whole check,
// drawn schedules and all.
func TestObservabilityCheck(t *testing.T) {
	cfg := config(none, &logs.Capture{})
	cfg.Iterations = 5
	properties.Check(t, cfg)
}

func (f flaw) String() string {
	return [...]string{"faithful", "drops the trace ID", "does not propagate", "counts nothing", "gauge lies"}[f]
}
