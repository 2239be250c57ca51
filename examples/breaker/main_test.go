package breaker_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the test binary if a goroutine outlives the tests: every
// run of a breaker check lives in a bubble that must end with it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
