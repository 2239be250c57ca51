package checkout

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/harness"
	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// TestProtocolErrors: what each variant answers when Postgres or Redis
// answers an order's statement or command with an error, through the real
// Links of a real Postgres and Redis. The fault hits only the first such
// request, so the case says which errors each variant retries, not how
// it copes with a storm of them (the resilience suite does that).
//
// The naive variant passes every error through: the order is refused
// (503) and lost. The resilient variant retries what is safe to retry and
// takes the order; on READONLY or OOM it does not retry, and takes the
// order degraded, without a stock reservation.
func TestProtocolErrors(t *testing.T) {
	env := harness.New(t)
	db, cache := env.Postgres("db"), env.Redis("cache")
	// The insert of an order, and the stock reservation script (go-redis
	// sends EVALSHA, then EVAL if Redis does not know the script yet).
	insert := toxics.Requests{Nth: 1, Commands: "INSERT"}
	reserve := toxics.Requests{Nth: 1, Commands: "EVALSHA EVAL"}
	type want struct {
		status   int
		degraded bool
	}
	refused := want{status: http.StatusServiceUnavailable}
	taken := want{status: http.StatusCreated}
	for _, c := range []struct {
		name      string
		target    sim.Target
		fault     toxics.Fault
		naive     want
		resilient want
	}{
		{"pg 40001 serialization failure: retried", db, toxics.PgError{Code: toxics.PgSerializationFailure, Requests: insert}, refused, taken},
		{"pg 40P01 deadlock: retried", db, toxics.PgError{Code: toxics.PgDeadlockDetected, Requests: insert}, refused, taken},
		{"pg 57P01 admin shutdown: retried on a new connection (the insert is idempotent)", db, toxics.PgError{Code: toxics.PgAdminShutdown, Requests: insert}, refused, taken},
		{"pg 53300 too many connections: retried after a backoff", db, toxics.PgRefuse{Code: toxics.PgTooManyConnections, Requests: toxics.Requests{Nth: 1}}, refused, taken},
		{"redis LOADING: retried, though the reservation is not idempotent", cache, toxics.RedisError{Reply: toxics.RedisLoading, Requests: reserve}, refused, taken},
		{"redis BUSY: retried, though the reservation is not idempotent", cache, toxics.RedisError{Reply: toxics.RedisBusy, Requests: reserve}, refused, taken},
		{"redis READONLY: not retried, taken degraded", cache, toxics.RedisError{Reply: toxics.RedisReadOnly, Requests: reserve}, refused, want{http.StatusCreated, true}},
		{"redis OOM: not retried, taken degraded", cache, toxics.RedisError{Reply: toxics.RedisOOM, Requests: reserve}, refused, want{http.StatusCreated, true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, v := range []Variant{Naive, Resilient} {
				// Generous timeouts: the case is about which errors are
				// retried, not about a loaded machine's speed.
				limits := Limits{RequestTimeout: 20 * time.Second, PostgresTimeout: 5 * time.Second, RedisTimeout: 5 * time.Second, ConnectTimeout: 5 * time.Second}
				svc, ts := migrated(t, Config{Variant: v, Postgres: db.PoolConfig(), Redis: cache.Options(), Seed: 1, Limits: limits})
				apple := item(t, svc, 10)
				// No connection left open: the order's insert opens one,
				// so that a refusal at start-up meets it.
				svc.Postgres().Reset()

				ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
				defer cancel()
				revert, err := c.target.Apply(ctx, c.fault)
				require.NoError(t, err)
				r := call(t, ts, "POST", "/orders", `{"item":"`+apple+`","qty":1}`)
				require.NoError(t, revert(ctx))

				w := c.naive
				if v == Resilient {
					w = c.resilient
				}
				require.Equal(t, w.status, r.status, "%s: %s", v, r.body)
				require.Equal(t, w.degraded, r.header.Get(DegradedHeader) != "", "%s: degraded", v)
				if r.status != http.StatusCreated {
					continue
				}
				var created Created
				require.NoError(t, json.Unmarshal([]byte(r.body), &created))
				got := call(t, ts, "GET", "/orders/"+created.ID, "")
				require.Equal(t, http.StatusOK, got.status, "%s: the order is stored: %s", v, got.body)
			}
		})
	}
}
