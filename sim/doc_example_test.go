package sim_test

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shakedown/shakedown/sim"
)

// TestDocExample is the example that opens the package doc, as it is
// written there: a 2s blackhole of a fake HTTP server, in virtual time,
// against a client with a 200ms timeout.
func TestDocExample(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := sim.NewNetwork(1) // an in-memory network; faults act on its endpoints
		defer n.Close()
		api, err := n.FakeHTTP("api", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		if err != nil {
			t.Fatal(err)
		}
		client := &http.Client{Timeout: 200 * time.Millisecond, Transport: &http.Transport{DialContext: n.Dial}}
		defer client.CloseIdleConnections()
		get := func(ctx context.Context, _ string) (string, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, api.URL(), nil)
			if err != nil {
				return "", err
			}
			resp, err := client.Do(req)
			if err != nil {
				return "", err
			}
			return "", resp.Body.Close()
		}
		sched, err := sim.ParseSchedule([]byte(`{"steps":[{"at":"1s","for":"2s","target":"api","fault":{"kind":"blackhole"}}]}`))
		if err != nil {
			t.Fatal(err)
		}
		h, err := sim.Run(t.Context(), sim.Plan{
			World: sim.World{
				Targets:  n.Targets(),
				Workload: sim.Workload{Driver: sim.OpenLoop{Rate: 50}, Kinds: []sim.OpKind{{Name: "get", Do: get}}},
			},
			Schedule: sched,
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range h.Windows() { // before the fault, during it, after the heal
			t.Logf("%s: %s", w.Label, h.Stats(w, ""))
		}
		// The check: the timeout bounds every call, even in the blackhole.
		if s := h.Stats(h.Windows()[1], ""); s.Max > 250*time.Millisecond {
			t.Errorf("a call took %v during the blackhole", s.Max)
		}
	})
}
