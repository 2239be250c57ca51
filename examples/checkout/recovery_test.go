package checkout

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/harness"
	"github.com/shakedown/shakedown/toxics"
)

// TestRecoversWhenConnectsOutlastAnAttempt: the resilient variant recovers
// after Postgres comes back from a pause even when opening a connection
// takes longer than one attempt may, as on a loaded machine (handshakes
// are CPU-bound) or behind a slow TLS or authentication step.
//
// The requests in flight when Postgres stopped answering time out, and
// pgx closes their connections, so the breaker's probes after the pause
// may need new ones. A probe gives up after one attempt, before its
// connect is done; pgxpool finishes the connect in the background, and a
// later probe finds the connection ready. An
// earlier version dropped the pool every time the breaker opened, a failed
// probe's reopening included, which threw away the connection the probe
// had started: with connects slower than an attempt it never recovered.
// The resilience suite saw that bug only on a loaded machine, as
// "Recovery after db pause()" failing 0.2 to 0.6 s past its deadline;
// here every connect is slow, so it shows on any machine.
func TestRecoversWhenConnectsOutlastAnAttempt(t *testing.T) {
	env := harness.New(t)
	db, cache := env.Postgres("db"), env.Redis("cache")
	pg := db.PoolConfig()
	// Every connection takes twice an attempt to open, and less than the
	// connect timeout, before its handshake even starts.
	slow := 2 * DefaultLimits.PostgresTimeout
	require.Less(t, slow, DefaultLimits.ConnectTimeout)
	var dialer net.Dialer
	pg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		select {
		case <-time.After(slow):
			return c, nil
		case <-ctx.Done():
			c.Close()
			return nil, ctx.Err()
		}
	}
	var logs logBuffer
	svc, ts := migrated(t, Config{Variant: Resilient, Postgres: pg, Redis: cache.Options(), Seed: 1,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	apple := item(t, svc, 1_000_000)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	require.NoError(t, svc.Warm(ctx))
	start := time.Now()

	// order places one order and says why it was not taken ("" when it
	// was).
	order := func() string {
		req, err := http.NewRequestWithContext(ctx, "POST", ts.URL+"/orders", strings.NewReader(`{"item":"`+apple+`","qty":1}`))
		if err != nil {
			return err.Error()
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			b, _ := io.ReadAll(resp.Body)
			return fmt.Sprintf("%d %s", resp.StatusCode, b)
		}
		return ""
	}
	// Traffic all along, as a service has: the breaker opens during the
	// pause and probes after it.
	stop := make(chan struct{})
	var workers sync.WaitGroup
	for range 4 {
		workers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if order() != "" {
					time.Sleep(5 * time.Millisecond) // an open breaker answers at once
				}
			}
		})
	}
	defer func() { close(stop); workers.Wait() }()

	// Taken before the pause: the first that is (on a loaded machine an
	// attempt can outlast its timeout without any fault).
	for why := order(); why != ""; why = order() {
		require.Less(t, time.Since(start), 30*time.Second, "no order taken before the pause: %s", why)
		time.Sleep(10 * time.Millisecond)
	}
	revert, err := db.Apply(ctx, toxics.Pause{})
	require.NoError(t, err)
	time.Sleep(time.Second)
	require.NoError(t, revert(ctx))
	healed := time.Now()
	require.Contains(t, logs.String(), `"dependency":"postgres","from":"closed","to":"open"`, "the pause opened the breaker")

	// Recovered: ten orders in a row taken. The bound is far above the
	// few breaker delays recovery takes, and the bug it catches never
	// recovers at all.
	const bound = 15 * time.Second
	inRow := 0
	for inRow < 10 {
		require.Less(t, time.Since(healed), bound, "not recovered %v after the pause ended; breaker log:\n%s", bound, breakerLog(logs.String()))
		if order() == "" {
			inRow++
		} else {
			inRow = 0
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Logf("recovered %v after the pause ended", time.Since(healed).Round(time.Millisecond))
}

// breakerLog is the breaker's lines of a JSON log.
func breakerLog(log string) string {
	var b strings.Builder
	for line := range strings.Lines(log) {
		if strings.Contains(line, `"msg":"breaker"`) {
			fmt.Fprint(&b, line)
		}
	}
	return b.String()
}

// TestSlowStatementKeepsItsConnection: the resilient variant's statements
// are bounded by the server as well as by the attempt's deadline, a
// quarter of an attempt sooner, so a statement the server is slow to run
// ends with 57014 (query_canceled) and its connection stays open. The
// naive variant's is cut by the client's deadline: pgx closes the
// connection, sending the server a cancel request on another, and the pool
// opens a new one for the next statement. (The attempt here is 4 s, so
// that the server's answer has a second to come back on a loaded machine.)
func TestSlowStatementKeepsItsConnection(t *testing.T) {
	env := harness.New(t)
	db, cache := env.Postgres("db"), env.Redis("cache")
	// A connect may take seconds on a loaded machine; this test is not
	// about connecting.
	limits := Limits{PostgresTimeout: 4 * time.Second, RequestTimeout: 10 * time.Second, ConnectTimeout: 30 * time.Second}
	for _, tc := range []struct {
		variant Variant
		kept    bool
	}{{Resilient, true}, {Naive, false}} {
		t.Run(tc.variant.String(), func(t *testing.T) {
			svc, err := New(Config{Variant: tc.variant, Postgres: db.PoolConfig(), Redis: cache.Options(), Limits: limits, Seed: 1})
			require.NoError(t, err)
			defer svc.Close()
			ctx := t.Context()
			_, err = svc.db.Exec(ctx, "SELECT 1")
			require.NoError(t, err)
			opened := svc.db.Stat().NewConnsCount()

			attempt, cancel := context.WithTimeout(ctx, limits.PostgresTimeout)
			_, err = svc.db.Exec(attempt, "SELECT pg_sleep(10)")
			cancel()
			require.Error(t, err)
			var pgErr *pgconn.PgError
			if tc.kept {
				require.ErrorAs(t, err, &pgErr, "the server ended the statement")
				require.Equal(t, "57014", pgErr.Code)
			} else {
				require.ErrorIs(t, err, context.DeadlineExceeded, "the client's deadline ended it")
			}

			_, err = svc.db.Exec(ctx, "SELECT 1")
			require.NoError(t, err)
			if tc.kept {
				require.Equal(t, opened, svc.db.Stat().NewConnsCount(), "the next statement ran on the same connection")
			} else {
				require.Equal(t, opened+1, svc.db.Stat().NewConnsCount(), "the connection the deadline cut was closed, and a new one opened")
			}
		})
	}
}

func TestStatementTimeout(t *testing.T) {
	require.Equal(t, 150*time.Millisecond, statementTimeout(200*time.Millisecond))
	require.Equal(t, time.Millisecond, statementTimeout(time.Microsecond), "never 0, which would turn the bound off")
}

// TestMigrateIsSetUpNotServing: Migrate is not held to the resilient
// variant's statement bound, which is for serving: with a bound of 3 ms,
// a statement of 50 ms is cancelled, and Migrate still creates the table.
func TestMigrateIsSetUpNotServing(t *testing.T) {
	env := harness.New(t)
	db, cache := env.Postgres("db"), env.Redis("cache")
	limits := Limits{PostgresTimeout: 4 * time.Millisecond, ConnectTimeout: 30 * time.Second} // connecting is not what is tested
	require.Equal(t, 3*time.Millisecond, statementTimeout(limits.PostgresTimeout))
	svc, err := New(Config{Variant: Resilient, Postgres: db.PoolConfig(), Redis: cache.Options(), Limits: limits, Seed: 1})
	require.NoError(t, err)
	defer svc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	_, err = svc.db.Exec(ctx, "SELECT pg_sleep(0.05)")
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr, "the bound applies to serving statements")
	require.Equal(t, pgQueryCanceled, pgErr.Code)

	require.NoError(t, svc.Migrate(ctx))
	conn, err := pgx.Connect(ctx, db.DSN()) // unbounded, to look
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&n))
	require.Zero(t, n)
}
