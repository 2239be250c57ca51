package checkout

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// schema is the orders table. The service chooses each order's ID, so
// recording an order twice (a retry after a timeout) stores it once.
const schema = `CREATE TABLE IF NOT EXISTS orders (
	id         text PRIMARY KEY,
	item       text NOT NULL,
	qty        integer NOT NULL CHECK (qty > 0),
	created_at timestamptz NOT NULL DEFAULT now()
)`

// pgQueryCanceled is the SQLSTATE of a statement the server cancelled
// (statement_timeout).
const pgQueryCanceled = "57014"

// Migrate creates the orders table if it does not exist. Call it once,
// before serving, with a context that bounds how long to wait for
// Postgres.
//
// It is set-up, not serving: the resilient variant's statement bound
// (statementTimeout) is lifted for it, and on a loaded machine even the
// transaction's first statements may outlast that bound, so a statement
// the server cancelled (57014) is tried again until ctx ends.
func (s *Service) Migrate(ctx context.Context) error {
	err := retryWhile(ctx, func() error {
		return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = 0"); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, schema)
			return err
		})
	}, func(err error) bool {
		var pg *pgconn.PgError
		return errors.As(err, &pg) && pg.Code == pgQueryCanceled
	})
	if err != nil {
		return fmt.Errorf("checkout: migrate: %w", err)
	}
	return nil
}

// Restock sets the stock level of item in the cache to n, trying again
// until it succeeds or ctx ends: bound ctx.
func (s *Service) Restock(ctx context.Context, item string, n int64) error {
	if !itemRE.MatchString(item) {
		return fmt.Errorf("checkout: restock: item %q: want 1 to 64 letters, digits, '_' or '-'", item)
	}
	if n < 0 {
		return fmt.Errorf("checkout: restock: item %q: stock %d is negative", item, n)
	}
	// Until it succeeds or ctx ends, as Warm does: restocking is set-up,
	// not serving, and Redis's read timeout is sized for serving (a SET
	// on a loaded machine can outlast it). SET is safe to repeat.
	if err := untilOK(ctx, func() error { return s.cache.Set(ctx, stockKey(item), n, 0).Err() }); err != nil {
		return fmt.Errorf("checkout: restock %q: %w", item, err)
	}
	return nil
}
