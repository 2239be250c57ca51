package harness

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/toxics"
)

// requirePgCode checks that err is, as pgx reports it, a *pgconn.PgError
// with the code, severity and message Postgres itself would send.
func requirePgCode(t *testing.T, err error, code, severity string) {
	t.Helper()
	var pe *pgconn.PgError
	require.True(t, errors.As(err, &pe), "want a *pgconn.PgError %s, got %T %v", code, err, err)
	require.Equal(t, code, pe.Code)
	require.Equal(t, severity, pe.Severity)
	require.Equal(t, toxics.PgMessage(code), pe.Message)
}

// TestPostgresProtocolFaults: pgx (extended protocol, cached statements
// and the simple protocol) and database/sql, through the Link, to a real
// Postgres: each SQLSTATE exactly as the client reports it, and the
// session usable afterwards where Postgres keeps it.
func TestPostgresProtocolFaults(t *testing.T) {
	forBackends(t, func(t *testing.T, b Backend) {
		e := New(t, WithBackend(b), WithSeed(11))
		p := e.Postgres("db")
		ctx := ctxFor(t, 5*time.Minute)
		require.True(t, p.Supports(toxics.KindPgError))
		require.False(t, p.Supports(toxics.KindRedisError))
		conn, err := pgx.ConnectConfig(ctx, p.ConnConfig())
		require.NoError(t, err)
		defer conn.Close(context.Background())
		_, err = conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS acct (id int PRIMARY KEY, n int)")
		require.NoError(t, err)
		_, err = conn.Exec(ctx, "INSERT INTO acct VALUES (1, 0) ON CONFLICT DO NOTHING")
		require.NoError(t, err)

		one := func(c *pgx.Conn) error {
			var v int
			return c.QueryRow(ctx, "SELECT 1").Scan(&v)
		}

		for _, code := range []string{toxics.PgSerializationFailure, toxics.PgDeadlockDetected} {
			t.Run("pgx "+code+" then usable", func(t *testing.T) {
				for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeSimpleProtocol} {
					revert, err := p.Apply(ctx, toxics.PgError{Code: code, Requests: toxics.Requests{Nth: 1, Commands: "SELECT"}})
					require.NoError(t, err)
					var v int
					err = conn.QueryRow(ctx, "SELECT n FROM acct WHERE id = $1", mode, 1).Scan(&v)
					requirePgCode(t, err, code, "ERROR")
					// The same session goes on.
					require.NoError(t, conn.QueryRow(ctx, "SELECT n FROM acct WHERE id = $1", mode, 1).Scan(&v), "mode %v", mode)
					require.NoError(t, one(conn))
					require.NoError(t, revert(ctx))
				}
			})
		}

		t.Run("in a transaction: failed block, rollback, retry", func(t *testing.T) {
			revert, err := p.Apply(ctx, toxics.PgError{Code: toxics.PgSerializationFailure, Requests: toxics.Requests{Nth: 1, Commands: "UPDATE"}})
			require.NoError(t, err)
			defer revert(ctx)
			tx, err := conn.Begin(ctx)
			require.NoError(t, err)
			_, err = tx.Exec(ctx, "UPDATE acct SET n = n + 1 WHERE id = 1")
			requirePgCode(t, err, toxics.PgSerializationFailure, "ERROR")
			require.Equal(t, byte('E'), conn.PgConn().TxStatus(), "the block failed, as in Postgres")
			require.NoError(t, tx.Rollback(ctx))
			err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, "UPDATE acct SET n = n + 1 WHERE id = 1")
				return err
			})
			require.NoError(t, err, "the retry")
			var n int
			require.NoError(t, conn.QueryRow(ctx, "SELECT n FROM acct WHERE id = 1").Scan(&n))
			require.Equal(t, 1, n, "the answered UPDATE never reached the server")
		})

		t.Run("57P01 closes the session", func(t *testing.T) {
			c2, err := pgx.ConnectConfig(ctx, p.ConnConfig())
			require.NoError(t, err)
			defer c2.Close(context.Background())
			revert, err := p.Apply(ctx, toxics.PgError{Code: toxics.PgAdminShutdown, Requests: toxics.Requests{Share: 1}})
			require.NoError(t, err)
			requirePgCode(t, one(c2), toxics.PgAdminShutdown, "FATAL")
			require.True(t, c2.IsClosed(), "pgx closes a session ended by a FATAL error")
			require.NoError(t, revert(ctx))
			c3, err := pgx.ConnectConfig(ctx, p.ConnConfig())
			require.NoError(t, err)
			defer c3.Close(context.Background())
			require.NoError(t, one(c3))
		})

		t.Run("53300 at start-up, with and without an SSLRequest", func(t *testing.T) {
			revert, err := p.Apply(ctx, toxics.PgRefuse{Code: toxics.PgTooManyConnections, Requests: toxics.Requests{Share: 1}})
			require.NoError(t, err)
			for _, mode := range []string{"disable", "prefer"} {
				cfg, err := pgx.ParseConfig(p.DSN())
				require.NoError(t, err)
				if mode == "prefer" {
					cfg, err = pgx.ParseConfig(p.DSN()[:len(p.DSN())-len("disable")] + "prefer")
					require.NoError(t, err)
					require.NotNil(t, cfg.TLSConfig, "prefer sends an SSLRequest first")
				}
				_, err = pgx.ConnectConfig(ctx, cfg)
				requirePgCode(t, err, toxics.PgTooManyConnections, "FATAL")
			}
			// Live sessions are not affected.
			require.NoError(t, one(conn))
			db := sql.OpenDB(stdlib.GetConnector(*p.ConnConfig()))
			defer db.Close()
			requirePgCode(t, db.PingContext(ctx), toxics.PgTooManyConnections, "FATAL")
			require.NoError(t, revert(ctx))
			require.NoError(t, db.PingContext(ctx))
		})

		t.Run("database/sql", func(t *testing.T) {
			db := sql.OpenDB(stdlib.GetConnector(*p.ConnConfig()))
			defer db.Close()
			db.SetMaxOpenConns(1)
			require.NoError(t, db.PingContext(ctx))
			revert, err := p.Apply(ctx, toxics.PgError{Code: toxics.PgDeadlockDetected, Requests: toxics.Requests{Share: 1, Commands: "UPDATE"}})
			require.NoError(t, err)
			_, err = db.ExecContext(ctx, "UPDATE acct SET n = n + 1 WHERE id = $1", 1)
			requirePgCode(t, err, toxics.PgDeadlockDetected, "ERROR")
			var n int
			require.NoError(t, db.QueryRowContext(ctx, "SELECT n FROM acct WHERE id = $1", 1).Scan(&n))
			require.NoError(t, revert(ctx))
			_, err = db.ExecContext(ctx, "UPDATE acct SET n = n + 1 WHERE id = $1", 1)
			require.NoError(t, err)
			require.Equal(t, 1, db.Stats().OpenConnections, "one session throughout")
		})
	})
}
