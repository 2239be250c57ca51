package properties_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/sim"
)

// TestDocExample is the example that opens the package doc, as it is
// written there: it must compile, run and hold.
func TestDocExample(t *testing.T) {
	properties.Check(t, properties.Config{
		Simulate: true, // virtual time: every run in a testing/synctest bubble of its own
		World: func(t testing.TB) sim.World {
			n := sim.NewNetwork(1) // in-memory network, faults on its endpoints
			t.Cleanup(func() { n.Close() })
			api, err := n.FakeHTTP("api", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			if err != nil {
				t.Fatal(err)
			}
			// The client under test: a timeout, and the simulated network.
			client := &http.Client{Timeout: 200 * time.Millisecond, Transport: &http.Transport{DialContext: n.Dial}}
			t.Cleanup(client.CloseIdleConnections)
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
			return sim.World{
				Targets:  n.Targets(),
				Workload: sim.Workload{Driver: sim.OpenLoop{Rate: 50}, Kinds: []sim.OpKind{{Name: "get", Do: get}}},
			}
		},
		Invariants: []properties.Invariant{
			properties.MaxLatency{Max: 300 * time.Millisecond},  // the timeout, and a margin
			properties.Recovery{Within: 500 * time.Millisecond}, // working again 500ms after the last heal
		},
	})
}
