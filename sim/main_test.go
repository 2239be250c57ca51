package sim

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them; it
// covers the tests of the simulated network too.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
