package properties

import (
	"fmt"
	"os"
	"testing"

	"github.com/shakedown/shakedown/sim"
)

// envSelfCheck turns on the determinism self-check of simulated runs:
// SHAKEDOWN_SELFCHECK=1 go test ... (see the package doc).
const envSelfCheck = "SHAKEDOWN_SELFCHECK"

// selfCheckName is the invariant of the self-check's findings.
const selfCheckName = "the simulation is deterministic"

func selfCheckOn() bool { return os.Getenv(envSelfCheck) == "1" }

// selfCheck runs schedule s with seed again, in a bubble of its own on a
// World built afresh, and adds a Broken finding to it, the iteration of
// the first run, if the two histories differ (naming the first op that
// does). Config.Reset is not called again: a simulated World is new for
// every run, so there is nothing between the two runs to reset.
func selfCheck(t *testing.T, cfg Config, s sim.Schedule, seed int64, it *Iteration) {
	cfg.Reset = nil
	again, err := runBubble(t, cfg, s, seed, nil)
	var diff string
	switch {
	case err != nil:
		diff = fmt.Sprintf("the second run could not run: %v", err)
	case again == nil:
		diff = "the second run recorded nothing"
	default:
		// it.Wall stays the first run's: in a bubble it is virtual time,
		// which the second run repeats and the overhead line would count
		// twice.
		diff = sim.Diff(it.History, again.History)
	}
	if diff == "" {
		return
	}
	it.add(Finding{Invariant: selfCheckName, Verdict: Broken,
		Err: fmt.Errorf("properties: the same schedule and seed, run twice in simulation, gave two histories (%s=1): %s", envSelfCheck, diff)})
}
