// Package failsafecheck adapts failsafe-go circuit breakers to
// [breaker.Breaker], so that [breaker.Check] can verify them:
//
//	breaker.Check(t, breaker.Config{
//		New: func() breaker.Breaker {
//			cb := circuitbreaker.NewBuilder[any]().WithFailureThreshold(3).WithSuccessThreshold(1).
//				WithDelay(500 * time.Millisecond).Build()
//			return failsafecheck.Breaker(cb, failsafe.With[any](cb, timeout.New[any](200*time.Millisecond)))
//		},
//		Spec: breaker.Spec{FailureThreshold: 3, OpenFor: 500 * time.Millisecond, CallTimeout: 200 * time.Millisecond},
//	})
package failsafecheck

import (
	"context"
	"errors"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"

	"github.com/shakedown/shakedown/properties/breaker"
)

// Breaker adapts a failsafe-go circuit breaker. exec is the
// executor the service calls through, holding cb and the policies it
// composes with it in the service's order, such as
// failsafe.With[any](retry, cb, timeout.New[any](200*time.Millisecond)); a
// nil exec runs cb alone (and so with no timeout).
//
// failsafe-go's half-open state bounds the probes in flight at once, not
// in total: say so with [breaker.Spec.ProbesInFlight]. Its default opens
// after one failure, stays open a minute and, unless
// WithSuccessThreshold is set, needs FailureThreshold failed probes to
// open again: set WithSuccessThreshold for a breaker that a failed probe
// opens again, as breaker.Spec expects.
func Breaker[R any](cb circuitbreaker.CircuitBreaker[R], exec failsafe.Executor[R]) breaker.Breaker {
	if cb == nil {
		return breaker.Func(func(context.Context, func(context.Context) error) error {
			return errors.New("failsafecheck: Breaker: the circuit breaker is nil")
		}, nil)
	}
	if exec == nil {
		exec = failsafe.With[R](cb)
	}
	return &adapter[R]{cb: cb, exec: exec}
}

type adapter[R any] struct {
	cb   circuitbreaker.CircuitBreaker[R]
	exec failsafe.Executor[R]
}

func (b *adapter[R]) Execute(ctx context.Context, call func(context.Context) error) error {
	return b.exec.WithContext(ctx).RunWithExecution(func(e failsafe.Execution[R]) error { return call(e.Context()) })
}

func (b *adapter[R]) State() breaker.State {
	switch b.cb.State() {
	case circuitbreaker.ClosedState:
		return breaker.Closed
	case circuitbreaker.HalfOpenState:
		return breaker.HalfOpen
	case circuitbreaker.OpenState:
		return breaker.Open
	}
	return breaker.Unknown
}
