package checkout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go/bulkhead"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/toxics"
)

func TestParseTraceParent(t *testing.T) {
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	for _, c := range []struct {
		name, in string
		ok       bool
	}{
		{"spec example", "00-" + trace + "-00f067aa0ba902b7-01", true},
		{"not sampled", "00-" + trace + "-00f067aa0ba902b7-00", true},
		{"future version with more fields", "01-" + trace + "-00f067aa0ba902b7-01-extra", true},
		{"empty", "", false},
		{"version ff is invalid", "ff-" + trace + "-00f067aa0ba902b7-01", false},
		{"version 00 with trailing data", "00-" + trace + "-00f067aa0ba902b7-01-x", false},
		{"future version, junk after flags", "01-" + trace + "-00f067aa0ba902b7-01x", false},
		{"upper case hex", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false},
		{"zero trace id", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},
		{"zero parent id", "00-" + trace + "-0000000000000000-01", false},
		{"short trace id", "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", false},
		{"wrong separator", "00_" + trace + "-00f067aa0ba902b7-01", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := ParseTraceParent(c.in)
			require.Equal(t, c.ok, ok)
			if ok {
				require.Equal(t, trace, got)
			}
		})
	}
}

func FuzzParseTraceParent(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-")
	f.Fuzz(func(t *testing.T, s string) {
		id, ok := ParseTraceParent(s)
		if ok && (len(id) != 32 || !lowerHex(id) || allZero(id)) {
			t.Fatalf("ParseTraceParent(%q) = %q, true", s, id)
		}
	})
}

func TestBackoffIsSeededBoundedAndGrows(t *testing.T) {
	const base, most = 10 * time.Millisecond, 100 * time.Millisecond
	a, b := newJitter(42), newJitter(42)
	for attempt := 1; attempt <= 6; attempt++ {
		want := min(base<<(attempt-1), most)
		da, db := a.backoff(attempt, base, most), b.backoff(attempt, base, most)
		require.Equal(t, da, db, "same seed, same delays")
		require.GreaterOrEqual(t, da, want/2, "attempt %d", attempt)
		require.LessOrEqual(t, da, want, "attempt %d", attempt)
	}
	other := newJitter(43)
	same := true
	for attempt := 1; attempt <= 6; attempt++ {
		same = same && a.backoff(attempt, base, most) == other.backoff(attempt, base, most)
	}
	require.False(t, same, "different seeds should give different delays")
}

func TestLogsCarryTraceID(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(traceHandler{slog.NewTextHandler(&buf, nil)}).With("variant", "naive")
	log.InfoContext(withTraceID(context.Background(), "abc"), "hello")
	log.InfoContext(context.Background(), "no trace")
	require.Contains(t, buf.String(), "msg=hello variant=naive trace_id=abc")
	require.NotContains(t, buf.String(), "msg=\"no trace\" variant=naive trace_id")
}

func TestDefaultLimitsAreValid(t *testing.T) {
	require.NoError(t, DefaultLimits.validate())
	require.Equal(t, DefaultLimits, Limits{}.withDefaults())
}

func testPolicy(l Limits) *policy {
	l = l.withDefaults()
	return newPolicy("dep", slog.New(slog.DiscardHandler), l, l.PostgresTimeout, l.PostgresConns, 1, nil)
}

func TestPolicyRetriesOnlyIdempotentCalls(t *testing.T) {
	boom := errors.New("boom")
	for _, c := range []struct {
		name       string
		idempotent bool
		calls      int
	}{
		{"idempotent: 1 call + 2 retries", true, 3},
		{"not idempotent: 1 call", false, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			// A breaker that cannot open within these few calls.
			p := testPolicy(Limits{Retries: 2, RetryBackoff: time.Millisecond, RetryBackoffMax: time.Millisecond, BreakerFailures: 10, BreakerWindow: 10})
			calls := 0
			err := p.run(context.Background(), c.idempotent, func(context.Context) error { calls++; return boom })
			require.ErrorIs(t, err, boom)
			require.Equal(t, c.calls, calls)
		})
	}
}

// redisReply is an error reply as go-redis returns it: an error with a
// RedisError method (see redis.Error).
type redisReply string

func (r redisReply) Error() string { return string(r) }
func (redisReply) RedisError()     {}

