package breaker_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	example "github.com/shakedown/shakedown/examples/breaker"
	"github.com/shakedown/shakedown/properties/breaker"
)

// promises is what the team expects of a Guard with settings s, written
// as data: the breaker opens after s.Failures failed calls in a row, stays
// open s.OpenFor, lets s.Probes probes through and closes once they all
// succeed; no call takes longer than s.CallTimeout.
func promises(s example.Settings) breaker.Spec {
	return breaker.Spec{
		FailureThreshold: int(s.Failures),
		OpenFor:          s.OpenFor,
		HalfOpenProbes:   int(s.Probes),
		SuccessesToClose: int(s.Probes),
		CallTimeout:      s.CallTimeout,
	}
}

// check is the breaker check of a Guard built with settings, judged
// against spec: each run builds a fresh Guard inside its own bubble of
// virtual time and calls it 100 times a second while a fake bank goes
// down, hangs, resets connections and slows down.
func check(settings example.Settings, spec breaker.Spec) breaker.Config {
	return breaker.Config{
		New: func() breaker.Breaker {
			g := example.NewGuard(settings)
			return breaker.Func(g.Call, state(g))
		},
		Spec:       spec,
		Iterations: 300,
		ShrinkTime: 3 * time.Second,
	}
}

// state reads a Guard's state as the breaker check names it.
func state(g *example.Guard) func() breaker.State {
	return func() breaker.State {
		switch g.State() {
		case "closed":
			return breaker.Closed
		case "half-open":
			return breaker.HalfOpen
		case "open":
			return breaker.Open
		}
		return breaker.Unknown
	}
}

// The Guard the service runs keeps its promises under 300 schedules of
// outages, each several seconds of virtual time: about a second of wall
// time in all.
func TestGuardKeepsItsPromises(t *testing.T) {
	breaker.Check(t, check(example.Defaults, promises(example.Defaults)))
}

// A Guard whose timeout was lost (CallTimeout 0) still opens and closes
// on time, but a bank that hangs holds calls for as long as it hangs.
// breaker.Explore finds it and shrinks it to one short outage.
func TestGuardWithoutATimeoutIsCaught(t *testing.T) {
	lost := example.Defaults
	lost.CallTimeout = 0
	res, err := breaker.Explore(t, check(lost, promises(example.Defaults)))
	require.NoError(t, err)
	require.NotNil(t, res.Failure, "a guard without a timeout must be caught")
	t.Logf("caught after %d schedules, shrunk in %v:\n%s", res.Iterations, res.Shrinking.Round(time.Millisecond), res.Failure.Counterexample())
	require.Equal(t, "every call ends within 300ms", res.Failure.Violations[0].Invariant)
	// Most shrinks end at one step; rapid's shrinker stops at a local
	// minimum now and then, leaving short mild steps in front of the one
	// that does the harm.
	require.LessOrEqual(t, len(res.Failure.Schedule.Steps), 4, "not shrunk: %s", res.Failure.Schedule)
}

// An expectation that does not match the settings is caught too: the
// runbook says the breaker opens after 3 failures, the settings say 5.
func TestWrongExpectationIsCaught(t *testing.T) {
	expected := promises(example.Defaults)
	expected.FailureThreshold = 3
	res, err := breaker.Explore(t, check(example.Defaults, expected))
	require.NoError(t, err)
	require.NotNil(t, res.Failure, "an expectation of 3 failures must not pass a breaker that opens after 5")
	t.Logf("caught after %d schedules, shrunk in %v:\n%s", res.Iterations, res.Shrinking.Round(time.Millisecond), res.Failure.Counterexample())
	require.Equal(t, "opens after 3 consecutive failures", res.Failure.Violations[0].Invariant)
}
