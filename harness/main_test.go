package harness

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's test binary if any goroutine outlives the
// tests: every Link, Env, container client and test server must release
// what it started.
//
// The only goroutines ignored are third-party background ones that live
// for the whole process by design:
//   - net/http keep-alive connection loops of the Docker client that
//     testcontainers-go shares across the process (idle connections to the
//     Docker daemon, closed only when the process ends).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
	)
}
