package properties_test

import (
	"context"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/failsafe-go/failsafe-go/timeout"
	"github.com/sony/gobreaker/v2"
	"github.com/stretchr/testify/require"

	example "github.com/shakedown/shakedown/examples/breaker"
	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/properties/breaker"
	"github.com/shakedown/shakedown/properties/breaker/failsafecheck"
	"github.com/shakedown/shakedown/properties/breaker/gobreakercheck"
	"github.com/shakedown/shakedown/toxics"
)

// TestShrunkExamplesAreOneMinimal is the figure of issue 12's "shrunk
// results that are 1-minimal across the repository's own failing
// examples": the misconfigured breakers of properties/breaker's tests
// (TestExploreCatches, TestMinimizeSixtySecondBreaker) and the lost
// timeout and wrong expectation of examples/breaker, each explored and
// shrunk as its test does; then every neighbour of the shrunk schedule
// (each step removed, each two steps on one target merged, each kind made
// milder, each value moved one grain milder: properties' neighbours) is
// run, and none may break the spec. The breaker checks run in virtual
// time on a fixed seed per case, so a verdict is the same on every run.
// (The checkout and quickstart examples, on real servers, are left out:
// their shrinks take minutes; TestShrunkIsOneMinimal covers Check's own
// pass.)
func TestShrunkExamplesAreOneMinimal(t *testing.T) {
	if testing.Short() {
		t.Skip("explores and shrinks nine configurations")
	}
	ms := time.Millisecond
	spec := breaker.Spec{FailureThreshold: 3, OpenFor: 500 * ms, CallTimeout: 200 * ms}
	with := func(f func(*breaker.Spec)) breaker.Spec { s := spec; f(&s); return s }
	gob := func(maxRequests uint32, openFor, callTimeout time.Duration) func() breaker.Breaker {
		return func() breaker.Breaker {
			return gobreakercheck.Breaker(gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
				MaxRequests: maxRequests, Timeout: openFor,
				ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 3 },
			}), callTimeout)
		}
	}
	fs := func(threshold, successes uint) func() breaker.Breaker {
		return func() breaker.Breaker {
			cb := circuitbreaker.NewBuilder[any]().WithFailureThreshold(threshold).WithSuccessThreshold(successes).WithDelay(500 * ms).Build()
			return failsafecheck.Breaker(cb, failsafe.With[any](cb, timeout.New[any](200*ms)))
		}
	}
	guard := func(s example.Settings) func() breaker.Breaker {
		return func() breaker.Breaker {
			g := example.NewGuard(s)
			return breaker.Func(g.Call, func() breaker.State {
				switch g.State() {
				case "closed":
					return breaker.Closed
				case "half-open":
					return breaker.HalfOpen
				case "open":
					return breaker.Open
				}
				return breaker.Unknown
			})
		}
	}
	promises := func(s example.Settings) breaker.Spec {
		return breaker.Spec{FailureThreshold: int(s.Failures), OpenFor: s.OpenFor, HalfOpenProbes: int(s.Probes),
			SuccessesToClose: int(s.Probes), CallTimeout: s.CallTimeout}
	}
	lost := example.Defaults
	lost.CallTimeout = 0
	wrong := promises(example.Defaults)
	wrong.FailureThreshold = 3

	tests := []struct {
		name  string
		new   func() breaker.Breaker
		spec  breaker.Spec
		other func(*breaker.Config) // ShrinkTime as the example's test has it
	}{
		{"gobreaker without a call timeout", gob(1, 500*ms, 0), spec, nil},
		{"gobreaker open for 1s, expected 500ms", gob(1, time.Second, 200*ms), spec, nil},
		{"gobreaker MaxRequests 5, expected 2", gob(5, 500*ms, 200*ms), with(func(s *breaker.Spec) { s.HalfOpenProbes, s.SuccessesToClose = 2, 2 }), nil},
		{"failsafe opening after 5, expected 3", fs(5, 1), with(func(s *breaker.Spec) { s.ProbesInFlight = true }), nil},
		{"failsafe counting probes in flight", fs(3, 2), with(func(s *breaker.Spec) { s.HalfOpenProbes, s.SuccessesToClose = 2, 2 }), nil},
		{"failsafe retrying inside the breaker", func() breaker.Breaker {
			cb := circuitbreaker.NewBuilder[any]().WithFailureThreshold(3).WithSuccessThreshold(1).WithDelay(500 * ms).Build()
			rp := retrypolicy.NewBuilder[any]().WithMaxRetries(2).Build()
			return failsafecheck.Breaker(cb, failsafe.With[any](timeout.New[any](200*ms), cb, rp))
		}, with(func(s *breaker.Spec) { s.ProbesInFlight = true }), nil},
		{"a breaker that never opens", func() breaker.Breaker {
			return breaker.Func(func(ctx context.Context, call func(context.Context) error) error {
				ctx, cancel := context.WithTimeout(ctx, 200*ms)
				defer cancel()
				return call(ctx)
			}, nil)
		}, spec, nil},
		{"gobreaker open 60s, expected 58s", gob(1, time.Minute, 200*ms), breaker.Spec{FailureThreshold: 3, OpenFor: 58 * time.Second, CallTimeout: 200 * ms},
			func(c *breaker.Config) { c.ShrinkTime = 0 }},
		{"examples/breaker: a Guard without a timeout", guard(lost), promises(example.Defaults), func(c *breaker.Config) { c.ShrinkTime = 3 * time.Second }},
		{"examples/breaker: a wrong expectation", guard(example.Defaults), wrong, func(c *breaker.Config) { c.ShrinkTime = 3 * time.Second }},
	}
	minimal := 0
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A seed of its own per case, as TestExploreCatches has: on
			// rapid's seed of the day, a bug caught within 300 schedules
			// on most seeds fails this test on the others (the failsafe
			// breaker counting probes in flight, under these bounds: on
			// 6 of seeds 1 to 400), which says nothing about the change
			// under test. How often each bug is caught is measured
			// there, with -breaker.anyseed.
			rapidSeed(t, 1+i)
			cfg := breaker.Config{New: tt.new, Spec: tt.spec, Iterations: 300, ShrinkTime: 2 * time.Second}
			if tt.other != nil {
				tt.other(&cfg)
			}
			// The bounds Check defaults to, written out: Neighbours needs
			// them as the shrink used them.
			h := max(time.Second, 3*cfg.Spec.OpenFor+cfg.Spec.CallTimeout)
			res := 10 * ms
			cfg.Bounds = properties.Bounds{
				Targets:    []properties.TargetKinds{{Name: breaker.TargetName, Kinds: []toxics.Kind{toxics.KindLatency, toxics.KindBlackhole, toxics.KindReset, toxics.KindDown}}},
				Resolution: res, MaxSteps: 4, Horizon: (h + res - 1) / res * res,
			}
			r, err := breaker.Explore(t, cfg)
			require.NoError(t, err)
			require.NotNil(t, r.Failure, "not caught in %d schedules: %s", r.Iterations, r.Coverage)
			s := r.Failure.Schedule
			ns := properties.Neighbours(cfg.Bounds, s)
			for _, n := range ns {
				it, err := breaker.RunSchedule(t, cfg, n)
				require.NoError(t, err)
				require.False(t, it.Broken(), "not 1-minimal: the neighbour\n%s\nof the shrunk\n%s\nbreaks the spec too", n, s)
			}
			minimal++
			t.Logf("shrunk to\n%s\nnone of its %d neighbours breaks the spec", s, len(ns))
		})
	}
	t.Logf("%d of %d shrunk results are 1-minimal (with merges)", minimal, len(tests))
}
