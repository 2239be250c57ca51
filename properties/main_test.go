package properties_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the test binary if a goroutine outlives the tests. The
// only goroutines ignored are the keep-alive loops of the Docker client
// that testcontainers-go shares across the process (the real-dependency
// test starts Postgres through harness).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
	)
}
