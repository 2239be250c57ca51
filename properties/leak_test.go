package properties_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/harness"
	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// thisPackage is the import path of these tests: the "service" below.
const thisPackage = "github.com/shakedown/shakedown/properties_test"

// httpService is a service under test calling an HTTP dependency through
// a Link, with keep-alive connections; a leaky one also starts a goroutine
// per call that never ends (until the test does).
type httpService struct {
	client *http.Client
	url    string
	leaky  bool
	stop   chan struct{}
	wg     sync.WaitGroup
}

func (s *httpService) call(ctx context.Context, _ string) (string, error) {
	if s.leaky {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); <-s.stop }()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return "", err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return "", err
}

// leakRun runs 1.2 s of HTTP calls through a Link with a latency fault on
// it, sampling the service's goroutines both ways (every package but the
// framework's, and this package alone) and the whole process's.
func leakRun(t *testing.T, leaky bool) *sim.History {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(api.Close)
	link := harness.NewLink(t, "api", api.Listener.Addr().String())
	svc := &httpService{client: &http.Client{Timeout: time.Second, Transport: &http.Transport{}}, url: "http://" + link.Addr(), leaky: leaky, stop: make(chan struct{})}
	t.Cleanup(func() { close(svc.stop); svc.wg.Wait(); svc.client.CloseIdleConnections() })

	h, err := sim.Run(t.Context(), sim.Plan{
		World: sim.World{
			Targets: []sim.Target{link},
			Workload: sim.Workload{Driver: sim.ClosedLoop{Workers: 4, Think: 20 * time.Millisecond}, Timeout: time.Second,
				Kinds: []sim.OpKind{{Name: "get", Do: svc.call}}},
			Samplers: []sim.Sampler{
				properties.NoGoroutineLeak{}.Sampler(),
				properties.NoGoroutineLeak{Packages: []string{thisPackage}, Counter: "own_goroutines"}.Sampler(),
				sim.Goroutines(),
			},
		},
		Settings: sim.Settings{Cooldown: 300 * time.Millisecond, SampleEvery: 50 * time.Millisecond},
		Schedule: sim.Schedule{Steps: []sim.Step{{At: 200 * time.Millisecond, For: 500 * time.Millisecond, Target: "api",
			Fault: toxics.Latency{Delay: 30 * time.Millisecond}}}},
	})
	require.NoError(t, err)
	return h
}

// A service that leaks nothing is not flagged while the Link's and the
// test server's keep-alive goroutines run (the process's count grows),
// and one that leaks a goroutine per call is, both ways of telling the
// service's goroutines apart.
func TestNoGoroutineLeakOnARealLink(t *testing.T) {
	before := runtime.NumGoroutine()
	clean := leakRun(t, false)
	require.Greater(t, lastSample(t, clean, "goroutines"), float64(before), "the Link and keep-alives run: the process count alone would flag the service")
	for _, inv := range []properties.NoGoroutineLeak{{}, {Packages: []string{thisPackage}, Counter: "own_goroutines"}} {
		require.NoError(t, inv.Check(clean), "%s", inv.Name())
	}

	leaky := leakRun(t, true)
	for _, inv := range []properties.NoGoroutineLeak{{Slack: 5}, {Packages: []string{thisPackage}, Counter: "own_goroutines", Slack: 5}} {
		err := inv.Check(leaky)
		require.Equal(t, properties.Broken, properties.VerdictOf(err), "%s: %v", inv.Name(), err)
		require.ErrorContains(t, err, "at the end of the run")
	}
}

func lastSample(t *testing.T, h *sim.History, name string) float64 {
	t.Helper()
	v, ok := 0.0, false
	for _, s := range h.Samples {
		if s.Name == name {
			v, ok = s.Value, true
		}
	}
	require.True(t, ok, "no %q samples", name)
	return v
}
