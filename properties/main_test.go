package properties_test

import (
	"context"
	"os"
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
//
// It also turns on the determinism self-check of simulated runs
// (SHAKEDOWN_SELFCHECK=1: every simulated run of Check, Explore and Replay
// runs twice, and a difference is a Broken finding) unless the variable is
// set already.
func TestMain(m *testing.M) {
	// go-redis logs every failed dial of its pool through a global logger;
	// under faults that is thousands of lines the histories already hold.
	redis.SetLogger(quietRedis{})
	if _, set := os.LookupEnv("SHAKEDOWN_SELFCHECK"); !set {
		os.Setenv("SHAKEDOWN_SELFCHECK", "1")
	}
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
	)
}
