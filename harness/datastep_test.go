package harness

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/toxics"
)

// TestDataStepPostgres: a column renamed by a data step and renamed back
// by its revert, as a client through the Link sees it; a failing
// statement is an error naming the step, the dependency and the
// statement.
func TestDataStepPostgres(t *testing.T) {
	forBackends(t, func(t *testing.T, b Backend) {
		e := New(t, WithBackend(b))
		p := e.Postgres("db")
		ctx := ctxFor(t, 5*time.Minute)
		conn, err := pgx.ConnectConfig(ctx, p.ConnConfig())
		require.NoError(t, err)
		defer conn.Close(context.Background())
		_, err = conn.Exec(ctx, "CREATE TABLE item (id int PRIMARY KEY, price int); INSERT INTO item VALUES (1, 5)")
		require.NoError(t, err)

		step := p.Statements("rename-price",
			[]string{"ALTER TABLE item RENAME COLUMN price TO cost"},
			[]string{"ALTER TABLE item RENAME COLUMN cost TO price"})
		require.Equal(t, "rename-price", step.Name())
		require.True(t, step.Supports(toxics.KindData))
		require.False(t, step.Supports(toxics.KindCrash))
		require.False(t, p.Supports(toxics.KindData), "the dependency itself takes no data step")

		price := func() error {
			var v int
			return conn.QueryRow(ctx, "SELECT price FROM item WHERE id = 1", pgx.QueryExecModeSimpleProtocol).Scan(&v)
		}
		require.NoError(t, price())
		revert, err := step.Apply(ctx, toxics.Data{})
		require.NoError(t, err)
		var pe *pgconn.PgError
		require.True(t, errors.As(price(), &pe))
		require.Equal(t, "42703", pe.Code, "undefined_column while the step holds")
		require.NoError(t, revert(ctx))
		require.NoError(t, revert(ctx), "idempotent")
		require.NoError(t, price())

		_, err = step.Apply(ctx, toxics.Crash{})
		require.ErrorContains(t, err, `data step "rename-price" on "db": apply crash(): a data step takes only data`)

		bad := p.Statements("bad", []string{"SELECT 1", "ALTER TABLE nosuch RENAME COLUMN a TO b"}, nil)
		_, err = bad.Apply(ctx, toxics.Data{})
		require.ErrorContains(t, err, `harness: data step "bad" on "db": apply: statement 2 "ALTER TABLE nosuch RENAME COLUMN a TO b"`)
		require.True(t, errors.As(err, &pe))
		require.Equal(t, "42P01", pe.Code)
	})
}

// TestDataStepRedis: a value corrupted by a data step and restored by
// its revert.
func TestDataStepRedis(t *testing.T) {
	forBackends(t, func(t *testing.T, b Backend) {
		e := New(t, WithBackend(b))
		r := e.Redis("cache")
		ctx := ctxFor(t, 5*time.Minute)
		c := redisClient(r, 5*time.Second)
		defer c.Close()
		require.NoError(t, c.Set(ctx, "price:1", "5", 0).Err())
		step := r.Commands("bad-price", []string{"SET price:1 not-a-number"}, []string{"SET price:1 5"})
		revert, err := step.Apply(ctx, toxics.Data{})
		require.NoError(t, err)
		require.Equal(t, "not-a-number", c.Get(ctx, "price:1").Val())
		require.NoError(t, revert(ctx))
		require.Equal(t, "5", c.Get(ctx, "price:1").Val())

		bad := r.Commands("bad", []string{"INCR"}, nil)
		_, err = bad.Apply(ctx, toxics.Data{})
		require.ErrorContains(t, err, `harness: data step "bad" on "cache": apply: statement 1 "INCR": ERR wrong number of arguments`)
	})
}
