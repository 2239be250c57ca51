package breaker_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: the
// runs of a batch go side by side, and every one must have ended when
// Explore returns.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
