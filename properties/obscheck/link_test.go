package obscheck_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/harness"
	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/properties/obscheck"
	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/sim/logs"
	"github.com/shakedown/shakedown/toxics"
)

// TestTraceReachesAtTheLink: for real, the requests an api service sends
// its payments dependency are seen where the harness Link delivers them
// (Link.OnTraceparent), not in the dependency's handler. A service that
// passes the op's traceparent on holds TraceReaches through a latency
// fault; one that drops it is caught.
func TestTraceReachesAtTheLink(t *testing.T) {
	payments := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "charged") }))
	defer payments.Close()
	schedule := sim.Schedule{Steps: []sim.Step{{At: 200 * time.Millisecond, For: 300 * time.Millisecond, Target: "payments",
		Fault: toxics.Latency{Delay: 20 * time.Millisecond}}}}

	for _, propagate := range []bool{true, false} {
		t.Run(fmt.Sprintf("propagates=%v", propagate), func(t *testing.T) {
			capture := &logs.Capture{}
			link := harness.NewLink(t, "payments", payments.Listener.Addr().String())
			link.OnTraceparent(capture.Traceparents("payments"))
			client := &http.Client{Timeout: 2 * time.Second}
			t.Cleanup(client.CloseIdleConnections)
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, "http://"+link.Addr()+"/charge", nil)
				if err == nil && propagate {
					req.Header.Set("traceparent", r.Header.Get("traceparent"))
				}
				resp, err := client.Do(req)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadGateway)
					return
				}
				resp.Body.Close()
			}))
			t.Cleanup(api.Close)
			pay := func(ctx context.Context, _ string) (string, error) {
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, api.URL+"/pay", nil)
				if err != nil {
					return "", err
				}
				req.Header.Set("traceparent", sim.Traceparent(ctx))
				resp, err := client.Do(req)
				if err != nil {
					return "", err
				}
				defer resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return "", fmt.Errorf("status %d", resp.StatusCode)
				}
				return "", nil
			}
			cfg := properties.Config{
				World: func(testing.TB) sim.World {
					return sim.World{
						Targets:  []sim.Target{link},
						Workload: sim.Workload{Driver: sim.OpenLoop{Rate: 40}, Kinds: []sim.OpKind{{Name: "pay", Do: pay}}},
					}
				},
				Settings:   sim.Settings{Cooldown: 300 * time.Millisecond},
				Invariants: []properties.Invariant{obscheck.TraceReaches{Logs: capture, Dependency: "payments"}},
			}
			it, err := properties.RunSchedule(t, cfg, schedule, 1)
			require.NoError(t, err)
			f := it.Findings[0]
			if propagate {
				require.Equal(t, properties.Held, f.Verdict, "%v", f.Err)
				return
			}
			require.Equal(t, properties.Broken, f.Verdict)
			require.ErrorContains(t, f.Err, "requests reached payments without a trace ID")
		})
	}
}
