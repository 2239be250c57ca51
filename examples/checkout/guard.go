package checkout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/bulkhead"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/failsafe-go/failsafe-go/timeout"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"
)

// Limits are the numbers of the resilient variant, in one place. A zero
// field takes its value from [DefaultLimits].
type Limits struct {
	// RequestTimeout bounds a whole HTTP request, retries included.
	RequestTimeout time.Duration
	// PostgresTimeout and RedisTimeout bound one attempt of one call to
	// each dependency.
	PostgresTimeout time.Duration
	RedisTimeout    time.Duration
	// ConnectTimeout bounds opening one connection. It is longer than
	// an attempt: a Postgres connection costs a process on the server,
	// and pgxpool finishes a connect in the background when the attempt
	// that asked for it gives up, so the next attempt finds it ready.
	ConnectTimeout time.Duration
	// PostgresConns and RedisConns size each pool and the bulkhead in
	// front of it: at most that many calls to the dependency at once.
	PostgresConns int
	RedisConns    int
	// QueueWait is how long a call may wait for a bulkhead permit (and a
	// Redis connection) before it is turned away.
	QueueWait time.Duration
	// Retries is how many times an idempotent call is retried after a
	// failed attempt, waiting RetryBackoff, then twice that, and so on up
	// to RetryBackoffMax, each delay jittered down by up to half.
	Retries         int
	RetryBackoff    time.Duration
	RetryBackoffMax time.Duration
	// The breaker opens when BreakerFailures of the last BreakerWindow
	// attempts failed, lets probes through after BreakerDelay, and closes
	// after BreakerSuccesses successful probes.
	BreakerFailures  uint
	BreakerWindow    uint
	BreakerDelay     time.Duration
	BreakerSuccesses uint
}

// DefaultLimits are sized for a service answering in a few milliseconds
// with a latency budget of well under a second.
var DefaultLimits = Limits{
	RequestTimeout:   800 * time.Millisecond,
	PostgresTimeout:  200 * time.Millisecond,
	RedisTimeout:     50 * time.Millisecond,
	ConnectTimeout:   time.Second,
	PostgresConns:    8,
	RedisConns:       8,
	QueueWait:        20 * time.Millisecond,
	Retries:          2,
	RetryBackoff:     10 * time.Millisecond,
	RetryBackoffMax:  100 * time.Millisecond,
	BreakerFailures:  5,
	BreakerWindow:    10,
	BreakerDelay:     500 * time.Millisecond,
	BreakerSuccesses: 2,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	set := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	set(&l.RequestTimeout, d.RequestTimeout)
	set(&l.PostgresTimeout, d.PostgresTimeout)
	set(&l.RedisTimeout, d.RedisTimeout)
	set(&l.ConnectTimeout, d.ConnectTimeout)
	set(&l.QueueWait, d.QueueWait)
	set(&l.RetryBackoff, d.RetryBackoff)
	set(&l.RetryBackoffMax, d.RetryBackoffMax)
	set(&l.BreakerDelay, d.BreakerDelay)
	if l.PostgresConns == 0 {
		l.PostgresConns = d.PostgresConns
	}
	if l.RedisConns == 0 {
		l.RedisConns = d.RedisConns
	}
	if l.Retries == 0 {
		l.Retries = d.Retries
	}
	if l.BreakerFailures == 0 {
		l.BreakerFailures = d.BreakerFailures
	}
	if l.BreakerWindow == 0 {
		l.BreakerWindow = d.BreakerWindow
	}
	if l.BreakerSuccesses == 0 {
		l.BreakerSuccesses = d.BreakerSuccesses
	}
	return l
}

