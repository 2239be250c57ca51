// Package breaker shows how to verify a circuit breaker configuration in
// seconds, in virtual time, before production does it for you.
//
// # The code under test
//
// [Guard] is how a service calls its bank: a sony/gobreaker circuit breaker
// with a timeout on every call, tuned by four numbers in [Settings]. The
// team's expectations of it fit in one sentence: it opens after Failures
// failed calls in a row, stays open OpenFor, lets Probes probes through
// and closes once they all succeed, and no call ever takes longer than
// CallTimeout.
//
// # The test
//
// guard_test.go writes that sentence as a breaker.Spec (package
// [github.com/shakedown/shakedown/properties/breaker], imported in the test
// beside this package as example) and hands it, with a function that
// builds a Guard, to breaker.Check:
//
//	breaker.Check(t, breaker.Config{
//		New: func() breaker.Breaker {
//			g := example.NewGuard(example.Defaults)
//			return breaker.Func(g.Call, state(g))
//		},
//		Spec: breaker.Spec{FailureThreshold: 5, OpenFor: 2 * time.Second,
//			HalfOpenProbes: 2, SuccessesToClose: 2, CallTimeout: 300 * time.Millisecond},
//	})
//
// Each run builds a fresh Guard inside a testing/synctest bubble and calls
// it 100 times a second while a fake bank goes down, hangs, resets
// connections and slows down, as a schedule drawn by rapid says. A run is
// several seconds of virtual time and about a millisecond of wall time, so
// 300 schedules take a second or two. The checker runs the spec's state
// machine next to the breaker and checks every call it let through, every
// call it turned away, every state it reported, every call's duration,
// and that it closes again in time once the bank is back.
//
// # A misconfiguration, caught
//
// The other two tests use breaker.Explore, which returns what
// it found instead of failing, and assert that a broken configuration is
// caught. A Guard whose timeout was lost shrinks to one latency spike:
//
//	✗ every call ends within 300ms
//	    at 10ms: op 1 made at 10ms took 301ms (no error)
//	    want: <= 300ms
//	spec: opens after 5 consecutive failures, stays open 2s, at most 2 probes per half-open spell, ...
//	schedule:
//	  0: +0s for 320ms dep latency(150ms)
//	timeline (each call at the moment the breaker returned; [state] as the breaker reported it):
//	          0s  ── dep latency(150ms) begins (step 0, until 320ms)
//	✗      311ms  op 1 ok in 301ms (made at 10ms)                                [closed]
//	       320ms  ── dep latency(150ms) ends
//	       320ms  ops 2..314 (313 calls, to 3.141s) ok in 1ms..300ms             [closed]
//
// and a runbook that says "opens after 3 failures" for a Guard set to 5
// shrinks to three resets in a row:
//
//	✗ opens after 3 consecutive failures
//	    at 31ms: the breaker reported closed at 31ms (after op 3)
//	    want: by the spec it is open: it opened at 31ms (after 3 consecutive failed calls, the last call 3) ...
//	schedule:
//	  0: +10ms for 30ms dep reset()
//	timeline:
//	        10ms  ── dep reset() begins (step 0, until 40ms)
//	        11ms  op 1 failed in 1ms: connection reset by peer                   [closed]    spec: 1/3 failures
//	        21ms  op 2 failed in 1ms: connection reset by peer                   [closed]    spec: 2/3 failures
//	✗       31ms  op 3 failed in 1ms: connection reset by peer                   [closed]
//
// Run them with
//
//	go test ./examples/breaker -v
//
// A failing breaker.Check also writes the shrunk schedule and an HTML
// report under testdata/shakedown/<test name>/ and prints the command that
// replays it (SHAKEDOWN_REPLAY=<file> go test -run ...).
package breaker
