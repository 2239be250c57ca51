package checkout

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/harness"
	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/properties/obscheck"
	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/sim/logs"
	"github.com/shakedown/shakedown/toxics"
)

// TestObservability checks that the resilient service's logs make every
// failure visible: each order that fails while Postgres is faulted leaves
// a WARN record carrying the trace ID of its request within a second. The
// service runs in the test's process, its logger wrapped by a
// logs.Capture. A variant that logs its failures without the request's
// context (UntracedFailures) drops the trace ID, and is caught.
func TestObservability(t *testing.T) {
	if testing.Short() {
		t.Skip("runs faults against a real Postgres for seconds; run it without -short")
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	env := harness.New(t, harness.WithLogger(quiet))
	db, cache := env.Postgres("db"), env.Redis("cache")
	// Stock up through a client of the test's own (see rig.Reset): the
	// service's Redis timeouts are for serving.
	admin := redis.NewClient(cache.Options())
	t.Cleanup(func() { _ = admin.Close() })
	require.NoError(t, admin.Set(t.Context(), stockKey("apple"), 1_000_000_000, 0).Err())
	// Postgres stops answering for a second and a half (orders fail once
	// their attempts time out and the breaker opens), or refuses every
	// connection (they fail at once).
	outage := func(f toxics.Fault) sim.Schedule {
		return sim.Schedule{Steps: []sim.Step{{At: 500 * time.Millisecond, For: 1500 * time.Millisecond, Target: "db", Fault: f}}}
	}

	t.Run("resilient", func(t *testing.T) {
		capture := &logs.Capture{}
		cfg := observed(t, env, db, cache, capture, false)
		for _, f := range []toxics.Fault{toxics.Blackhole{}, toxics.Down{}} {
			it, err := properties.RunSchedule(t, cfg, outage(f), env.Seed())
			require.NoError(t, err)
			require.Equal(t, properties.Held, it.Findings[0].Verdict, "%s", it.Findings)
			failed := 0
			for _, op := range it.History.Ops {
				if op.Outcome != sim.OK && op.Err != sim.ErrNotStarted.Error() {
					failed++
				}
			}
			require.NotZero(t, failed, "the outage must fail orders, or there is nothing to see")
			t.Logf("shakedown: db %s: %d of %d orders failed, each logged at WARN with its trace ID", f.Kind(), failed, len(it.History.Ops))
		}
	})

	t.Run("untraced", func(t *testing.T) {
		capture := &logs.Capture{}
		it, err := properties.RunSchedule(t, observed(t, env, db, cache, capture, true), outage(toxics.Blackhole{}), env.Seed())
		require.NoError(t, err)
		f := it.Findings[0]
		require.Equal(t, properties.Broken, f.Verdict, "a service that drops the trace ID must be caught:\n%s", it.Findings)
		require.ErrorContains(t, f.Err, "none at WARN or above") // only the request lines carry it
		t.Logf("shakedown: caught, as it should be:\n%s", strings.SplitN(f.Err.Error(), "\n", 2)[0])
		// The report shows each op's records on a click (the run kept
		// them, from capture's sampler): here, the request lines with
		// the trace ID, and no WARN.
		require.NotEmpty(t, it.History.OpLogs)
		sim.SaveReport(t, it.History, sim.ReportOptions{Title: "checkout, untraced failures", Failed: true,
			Verdict: "caught: " + f.Invariant})
	})
}

// observed is the check of the resilient service behind the Env's Links,
// its logs kept in capture, judged by obscheck.FailuresLogged. A fresh
// service serves each run.
func observed(t *testing.T, env *harness.Env, db *harness.Postgres, cache *harness.Redis, capture *logs.Capture, untraced bool) properties.Config {
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	var url string // the service of the current run; the workload reads it after World set it
	return properties.Config{
		Reset: env.Reset,
		World: func(t testing.TB) sim.World {
			svc, err := New(Config{Variant: Resilient, Postgres: db.PoolConfig(), Redis: cache.Options(), Seed: env.Seed(),
				Logger: slog.New(capture.Handler("checkout", nil)), UntracedFailures: untraced})
			require.NoError(t, err)
			require.NoError(t, svc.Migrate(t.Context()))
			ts := httptest.NewUnstartedServer(nil)
			ts.Config = svc.Server()
			ts.Start()
			t.Cleanup(func() { _ = svc.Close(); ts.Close() })
			url = ts.URL
			return sim.World{
				Targets: []sim.Target{db, cache},
				Workload: sim.Workload{Driver: sim.OpenLoop{Rate: 40}, Timeout: 3 * time.Second,
					Kinds: []sim.OpKind{{Name: "orders", Do: func(ctx context.Context, _ string) (string, error) {
						return "", placeOrder(ctx, client, url)
					}}}},
				Samplers: []sim.Sampler{capture.Sampler("checkout")},
			}
		},
		Settings:   sim.Settings{Cooldown: 2 * time.Second, Drain: 3 * time.Second},
		Invariants: []properties.Invariant{obscheck.FailuresLogged{Logs: capture, Service: "checkout", Within: time.Second}},
	}
}

// placeOrder POSTs one order with the op's traceparent.
func placeOrder(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/orders", strings.NewReader(`{"item":"apple","qty":1}`))
	if err != nil {
		return err
	}
	req.Header.Set(TraceParent, sim.Traceparent(ctx))
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("POST /orders: %d %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return nil
}
