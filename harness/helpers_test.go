package harness

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/toxics"
)

// backends lists the backends a Postgres or Redis test runs on. Each
// subtest skips by itself (with the reason) when its backend is missing.
var backends = []Backend{Docker, Process}

// forBackends runs f once per backend as a subtest.
func forBackends(t *testing.T, f func(t *testing.T, b Backend)) {
	for _, b := range backends {
		t.Run(b.String(), func(t *testing.T) { f(t, b) })
	}
}

// testserverImage is the image of harness/internal/testserver.
func testserverImage() string {
	if s := os.Getenv("SHAKEDOWN_TESTSERVER_IMAGE"); s != "" {
		return s
	}
	return "shakedown.local/testserver:latest"
}

// ctxFor returns a context that ends with the test (or after d).
func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// fakeTB collects what an Env does with its testing.TB: cleanups run when
// the caller says, and Fatalf/Skipf end the calling goroutine's work with
// a panic the caller recovers, so tests can check the messages.
type fakeTB struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
	logs     []string
}

type tbStop struct{ kind, msg string }

func (f *fakeTB) Helper() {}
func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	panic(tbStop{"fatal", fmt.Sprintf(format, args...)})
}
func (f *fakeTB) Skipf(format string, args ...any) {
	panic(tbStop{"skip", fmt.Sprintf(format, args...)})
}
func (f *fakeTB) Errorf(format string, args ...any) {
	f.TB.Helper()
	f.TB.Errorf(format, args...)
}
func (f *fakeTB) Log(args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs = append(f.logs, fmt.Sprint(args...))
}
func (f *fakeTB) Logf(format string, args ...any) { f.Log(fmt.Sprintf(format, args...)) }

// teardown runs the collected cleanups in reverse order.
func (f *fakeTB) teardown() {
	f.mu.Lock()
	cs := f.cleanups
	f.cleanups = nil
	f.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
}

// catch runs fn and returns the Fatalf or Skipf it stopped with, if any.
func catch(fn func()) (stop *tbStop) {
	defer func() {
		if r := recover(); r != nil {
			s, ok := r.(tbStop)
			if !ok {
				panic(r)
			}
			stop = &s
		}
	}()
	fn()
	return nil
}

// healOnFailure resets e when the (sub)test fails midway, so one failure
// does not leave a fault in force for the next case.
func healOnFailure(t *testing.T, e *Env) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := e.Reset(ctx); err != nil {
			t.Errorf("reset after failure: %v", err)
		}
	})
}

// checkLinkFaults applies each of linkCases to dep and checks what a
// client sees through probe, and that it works again after Reset.
func checkLinkFaults(t *testing.T, ctx context.Context, e *Env, dep Dependency, probe func(ctx context.Context, timeout time.Duration) error) {
	for _, c := range linkCases {
		t.Run(string(c.fault.Kind()), func(t *testing.T) {
			healOnFailure(t, e)
			_, err := dep.Apply(ctx, c.fault)
			require.NoError(t, err)
			start := time.Now()
			timeout := time.Second // generous for a loopback connect and a request
			if !c.fails {
				timeout = 10 * time.Second
			}
			err = probe(ctx, timeout)
			if c.fails {
				require.Error(t, err, "a client must see %v", c.fault)
			} else {
				require.NoError(t, err, "a client gets through %v", c.fault)
			}
			if l, ok := c.fault.(toxics.Latency); ok {
				// Lower bound only: a connect and a request take several round trips.
				require.GreaterOrEqual(t, time.Since(start), l.Delay)
			}
			require.NoError(t, e.Reset(ctx))
			require.NoError(t, probe(ctx, 5*time.Second), "working again after Reset")
		})
	}
}
