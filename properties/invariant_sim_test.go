package properties_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

var errOpen = errors.New("breaker open")

// consecutive is a circuit breaker that opens after threshold failures in
// a row and stays open for open, then lets one probe through.
type consecutive struct {
	threshold int
	open      time.Duration

	mu       sync.Mutex
	failures int
	until    time.Time
}

func (b *consecutive) call(ctx context.Context, f func(context.Context) error) error {
	b.mu.Lock()
	if time.Now().Before(b.until) {
		b.mu.Unlock()
		return errOpen
	}
	b.mu.Unlock()
	err := f(ctx)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err == nil {
		b.failures = 0
		return nil
	}
	if b.failures++; b.failures >= b.threshold {
		b.until = time.Now().Add(b.open)
	}
	return err
}

// simulate runs four workers calling db (a dep taking kind) through do,
// each op bounded by 200 ms, with one fault step on db and a cooldown of
// 500 ms, in virtual time; samplers read db.
func simulate(t *testing.T, kind toxics.Kind, think time.Duration, step sim.Step,
	do func(d *dep) func(ctx context.Context) error, samplers func(d *dep) []sim.Sampler) *sim.History {
	var h *sim.History
	synctest.Test(t, func(t *testing.T) {
		d := newDep("db", kind)
		call := do(d)
		w := sim.World{
			Targets: []sim.Target{d},
			Workload: sim.Workload{
				Driver:  sim.ClosedLoop{Workers: 4, Think: think},
				Timeout: 200 * time.Millisecond,
				Kinds:   []sim.OpKind{{Name: "get", Do: func(ctx context.Context, _ string) (string, error) { return "", call(ctx) }}},
			},
		}
		if samplers != nil {
			w.Samplers = samplers(d)
		}
		step.Target = "db"
		var err error
		h, err = sim.Run(t.Context(), sim.Plan{World: w, Settings: sim.Settings{Cooldown: 500 * time.Millisecond},
			Schedule: sim.Schedule{Steps: []sim.Step{step}}, Seed: 1})
		require.NoError(t, err)
	})
	return h
}

// breakerRun runs calls through a breaker of the given threshold while db
// is blackholed from 1 s for 2 s.
func breakerRun(t *testing.T, threshold int) *sim.History {
	return simulate(t, toxics.KindBlackhole, 10*time.Millisecond, sim.Step{At: time.Second, For: 2 * time.Second, Fault: toxics.Blackhole{}},
		func(d *dep) func(context.Context) error {
			b := &consecutive{threshold: threshold, open: 5 * time.Second}
			return func(ctx context.Context) error { return b.call(ctx, d.call) }
		}, nil)
}

// A breaker that opens at its threshold of 5 holds FailFast with After 5
// or a grace; one that opens only after 1,000 failures (never, in a 2 s
// outage) breaks it either way. Without a grace both break.
func TestFailFastSimulatedBreakers(t *testing.T) {
	good, lax := breakerRun(t, 5), breakerRun(t, 1000)
	after := properties.FailFast{Within: 50 * time.Millisecond, After: 5}
	grace := properties.FailFast{Within: 50 * time.Millisecond, Grace: 500 * time.Millisecond}
	bare := properties.FailFast{Within: 50 * time.Millisecond}
	for _, c := range []struct {
		inv     properties.FailFast
		breaker string
		h       *sim.History
		want    properties.Verdict
	}{
		{after, "opens at 5", good, properties.Held},
		{grace, "opens at 5", good, properties.Held},
		{bare, "opens at 5", good, properties.Broken},
		{after, "opens at 1000", lax, properties.Broken},
		{grace, "opens at 1000", lax, properties.Broken},
		{bare, "opens at 1000", lax, properties.Broken},
	} {
		err := c.inv.Check(c.h)
		require.Equal(t, c.want, properties.VerdictOf(err), "%s, breaker that %s: %v", c.inv.Name(), c.breaker, err)
	}
}

// retryRun runs calls that make up to attempts attempts each while db is
// down from 4 s for 800 ms of a 5.3 s run, counting the calls that reach
// db.
func retryRun(t *testing.T, attempts int) *sim.History {
	return simulate(t, toxics.KindDown, 50*time.Millisecond, sim.Step{At: 4 * time.Second, For: 800 * time.Millisecond, Fault: toxics.Down{}},
		func(d *dep) func(context.Context) error {
			return func(ctx context.Context) error {
				var err error
				for range attempts {
					if err = d.call(ctx); err == nil {
						return nil
					}
				}
				return err
			}
		},
		func(d *dep) []sim.Sampler { return []sim.Sampler{sim.Counter("db.calls", d.calls.Load)} })
}

// A retry storm of 11 attempts per call during an 800 ms outage hides
// under a ratio of 3 over the whole run, and is caught during the fault,
// as a ratio and as a rate; a client that tries once holds both.
func TestAmplificationSimulatedRetryStorm(t *testing.T) {
	storm, once := retryRun(t, 11), retryRun(t, 1)
	overall := properties.Amplification{Counter: "db.calls", K: 3}
	during := properties.Amplification{Counter: "db.calls", K: 3, Window: sim.During}
	rate := properties.Amplification{Counter: "db.calls", Rate: 100, Window: sim.During, Target: "db"}
	require.NoError(t, overall.Check(storm), "the whole run dilutes the storm")
	for _, inv := range []properties.Amplification{during, rate} {
		err := inv.Check(storm)
		require.Equal(t, properties.Broken, properties.VerdictOf(err), "%s: %v", inv.Name(), err)
		require.NoError(t, inv.Check(once), "%s", inv.Name())
	}
}
