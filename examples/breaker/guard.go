package breaker

import (
	"context"
	"errors"
	"time"

	"github.com/sony/gobreaker/v2"
)

// Settings are the numbers of a Guard, the ones a team tunes.
type Settings struct {
	// Failures is how many consecutive failed calls open the breaker.
	Failures uint32
	// OpenFor is how long the breaker stays open before it lets probes
	// through.
	OpenFor time.Duration
	// Probes is how many probes the half-open breaker lets through; all
	// of them must succeed to close it again.
	Probes uint32
	// CallTimeout bounds each call; 0 means no timeout.
	CallTimeout time.Duration
}

// Defaults are the settings the service runs with: the bank answers in a
// few milliseconds, so a call that takes 300ms has failed, and after five
// such failures in a row the bank gets two seconds of peace.
var Defaults = Settings{Failures: 5, OpenFor: 2 * time.Second, Probes: 2, CallTimeout: 300 * time.Millisecond}

// Guard is how the service calls its dependency: through a circuit
// breaker (sony/gobreaker), with a timeout on every call.
type Guard struct {
	cb      *gobreaker.CircuitBreaker[struct{}]
	timeout time.Duration
}

// NewGuard returns a closed Guard with settings s. Zero Failures or Probes
// mean 1.
func NewGuard(s Settings) *Guard {
	failures := max(s.Failures, 1)
	return &Guard{
		cb: gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
			Name:        "bank",
			MaxRequests: max(s.Probes, 1),
			Timeout:     s.OpenFor,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
		}),
		timeout: s.CallTimeout,
	}
}

// ErrUnavailable is what Call returns when the breaker turns a call away.
var ErrUnavailable = errors.New("bank unavailable: circuit breaker open")

// Call runs call through the breaker with the Guard's timeout, or returns
// ErrUnavailable at once when the breaker is open.
func (g *Guard) Call(ctx context.Context, call func(context.Context) error) error {
	_, err := g.cb.Execute(func() (struct{}, error) {
		if g.timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, g.timeout)
			defer cancel()
		}
		return struct{}{}, call(ctx)
	})
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return ErrUnavailable
	}
	return err
}

// State is the breaker's state: "closed", "half-open" or "open".
func (g *Guard) State() string { return g.cb.State().String() }
