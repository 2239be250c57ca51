package checkout

import (
	"context"
	"fmt"
)

// schema is the orders table. The service chooses each order's ID, so
// recording an order twice (a retry after a timeout) stores it once.
const schema = `CREATE TABLE IF NOT EXISTS orders (
	id         text PRIMARY KEY,
	item       text NOT NULL,
	qty        integer NOT NULL CHECK (qty > 0),
	created_at timestamptz NOT NULL DEFAULT now()
)`

// Migrate creates the orders table if it does not exist. Call it once,
// before serving, with a context that bounds how long to wait for
// Postgres.
func (s *Service) Migrate(ctx context.Context) error {
	if _, err := s.db.Exec(ctx, schema); err != nil {
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
