package harness

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/toxics"
)

// pgProbe opens a new connection through the Link and runs one query,
// all within timeout.
func pgProbe(ctx context.Context, p *Postgres, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cfg := p.ConnConfig()
	cfg.ConnectTimeout = timeout
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var n int
	return conn.QueryRow(ctx, "SELECT 1").Scan(&n)
}

// linkCases are the link fault classes and what a client sees.
var linkCases = []struct {
	fault toxics.Fault
	fails bool // the call fails (error or timeout); else it succeeds
}{
	{toxics.Latency{Delay: 200 * time.Millisecond}, false},
	{toxics.Slicer{AverageSize: 3, SizeVariation: 2}, false},
	{toxics.SlowClose{Delay: 50 * time.Millisecond}, false},
	{toxics.Bandwidth{Rate: 0}, true},
	{toxics.Blackhole{}, true},
	{toxics.Timeout{}, true},
	{toxics.DataLimit{Bytes: 0}, true},
	{toxics.Reset{}, true},
	{toxics.Down{}, true},
}

func TestPostgres(t *testing.T) {
	forBackends(t, func(t *testing.T, b Backend) {
		e := New(t, WithBackend(b))
		p := e.Postgres("pg")
		ctx := ctxFor(t, 5*time.Minute)
		addr := p.Addr()
		require.NoError(t, pgProbe(ctx, p, 5*time.Second))
		require.NotEqual(t, p.Addr(), p.DirectAddr(), "clients must go through the link")

		t.Run("direct DSN bypasses the link", func(t *testing.T) {
			conn, err := pgx.Connect(ctx, p.DirectDSN())
			require.NoError(t, err)
			require.NoError(t, conn.Close(ctx))
		})

		t.Run("link faults", func(t *testing.T) {
			checkLinkFaults(t, ctx, e, p, func(ctx context.Context, d time.Duration) error { return pgProbe(ctx, p, d) })
		})

		t.Run("crash and restart keep the address", func(t *testing.T) {
			revert, err := p.Apply(ctx, toxics.Crash{})
			require.NoError(t, err)
			require.Error(t, pgProbe(ctx, p, 2*time.Second), "a crashed server gives errors")
			require.NoError(t, revert(ctx))
			require.Equal(t, addr, p.Addr())
			require.NoError(t, pgProbe(ctx, p, 5*time.Second))
		})

		t.Run("pause makes calls time out", func(t *testing.T) {
			revert, err := p.Apply(ctx, toxics.Pause{})
			require.NoError(t, err)
			err = pgProbe(ctx, p, 500*time.Millisecond)
			require.Error(t, err)
			require.True(t, errors.Is(err, context.DeadlineExceeded) || isTimeout(err), "want a timeout, got %v", err)
			require.NoError(t, revert(ctx))
			require.NoError(t, pgProbe(ctx, p, 5*time.Second))
		})

		t.Run("data survives a graceful restart", func(t *testing.T) {
			conn, err := pgx.ConnectConfig(ctx, p.ConnConfig())
			require.NoError(t, err)
			_, err = conn.Exec(ctx, `CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before')`)
			require.NoError(t, err)
			require.NoError(t, conn.Close(ctx))

			revert, err := p.Apply(ctx, toxics.Restart{})
			require.NoError(t, err)
			require.NoError(t, revert(ctx), "reverting a restart does nothing")

			conn, err = pgx.ConnectConfig(ctx, p.ConnConfig())
			require.NoError(t, err)
			defer conn.Close(ctx)
			var v string
			require.NoError(t, conn.QueryRow(ctx, `SELECT v FROM kept`).Scan(&v))
			require.Equal(t, "before", v)
		})

		t.Run("Reset brings a stopped node back", func(t *testing.T) {
			_, err := p.Apply(ctx, toxics.Stop{Grace: 5 * time.Second})
			require.NoError(t, err)
			require.Error(t, pgProbe(ctx, p, 2*time.Second))
			require.NoError(t, e.Reset(ctx))
			require.NoError(t, pgProbe(ctx, p, 5*time.Second))
		})

		t.Run("the link times its answers", func(t *testing.T) {
			conn, err := pgx.ConnectConfig(ctx, p.ConnConfig())
			require.NoError(t, err)
			defer conn.Close(ctx)
			n0, w0, _ := p.Answers()
			for range 3 {
				_, err := conn.Exec(ctx, "SELECT pg_sleep(0.05)")
				require.NoError(t, err)
			}
			n, w, _ := p.Answers()
			require.GreaterOrEqual(t, n-n0, int64(3), "each query an exchange")
			require.GreaterOrEqual(t, w-w0, 150*time.Millisecond, "each waited its sleep at least")
		})

		t.Run("pool through the link", func(t *testing.T) {
			pool, err := newPool(ctx, p)
			require.NoError(t, err)
			defer pool.Close()
			require.NoError(t, pool.Ping(ctx))
		})
	})
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

func newPool(ctx context.Context, p *Postgres) (*pgxpool.Pool, error) {
	cfg := p.PoolConfig()
	cfg.MaxConns = 2
	return pgxpool.NewWithConfig(ctx, cfg)
}
