package breaker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/failsafe-go/failsafe-go/timeout"
	"github.com/sony/gobreaker/v2"

	"github.com/shakedown/shakedown/properties/breaker"
	"github.com/shakedown/shakedown/properties/breaker/failsafecheck"
	"github.com/shakedown/shakedown/properties/breaker/gobreakercheck"
)

// A spec is the expectation, in data; its String is the expectation in
// words, as failures print it.
func ExampleSpec() {
	spec := breaker.Spec{
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

// Check verifies a gobreaker configuration in virtual time: 500
// schedules of outages of a fake dependency, each a few seconds long, in
// about a second. gobreaker's MaxRequests is both the probes let through
// and the successes that close it; its ReadyToTrip here opens after 5
// consecutive failures.
func ExampleCheck() {
	test := func(t *testing.T) {
		breaker.Check(t, breaker.Config{
			New: func() breaker.Breaker {
				cb := gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
					MaxRequests: 2,
					Timeout:     2 * time.Second,
					ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 5 },
				})
				return gobreakercheck.Breaker(cb, 300*time.Millisecond) // each call bounded to 300ms
			},
			Spec: breaker.Spec{FailureThreshold: 5, OpenFor: 2 * time.Second, HalfOpenProbes: 2,
				SuccessesToClose: 2, CallTimeout: 300 * time.Millisecond},
		})
	}
	_ = test // run by go test as func TestBreaker(t *testing.T)
}

// Explore returns what it found, so a suite can assert that a
// misconfiguration is caught and print the counterexample. Here the
// failsafe-go executor puts the retry policy inside the breaker, so the
// breaker counts one failure per three calls that reach the dependency.
func ExampleExplore() {
	test := func(t *testing.T) {
		res, err := breaker.Explore(t, breaker.Config{
			New: func() breaker.Breaker {
				cb := circuitbreaker.NewBuilder[any]().WithFailureThreshold(3).WithSuccessThreshold(1).
					WithDelay(500 * time.Millisecond).Build()
				retry := retrypolicy.NewBuilder[any]().WithMaxRetries(2).Build()
				return failsafecheck.Breaker(cb, failsafe.With[any](timeout.New[any](time.Second), cb, retry))
			},
			Spec: breaker.Spec{FailureThreshold: 3, OpenFor: 500 * time.Millisecond, CallTimeout: time.Second,
				ProbesInFlight: true},
		})
		if err != nil || res.Failure == nil {
			t.Fatalf("retries inside the breaker were not caught: %v", err)
		}
		t.Log(res.Failure.Counterexample())
	}
	_ = test
}

// Any breaker fits through Func: an execute function that calls
// the dependency (or not) and, if the breaker tells, its state.
func ExampleFunc() {
	var open bool // a breaker that opens for good after one failure
	b := breaker.Func(func(ctx context.Context, call func(context.Context) error) error {
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

// A breaker check in one call. Here the gobreaker under test opens after
// 3 failures for 500ms and lets one probe through, as the spec says, but
// the service forgot to bound its calls: Explore catches a call that waits
// for as long as the dependency hangs, and shrinks the schedule.
func Example() {
	test := func(t *testing.T) {
		res, err := breaker.Explore(t, breaker.Config{
			New: func() breaker.Breaker {
				cb := gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
					Timeout:     500 * time.Millisecond,
					ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 3 },
				})
				return gobreakercheck.Breaker(cb, 0) // no timeout on the calls
			},
			Spec: breaker.Spec{FailureThreshold: 3, OpenFor: 500 * time.Millisecond, CallTimeout: 200 * time.Millisecond},
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Failure == nil {
			t.Fatal("a breaker whose calls have no timeout must be caught")
		}
		t.Log(res.Failure.Counterexample())
	}
	_ = test // run by go test as func TestBreaker(t *testing.T)
}
