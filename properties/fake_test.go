package properties_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// dep is an in-process stand-in for a dependency: a sim.Target whose
// faults change how its calls behave. A blackhole loses the calls made
// while it holds (they wait for their context to end), down refuses them
// at once, a reset fails them with ECONNRESET, latency delays them. It
// uses only channels and timers, so it runs in virtual time inside
// testing/synctest.
type dep struct {
	name  string
	kinds []toxics.Kind

	mu      sync.Mutex
	hole    int // blackholes holding
	down    int
	reset   int
	latency time.Duration

	calls  atomic.Int64
	resets *atomic.Int64
}

func newDep(name string, kinds ...toxics.Kind) *dep {
	return &dep{name: name, kinds: kinds, resets: new(atomic.Int64)}
}

func (d *dep) Name() string { return d.name }
func (d *dep) Supports(k toxics.Kind) bool {
	for _, x := range d.kinds {
		if x == k {
			return true
		}
	}
	return false
}

func (d *dep) Apply(_ context.Context, f toxics.Fault) (func(context.Context) error, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch f := f.(type) {
	case toxics.Blackhole:
		d.hole++
		return func(context.Context) error { d.mu.Lock(); d.hole--; d.mu.Unlock(); return nil }, nil
	case toxics.Down:
		d.down++
		return func(context.Context) error { d.mu.Lock(); d.down--; d.mu.Unlock(); return nil }, nil
	case toxics.Reset:
		d.reset++
		return func(context.Context) error { d.mu.Lock(); d.reset--; d.mu.Unlock(); return nil }, nil
	case toxics.Latency:
		d.latency += f.Delay
		return func(context.Context) error { d.mu.Lock(); d.latency -= f.Delay; d.mu.Unlock(); return nil }, nil
	}
	return nil, fmt.Errorf("dep %s: fault %s not supported", d.name, f)
}

// Reset is the Config.Reset of the real-time tests: nothing should be
// left applied.
func (d *dep) Reset(context.Context) error {
	d.resets.Add(1)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.hole != 0 || d.down != 0 || d.reset != 0 || d.latency != 0 {
		return fmt.Errorf("dep %s: faults still applied at reset", d.name)
	}
	return nil
}

// call is one call to the dependency.
func (d *dep) call(ctx context.Context) error {
	d.calls.Add(1)
	d.mu.Lock()
	hole, down, reset, latency := d.hole, d.down, d.reset, d.latency
	d.mu.Unlock()
	if down > 0 {
		return fmt.Errorf("dial %s: %w", d.name, syscall.ECONNREFUSED)
	}
	if reset > 0 {
		return fmt.Errorf("read %s: %w", d.name, syscall.ECONNRESET)
	}
	if hole > 0 {
		// The request is lost: the client waits until its timeout (or the
		// end of the run) even if the blackhole heals meanwhile.
		<-ctx.Done()
		return ctx.Err()
	}
	if latency > 0 {
		t := time.NewTimer(latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// fake builds a fresh dep per simulated run and counts the resets of
// them all.
type fake struct {
	kinds   []toxics.Kind
	timeout time.Duration
	resets  atomic.Int64
}

func newFake(timeout time.Duration, kinds ...toxics.Kind) *fake {
	return &fake{kinds: kinds, timeout: timeout}
}

func (f *fake) world(testing.TB) sim.World {
	d := newDep("db", f.kinds...)
	d.resets = &f.resets
	return sim.World{Targets: []sim.Target{d}, Workload: workload(d, f.timeout)}
}

// reset is the Config.Reset of the simulated tests: it counts the runs.
func (f *fake) reset(context.Context) error {
	f.resets.Add(1)
	return nil
}

// workload calls the dependency with the given client timeout (0: none,
// but the run's context still ends every call).
func workload(d *dep, timeout time.Duration) sim.Workload {
	return sim.Workload{
		Driver:  sim.ClosedLoop{Workers: 2, Think: 10 * time.Millisecond},
		Timeout: timeout,
		Kinds: []sim.OpKind{{Name: "get", Do: func(ctx context.Context, _ string) (string, error) {
			return "", d.call(ctx)
		}}},
	}
}
