// Package gobreakercheck adapts sony/gobreaker circuit breakers to
// [breaker.Breaker], so that [breaker.Check] can verify them:
//
//	breaker.Check(t, breaker.Config{
//		New: func() breaker.Breaker {
//			cb := gobreaker.NewCircuitBreaker[any](gobreaker.Settings{Timeout: 500 * time.Millisecond,
//				ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 3 }})
//			return gobreakercheck.Breaker(cb, 200*time.Millisecond)
//		},
//		Spec: breaker.Spec{FailureThreshold: 3, OpenFor: 500 * time.Millisecond, CallTimeout: 200 * time.Millisecond},
//	})
package gobreakercheck

import (
	"context"
	"errors"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/shakedown/shakedown/properties/breaker"
)

// Breaker adapts a sony/gobreaker circuit breaker, called as a service
// calls it: cb.Execute around a call that the service bounds by timeout
// (0: no timeout, as a call site that forgets it). gobreaker's MaxRequests
// is both [breaker.Spec.HalfOpenProbes] (in total per half-open spell) and
// [breaker.Spec.SuccessesToClose]; its default ReadyToTrip opens after 6
// consecutive failures (more than 5), and its Timeout is OpenFor.
func Breaker[T any](cb *gobreaker.CircuitBreaker[T], timeout time.Duration) breaker.Breaker {
	if cb == nil {
		return breaker.Func(func(context.Context, func(context.Context) error) error {
			return errors.New("gobreakercheck: Breaker: the circuit breaker is nil")
		}, nil)
	}
	return &adapter[T]{cb: cb, timeout: timeout}
}

type adapter[T any] struct {
	cb      *gobreaker.CircuitBreaker[T]
	timeout time.Duration
}

func (b *adapter[T]) Execute(ctx context.Context, call func(context.Context) error) error {
	_, err := b.cb.Execute(func() (T, error) {
		var zero T
		if b.timeout > 0 {
			c, cancel := context.WithTimeout(ctx, b.timeout)
			defer cancel()
			return zero, call(c)
		}
		return zero, call(ctx)
	})
	return err
}

func (b *adapter[T]) State() breaker.State {
	switch b.cb.State() {
	case gobreaker.StateClosed:
		return breaker.Closed
	case gobreaker.StateHalfOpen:
		return breaker.HalfOpen
	case gobreaker.StateOpen:
		return breaker.Open
	}
	return breaker.Unknown
}