func (l Limits) validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"RequestTimeout", l.RequestTimeout}, {"PostgresTimeout", l.PostgresTimeout},
		{"RedisTimeout", l.RedisTimeout}, {"ConnectTimeout", l.ConnectTimeout}, {"QueueWait", l.QueueWait},
		{"RetryBackoff", l.RetryBackoff}, {"RetryBackoffMax", l.RetryBackoffMax},
		{"BreakerDelay", l.BreakerDelay},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("checkout: Limits.%s is %v, want > 0", f.name, f.v))
		}
	}
	if l.PostgresConns < 0 || l.PostgresConns > 1000 {
		errs = append(errs, fmt.Errorf("checkout: Limits.PostgresConns is %d, want 1 to 1000", l.PostgresConns))
	}
	if l.RedisConns < 0 || l.RedisConns > 1000 {
		errs = append(errs, fmt.Errorf("checkout: Limits.RedisConns is %d, want 1 to 1000", l.RedisConns))
	}
	if l.Retries < 0 || l.Retries > 10 {
		errs = append(errs, fmt.Errorf("checkout: Limits.Retries is %d, want 0 to 10", l.Retries))
	}
	if l.BreakerFailures > l.BreakerWindow {
		errs = append(errs, fmt.Errorf("checkout: Limits.BreakerFailures (%d) exceeds Limits.BreakerWindow (%d)", l.BreakerFailures, l.BreakerWindow))
	}
	if l.RetryBackoffMax < l.RetryBackoff {
		errs = append(errs, fmt.Errorf("checkout: Limits.RetryBackoffMax (%v) is below Limits.RetryBackoff (%v)", l.RetryBackoffMax, l.RetryBackoff))
	}
	return errors.Join(errs...)
}

// A guard runs one call to a dependency. idempotent says whether the call
// may safely run twice; only those are retried, but for errors that prove
// the call had no effect (see safeToRetry).
type guard interface {
	run(ctx context.Context, idempotent bool, call func(context.Context) error) error
}

// bare is the naive guard: it just calls.
type bare struct{}

func (bare) run(ctx context.Context, _ bool, call func(context.Context) error) error {
	return call(ctx)
}

// policy is the resilient guard of one dependency. Reading the executor
// from the outside in:
//
//	bulkhead  at most N calls in flight; the rest wait QueueWait, then fail
//	retry     up to Retries more attempts, with backoff, where safeToRetry
//	          says another attempt is safe
//	breaker   fail at once while the dependency is known to be failing
//	timeout   bound each attempt
//
// The breaker sits inside the retry so that it counts every attempt,
// protocol errors included (a serialization failure, a LOADING reply: an
// attempt that failed is a failure, retried or not), and a retry stops as
// soon as the breaker opens. The bulkhead sits outside so
// that a request holds one permit for all its attempts.
type policy struct {
	once, retried failsafe.Executor[any]
	breaker       circuitbreaker.CircuitBreaker[any]
	attempt       time.Duration
}

// newPolicy builds the guard of the dependency called name. onOpen, if
// set, runs when its breaker opens from closed (not when a failed probe
// reopens it).
func newPolicy(name string, log *slog.Logger, l Limits, attempt time.Duration, conns int, seed int64, onOpen func()) *policy {
	bh := bulkhead.NewBuilder[any](uint(conns)).WithMaxWaitTime(l.QueueWait).Build()
	cb := circuitbreaker.NewBuilder[any]().
		// A caller that gave up (the client went away) says nothing about
		// the dependency's health.
		HandleIf(func(_ any, err error) bool { return err != nil && !errors.Is(err, context.Canceled) }).
		WithFailureThresholdRatio(l.BreakerFailures, l.BreakerWindow).
		WithDelay(l.BreakerDelay).
		WithSuccessThreshold(l.BreakerSuccesses).
		OnStateChanged(func(e circuitbreaker.StateChangedEvent) {
			log.LogAttrs(e.Context(), slog.LevelWarn, "breaker", slog.String("dependency", name),
				slog.String("from", e.OldState.String()), slog.String("to", e.NewState.String()))
			// Only when it opens from closed, not each time a failed
			// probe reopens it.
			if e.OldState == circuitbreaker.ClosedState && e.NewState == circuitbreaker.OpenState && onOpen != nil {
				onOpen()
			}
		}).
		Build()
	j := newJitter(seed)
	retry := func(idempotent bool) retrypolicy.RetryPolicy[any] {
		return retrypolicy.NewBuilder[any]().
			WithMaxRetries(l.Retries).
			AbortIf(func(_ any, err error) bool { return !safeToRetry(err, idempotent) }).
			WithDelayFunc(func(e failsafe.ExecutionAttempt[any]) time.Duration {
				return j.backoff(e.Attempts(), l.RetryBackoff, l.RetryBackoffMax)
			}).
			ReturnLastFailure().
			Build()
	}
	to := timeout.New[any](attempt)
	return &policy{
		once:    failsafe.With[any](bh, retry(false), cb, to),
		retried: failsafe.With[any](bh, retry(true), cb, to),
		breaker: cb,
		attempt: attempt,
	}
}

