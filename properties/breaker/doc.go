// Package breaker verifies a circuit breaker against what its
// configuration promises, in virtual time, in seconds:
//
//	func TestBreaker(t *testing.T) {
//		breaker.Check(t, breaker.Config{
//			New: func() breaker.Breaker {
//				cb := gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
//					MaxRequests: 2,
//					Timeout:     2 * time.Second,
//					ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 5 },
//				})
//				return gobreakercheck.Breaker(cb, 300*time.Millisecond) // each call bounded to 300ms
//			},
//			Spec: breaker.Spec{FailureThreshold: 5, OpenFor: 2 * time.Second, HalfOpenProbes: 2,
//				SuccessesToClose: 2, CallTimeout: 300 * time.Millisecond},
//		})
//	}
//
// The expectation is a [Spec], stated as data: the classic breaker opens
// after FailureThreshold consecutive failed calls, stays open OpenFor,
// lets HalfOpenProbes probes through, closes after SuccessesToClose
// successful ones, and no call through it takes longer than CallTimeout.
//
// [Check] draws schedules of outages of a fake dependency (latency,
// blackholes, resets, refused connections, pauses, restarts; see
// [Kinds]), runs each against a fresh breaker built by Config.New while
// calls go through it, and judges every call the breaker let through,
// every call it turned away and every state it reported against the
// spec's state machine. The calls come at Config.Rate around the moments
// the breaker's behaviour can change (an outage begins or ends, a call
// fails, a probe starts or ends, an open time runs out, the spec wants it
// closed again) and ever more sparsely away from them, so a run costs
// about the same number of calls, a few hundred, whatever the
// configuration's time scale: a 60s open time as a 500ms one. Every run
// has a testing/synctest bubble of its own, so a run of several seconds
// of virtual time takes about a millisecond, and hundreds of schedules a
// second or two. When a
// schedule breaks the spec, rapid shrinks it to the smallest that still
// does; Check fails the test with the violations, the spec, the schedule
// and the run's timeline, writes the schedule file and an HTML report
// under testdata/shakedown/<test name>/, and prints the command that
// replays it (SHAKEDOWN_REPLAY=<file> go test -run ...). A check in which
// the breaker never had to open fails too: it proves nothing.
//
// [Explore] returns what it found instead of failing the test, so a suite
// can assert that a misconfiguration is caught; [RunSchedule] runs one
// schedule and returns its [Iteration].
//
// The breaker under test is a [Breaker]: the packages failsafecheck and
// gobreakercheck adapt failsafe-go and sony/gobreaker breakers, and [Func]
// adapts any other.
package breaker
