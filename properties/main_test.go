package properties_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// TestMain fails the test binary if a goroutine outlives the tests. The
// only goroutines ignored are the keep-alive loops of the Docker client
// that testcontainers-go shares across the process (the real-dependency
// test starts Postgres through harness).
func TestMain(m *testing.M) {
	// go-redis logs every failed dial of its pool through a global logger;
	// under faults that is thousands of lines the histories already hold.
	redis.SetLogger(quietRedis{})
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
	)
}
