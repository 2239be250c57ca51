package properties_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/failsafe-go/failsafe-go/timeout"
	"github.com/sony/gobreaker/v2"

	"github.com/shakedown/shakedown/harness"
	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// A spec is the expectation, in data; its String is the expectation in
// words, as failures print it.
func ExampleBreakerSpec() {
	spec := properties.BreakerSpec{
		FailureThreshold: 5,
		OpenFor:          2 * time.Second,
		HalfOpenProbes:   2,
		SuccessesToClose: 2,
		CallTimeout:      300 * time.Millisecond,
	}
	fmt.Println(spec.Validate())
	fmt.Println(spec)
	// Output:
	// <nil>
	// opens after 5 consecutive failures, stays open 2s, at most 2 probes per half-open spell, closes after 2 successes, calls end within 300ms
}

// CheckBreaker verifies a gobreaker configuration in virtual time: 500
// schedules of outages of a fake dependency, each a few seconds long, in
// about a second. gobreaker's MaxRequests is both the probes let through
// and the successes that close it; its ReadyToTrip here opens after 5
// consecutive failures.
func ExampleCheckBreaker() {
	test := func(t *testing.T) {
		properties.CheckBreaker(t, properties.BreakerConfig{
			New: func() properties.Breaker {
				cb := gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
					MaxRequests: 2,
					Timeout:     2 * time.Second,
					ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 5 },
				})
				return properties.GoBreaker(cb, 300*time.Millisecond) // each call bounded to 300ms
			},
			Spec: properties.BreakerSpec{FailureThreshold: 5, OpenFor: 2 * time.Second, HalfOpenProbes: 2,
				SuccessesToClose: 2, CallTimeout: 300 * time.Millisecond},
		})
	}
	_ = test // run by go test as func TestBreaker(t *testing.T)
}

// ExploreBreaker returns what it found, so a suite can assert that a
// misconfiguration is caught and print the counterexample. Here the
// failsafe-go executor puts the retry policy inside the breaker, so the
// breaker counts one failure per three calls that reach the dependency.
func ExampleExploreBreaker() {
	test := func(t *testing.T) {
		res, err := properties.ExploreBreaker(t, properties.BreakerConfig{
			New: func() properties.Breaker {
				cb := circuitbreaker.NewBuilder[any]().WithFailureThreshold(3).WithSuccessThreshold(1).
					WithDelay(500 * time.Millisecond).Build()
				retry := retrypolicy.NewBuilder[any]().WithMaxRetries(2).Build()
				return properties.FailsafeBreaker(cb, failsafe.With[any](timeout.New[any](time.Second), cb, retry))
			},
			Spec: properties.BreakerSpec{FailureThreshold: 3, OpenFor: 500 * time.Millisecond, CallTimeout: time.Second,
				ProbesInFlight: true},
		})
		if err != nil || !res.Failed {
			t.Fatalf("retries inside the breaker were not caught: %v", err)
		}
		t.Log(res.Failure.Counterexample())
	}
	_ = test
}

// Any breaker fits through BreakerFunc: an execute function that calls
// the dependency (or not) and, if the breaker tells, its state.
func ExampleBreakerFunc() {
	var open bool // a breaker that opens for good after one failure
	b := properties.BreakerFunc(func(ctx context.Context, call func(context.Context) error) error {
		if open {
			return fmt.Errorf("open")
		}
		err := call(ctx)
		open = err != nil
		return err
	}, nil)
	fmt.Println(b.Execute(context.Background(), func(context.Context) error { return fmt.Errorf("refused") }))
	fmt.Println(b.Execute(context.Background(), func(context.Context) error { return nil }), b.State())
	// Output:
	// refused
	// open unknown
}

type namedTarget string

func (n namedTarget) Name() string              { return string(n) }
func (namedTarget) Supports(k toxics.Kind) bool { return k.IsLink() }
func (namedTarget) Apply(context.Context, toxics.Fault) (func(context.Context) error, error) {
	return func(context.Context) error { return nil }, nil
}

// A schedule found against sim's endpoints, named by the address clients
// dial, aimed at the harness dependencies of the real world.
func ExampleRetarget() {
	found := sim.Schedule{Steps: []sim.Step{
		{At: time.Second, For: 2 * time.Second, Target: "db:5432", Fault: toxics.Blackhole{}},
		{At: 4 * time.Second, For: time.Second, Target: "kv", Fault: toxics.Down{}},
	}}
	real := []sim.Target{namedTarget("db"), namedTarget("cache")}
	s, err := properties.Retarget(found, real, map[string]string{"kv": "cache"})
	fmt.Println(err)
	fmt.Println(s)
	// Output:
	// <nil>
	// 0: +1s for 2s db blackhole()
	// 1: +4s for 1s cache down()
}

// ReplayOn takes a schedule a simulated check saved to the real world in
// one call: the same workload through a real client, the same invariants,
// a harness Link (here in front of a server the test started) instead of
// the fake.
func ExampleReplayOn() {
	test := func(t *testing.T) {
		link := harness.NewLink(t, "echo", echoServer(t)) // in front of a server the test started
		var d net.Dialer
		it, err := properties.ReplayOn(t, nil, properties.Config{
			Targets:    []sim.Target{link},
			Workload:   echoLoad(d.DialContext, link.Addr(), 200*time.Millisecond),
			Invariants: []properties.Invariant{properties.MaxLatency{Max: 300 * time.Millisecond}},
		}, "testdata/shakedown/TestEchoSimulated/schedule.json", nil)
		if err != nil {
			t.Fatal(err)
		}
		if it.Findings.Broken() {
			t.Errorf("fails for real too:\n%s", it.Findings)
		}
	}
	_ = test
}
