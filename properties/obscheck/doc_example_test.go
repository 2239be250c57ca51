package obscheck_test

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/properties/obscheck"
	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/sim/logs"
	"github.com/shakedown/shakedown/toxics"
)

// TestDocExample is the example that opens the package doc, as it is
// there.
func TestDocExample(t *testing.T) {
	capture := &logs.Capture{} // every record, by trace ID
	properties.Check(t, properties.Config{
		Simulate: true,
		World: func(t testing.TB) sim.World {
			capture.Reset() // every bubble's clock starts at the same instant
			n := sim.NewNetwork(1)
			t.Cleanup(func() { n.Close() })
			db, err := n.FakeHTTP("db", capture.Middleware("db", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
			if err != nil {
				t.Fatal(err)
			}
			client := &http.Client{Timeout: 200 * time.Millisecond, Transport: &http.Transport{DialContext: n.Dial}}
			t.Cleanup(client.CloseIdleConnections)
			log := slog.New(capture.Handler("api", nil)) // the code under test logs through it
			get := func(ctx context.Context, _ string) (string, error) {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, db.URL(), nil)
				if err != nil {
					return "", err
				}
				req.Header.Set("traceparent", sim.Traceparent(ctx)) // the trace goes on to db
				resp, err := client.Do(req)
				if err != nil {
					log.WarnContext(ctx, "db call failed", "err", err, "traceparent", sim.Traceparent(ctx))
					return "", err
				}
				return "", resp.Body.Close()
			}
			return sim.World{
				Targets:  n.Targets(),
				Workload: sim.Workload{Driver: sim.OpenLoop{Rate: 50}, Kinds: []sim.OpKind{{Name: "get", Do: get}}},
				Samplers: []sim.Sampler{capture.Sampler("api")}, // the log rate, in the report
			}
		},
		// Corruption too: an op it overlapped is not judged by
		// TraceReaches, as it may have altered the traceparent itself.
		Bounds: properties.Bounds{Targets: []properties.TargetKinds{{Name: "db", Kinds: []toxics.Kind{
			toxics.KindLatency, toxics.KindBandwidth, toxics.KindTimeout, toxics.KindReset,
			toxics.KindDown, toxics.KindBlackhole, toxics.KindPause, toxics.KindCrash, toxics.KindCorrupt,
		}}}},
		Invariants: []properties.Invariant{
			obscheck.FailuresLogged{Logs: capture, Within: time.Second}, // every failure visible, by its trace ID
			obscheck.TraceReaches{Logs: capture, Dependency: "db"},      // every success traced into db
		},
	})
}