// Protocol errors that safeToRetry knows. Postgres's are SQLSTATE codes;
// Redis's are the first word of an error reply.
const (
	pgSerializationFailure = "40001" // the transaction was rolled back
	pgDeadlockDetected     = "40P01" // the transaction was rolled back
	pgAdminShutdown        = "57P01" // the server ended the session (FATAL)
	pgTooManyConnections   = "53300" // the server refused a new connection
)

// safeToRetry reports whether a call that failed with err may be tried
// again within the same request. A retry is safe when the call is
// idempotent, or when err proves the call had no effect:
//
//   - Postgres 40001 (serialization failure) and 40P01 (deadlock): the
//     server rolled the transaction back, and these are the errors
//     Postgres asks clients to retry. Retried, with backoff, for any call.
//   - Postgres 53300 (too many connections), at start-up: no statement
//     was sent. Retried after a backoff (the server is short of
//     connections; retrying at once would take the slot another client
//     needs), for any call.
//   - Postgres 57P01 (admin shutdown): the server ended the session under
//     the statement, whose outcome is unknown. pgx drops the connection,
//     and an idempotent call is retried on a new one; any other is not.
//   - Redis LOADING (the server is loading its data) and BUSY (a script
//     is running): Redis refused the command without running it, and will
//     take it soon. Retried with backoff, for any call, writes included.
//   - Redis READONLY (a replica) and OOM (out of memory): the write was
//     refused, and another attempt a few milliseconds later gets the same
//     answer until someone acts. Never retried; the caller answers
//     degraded instead (see postOrder and getStock).
//
// An open breaker, a full bulkhead or a caller that went away is never
// retried: that would only add load.
func safeToRetry(err error, idempotent bool) bool {
	if errors.Is(err, circuitbreaker.ErrOpen) || errors.Is(err, bulkhead.ErrFull) || errors.Is(err, context.Canceled) {
		return false
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch pg.Code {
		case pgSerializationFailure, pgDeadlockDetected, pgTooManyConnections:
			return true
		}
		return idempotent
	}
	switch {
	case redis.HasErrorPrefix(err, "LOADING"), redis.HasErrorPrefix(err, "BUSY"):
		return true
	case redis.HasErrorPrefix(err, "READONLY"), redis.HasErrorPrefix(err, "OOM"):
		return false
	}
	return idempotent
}

func (p *policy) run(ctx context.Context, idempotent bool, call func(context.Context) error) error {
	ex := p.once
	if idempotent {
		ex = p.retried
	}
	return ex.WithContext(ctx).RunWithExecution(func(e failsafe.Execution[any]) error {
		// e.Context() is cancelled when the attempt's timeout fires, but
		// a cancellation is not a deadline, and some code only honours a
		// deadline: pgxpool's ping of an idle connection, go-redis's
		// socket deadlines. So the attempt gets a deadline of its own.
		ctx, cancel := context.WithTimeout(e.Context(), p.attempt)
		defer cancel()
		return call(ctx)
	})
}

// jitter is the retry backoff's source of randomness: seeded, so a run can
// be replayed, and locked, since requests retry concurrently. (failsafe's
// own jitter draws from the global math/rand, which cannot be seeded.)
type jitter struct {
	mu sync.Mutex
	r  *rand.Rand
}

func newJitter(seed int64) *jitter {
	return &jitter{r: rand.New(rand.NewPCG(uint64(seed), 0x636865636b6f7574))}
}

// backoff is the delay before retry number attempt (1 for the first
// retry): base doubled per attempt, capped at most, then reduced by a
// random amount of up to half, so that clients that failed together do
// not retry together.
func (j *jitter) backoff(attempt int, base, most time.Duration) time.Duration {
	d := base
	for i := 1; i < attempt && d < most; i++ {
		d *= 2
	}
	d = min(d, most)
	j.mu.Lock()
	f := j.r.Float64()
	j.mu.Unlock()
	return d - time.Duration(f*float64(d/2))
}
