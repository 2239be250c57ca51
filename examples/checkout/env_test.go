//go:build !h7local

package checkout

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/shakedown/shakedown/harness"
)

// deps starts a Postgres and a Redis for t (containers, or local
// processes; see harness.Backend) and returns configurations that reach
// them through their Links.
func deps(t *testing.T) (*pgxpool.Config, *redis.Options) {
	t.Helper()
	env := harness.New(t)
	return env.Postgres("db").PoolConfig(), env.Redis("cache").Options()
}
