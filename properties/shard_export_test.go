package properties

import (
	"testing"

	"github.com/shakedown/shakedown/sim"
)

// OnDrawn calls f with every iteration's number and schedule, and whether
// this shard runs it, until t ends.
func OnDrawn(t testing.TB, f func(k int, s sim.Schedule, mine bool)) {
	drawnHook = f
	t.Cleanup(func() { drawnHook = nil })
}