func TestPolicyRetriesWhatIsSafe(t *testing.T) {
	pgErr := func(code string) error {
		return fmt.Errorf("wrapped: %w", &pgconn.PgError{Severity: "ERROR", Code: code})
	}
	for _, c := range []struct {
		name string
		err  error
		// calls made for a call that is not idempotent, and one that is
		notIdempotent, idempotent int
	}{
		{"pg 40001: rolled back, retried", pgErr(pgSerializationFailure), 3, 3},
		{"pg 40P01: rolled back, retried", pgErr(pgDeadlockDetected), 3, 3},
		{"pg 53300: refused at start-up, retried", pgErr(pgTooManyConnections), 3, 3},
		{"pg 57P01: outcome unknown, idempotent only", pgErr(pgAdminShutdown), 1, 3},
		{"pg other code: idempotent only", pgErr("23505"), 1, 3},
		{"redis LOADING: not run, retried", redisReply(toxics.RedisLoading), 3, 3},
		{"redis BUSY: not run, retried", redisReply(toxics.RedisBusy), 3, 3},
		{"redis READONLY: never retried", redisReply(toxics.RedisReadOnly), 1, 1},
		{"redis OOM: never retried", redisReply(toxics.RedisOOM), 1, 1},
		{"redis other reply: idempotent only", redisReply("ERR wrong number of arguments"), 1, 3},
		{"plain error: idempotent only", errors.New("boom"), 1, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, idem := range []bool{false, true} {
				// A breaker that cannot open within these few calls.
				p := testPolicy(Limits{Retries: 2, RetryBackoff: time.Millisecond, RetryBackoffMax: time.Millisecond, BreakerFailures: 10, BreakerWindow: 10})
				calls := 0
				err := p.run(context.Background(), idem, func(context.Context) error { calls++; return c.err })
				require.ErrorIs(t, err, c.err)
				want := c.notIdempotent
				if idem {
					want = c.idempotent
				}
				require.Equal(t, want, calls, "idempotent=%v", idem)
			}
		})
	}
}

func TestPolicyBreakerCountsProtocolErrors(t *testing.T) {
	for _, err := range []error{
		&pgconn.PgError{Code: pgSerializationFailure}, &pgconn.PgError{Code: pgAdminShutdown},
		redisReply(toxics.RedisLoading), redisReply(toxics.RedisReadOnly),
	} {
		t.Run(err.Error(), func(t *testing.T) {
			l := Limits{Retries: 1, BreakerFailures: 3, BreakerWindow: 3, BreakerDelay: time.Hour}.withDefaults()
			opened := 0
			p := newPolicy("dep", slog.New(slog.DiscardHandler), l, l.PostgresTimeout, l.PostgresConns, 1, func() { opened++ })
			for range 3 {
				_ = p.run(context.Background(), false, func(context.Context) error { return err })
			}
			require.Equal(t, 1, opened, "three failed attempts of %v open the breaker", err)
		})
	}
}

func TestPolicyBreakerOpens(t *testing.T) {
	l := Limits{Retries: 1, BreakerFailures: 3, BreakerWindow: 4, BreakerDelay: time.Hour}.withDefaults()
	opened := 0
	p := newPolicy("dep", slog.New(slog.DiscardHandler), l, l.PostgresTimeout, l.PostgresConns, 1, func() { opened++ })
	calls := 0
	fail := func(context.Context) error { calls++; return errors.New("down") }
	for range 3 {
		_ = p.run(context.Background(), false, fail)
	}
	require.Equal(t, 3, calls)
	err := p.run(context.Background(), true, fail)
	require.ErrorIs(t, err, circuitbreaker.ErrOpen)
	require.Equal(t, 3, calls, "an open breaker does not call, and an open breaker is not retried")
	require.Equal(t, 1, opened, "onOpen runs when the breaker opens")
}

func TestPolicyNotFoundIsNotAFailure(t *testing.T) {
	// Callers turn "no such row" into a nil error (see getOrder), so a
	// stream of lookups of missing orders never opens the breaker.
	p := testPolicy(Limits{BreakerFailures: 1, BreakerWindow: 1})
	for range 10 {
		require.NoError(t, p.run(context.Background(), true, func(context.Context) error { return nil }))
	}
	require.True(t, p.breaker.IsClosed())
}

func TestPolicyAttemptHasDeadline(t *testing.T) {
	p := testPolicy(Limits{PostgresTimeout: 20 * time.Millisecond, Retries: 1, RetryBackoff: time.Millisecond, RetryBackoffMax: time.Millisecond})
	attempts := 0
	err := p.run(context.Background(), true, func(ctx context.Context) error {
		attempts++
		_, ok := ctx.Deadline()
		require.True(t, ok, "the attempt's context has a deadline")
		<-ctx.Done() // a call that waits as long as it is allowed to
		return ctx.Err()
	})
	require.Error(t, err)
	require.Equal(t, 2, attempts, "a timed-out attempt is retried")
}

func TestPolicyBulkheadTurnsAwayExcessCalls(t *testing.T) {
	p := testPolicy(Limits{PostgresConns: 1, QueueWait: time.Millisecond, PostgresTimeout: time.Minute})
	inside, release := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		done <- p.run(context.Background(), false, func(context.Context) error {
			close(inside)
			<-release
			return nil
		})
	}()
	<-inside // the only permit is taken
	err := p.run(context.Background(), false, func(context.Context) error { return nil })
	require.ErrorIs(t, err, bulkhead.ErrFull)
	close(release)
	require.NoError(t, <-done)
}
