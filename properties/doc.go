// Package properties asks the questions of a failure test: it draws
// schedules of faults that shrink well, judges what a run recorded against
// invariants, and ties the two together in [Check].
//
// # A check
//
//	func TestCheckoutSurvivesTheDatabase(t *testing.T) {
//		env := harness.New(t)
//		db := env.Postgres("db")
//		properties.Check(t, properties.Config{
//			Reset: env.Reset, // every fault healed, every node up, before each run
//			World: func(t testing.TB) sim.World {
//				pool := newPool(t, db.PoolConfig()) // the client under test, fresh for each run
//				return sim.World{
//					Targets:  []sim.Target{db},
//					Workload: checkoutLoad(pool),
//					Samplers: []sim.Sampler{pgxcheck.Pool("db", pool)},
//				}
//			},
//			Invariants: []properties.Invariant{
//				properties.LatencyQuantile{Q: 0.99, Max: 300 * time.Millisecond, Window: sim.During},
//				properties.Recovery{Within: 2 * time.Second},
//				properties.PoolReleased{Pool: "db"},
//			},
//		})
//	}
//
// Each iteration calls Config.Reset, builds the World (the clients under
// test, afresh, so that a pool one run wedged cannot fail the next), runs
// one drawn schedule with the workload (sim.Run) and judges every
// invariant on the History. [Shared] hands the same World to every run
// when the same clients can serve them all. The settings shared with the
// runner (cooldown, drain, sampling) are a [sim.Settings] embedded in the
// Config. When an invariant breaks, rapid shrinks the schedule to the
// smallest that still breaks it, and Check fails the test with the
// findings, the schedule as JSON, its seed and one command that replays it:
//
//	replay: SHAKEDOWN_REPLAY=testdata/shakedown/TestCheckoutSurvivesTheDatabase/schedule.json go test -run '^TestCheckoutSurvivesTheDatabase$' ./checkout
//
// The schedule file and an HTML report (sim.WriteReport) are written next
// to each other. Each Check also logs a coverage line: the fault kinds that
// took effect on each target, the windows that held ops, and how often each
// invariant could be judged.
//
// Only the standard library, rapid and porcupine are compiled with this
// package: the samplers of real clients are in packages of their own,
// [github.com/shakedown/shakedown/properties/pgxcheck],
// [github.com/shakedown/shakedown/properties/redischeck] and
// [github.com/shakedown/shakedown/properties/sqlcheck].
//
// # Schedules
//
// [Schedules] returns a rapid generator of schedules within [Bounds]: the
// targets and the fault kinds each takes ([Aim]), the most steps, the
// horizon, the shortest and longest fault, and the ranges of the faults'
// own fields ([Values]). Every schedule it draws is valid, and its draws
// are laid out so that rapid shrinks toward fewer steps, earlier and
// shorter faults, and milder kinds: a property that fails on "any
// blackhole of db lasting 2 s or more" shrinks to exactly
//
//	0: +0s for 2s db blackhole()
//
// # Invariants
//
// An [Invariant] is a name and a pure function of a *sim.History. It
// returns nil when it held, [Violations] (what, when, by how much) when it
// broke, and [*NoEvidence] when the history could not tell: no ops in its
// window, or no fault that took effect. "No evidence" is not a pass;
// [Evaluate] turns errors into [Findings] with a [Verdict], and Check
// fails when an invariant was never judged in any run.
//
// The windows an invariant judges (the whole run, the calm before the
// first fault, each fault, the recovery after the last heal) are sim's
// ([sim.Phase]), and which ops belong to one is decided by one rule,
// [sim.Window.Holds], the same the HTML report counts with.
//
//   - latency: [LatencyQuantile] (overall or per [sim.Phase]: before, during
//     each fault, after the last heal; optionally per op kind) and
//     [MaxLatency] (the client's timeout plus a margin);
//   - errors: [ErrorRate] per window, [Recovery] (no failure later than D
//     after the last heal), [FailFast] (failed calls return within X while
//     a fault holds);
//   - pools: [PoolReleased], [AcquireWait], [ReconnectStorm] over the
//     samples of pgxcheck.Pool, redischeck.Pool, sqlcheck.Pool or [sim.Dials] (which
//     counts the dials of an http.Transport, a go-redis or pgx dialer, or
//     a database/sql connector), and [NoGoroutineLeak] over
//     sim.Goroutines();
//   - bulkheads: [Isolation] (op kinds that do not use the faulted target
//     keep their bounds);
//   - retries: [Amplification] (calls reaching a dependency, from a
//     [sim.Counter], stay under k times the calls made);
//   - data: [Linearizable], a porcupine check of a key-value history in
//     which an op of unknown outcome may or may not have been applied.
//
// [Func] makes an invariant of any function.
//
// # Iterations, deadlines, replays
//
// A real iteration takes as long as its schedule, so Check runs
// Config.Iterations of them (default 10; SHAKEDOWN_ITERATIONS overrides).
// rapid v1.3.0 has only the process-wide -rapid.checks, so Check counts
// the iterations itself and turns rapid's further draws away; -rapid.checks
// remains an upper bound. No run starts unless it can end before the
// test's deadline. rapid caps shrinking at -rapid.shrinktime (default
// 30s); raise it for real dependencies.
//
// While shrinking, a schedule that was already run takes its recorded
// verdict instead of running again: rapid tries many draws that decode to
// the same schedule, and real runs vary a little from one to the next.
//
// SHAKEDOWN_REPLAY=<file> makes Check run exactly the schedule in that
// file once ([Replay]); [RunSchedule] runs a schedule from code. [Explore] is Check
// without the verdict: it returns a [Result] (the shrunk failing
// iteration, its history and findings, the coverage), so a suite can
// assert that a fragile configuration is caught.
//
// # Simulation
//
// With Config.Simulate set, every run happens in its own testing/synctest
// bubble on a World built inside it (a sim.Network with its fakes and
// the clients under test), so a 10-second schedule takes microseconds of
// wall time and rapid can shrink through hundreds of runs. The same
// bounds, invariants and schedule files serve both speeds.
//
// SHAKEDOWN_SELFCHECK=1 checks the simulation itself: every simulated run
// runs twice with the same schedule and seed, on a World built afresh
// (Config.Reset is not called for the second), and if the two histories
// differ (compared with sim.Diff) the run gets a Broken finding "the
// simulation is deterministic" naming the first op that differs. The
// package's own tests run with it on. A difference means something in
// the World escapes the virtual clock's order: a goroutine that waits on
// something outside the bubble, state shared between runs, or timers of
// the code under test firing at the same instant as each other.
//
// One caveat found here: go-redis keeps the timers of its pool waits in a
// process-wide sync.Pool, and a timer made in one bubble cannot be used in
// another, so a simulated go-redis client needs more pool connections than
// ops in flight (no op may wait for a connection).
//
// A schedule found in simulation runs against the real world with one
// call: [ReplayOn] loads it, renames its targets to real ones ([Retarget]:
// a simulated "db:5432" finds a harness dependency named "db") and runs
// it once, returning the [Iteration].
//
// # Circuit breakers
//
// Package [github.com/shakedown/shakedown/properties/breaker] verifies a
// breaker against the promises of its configuration, stated as data in a
// breaker.Spec (failure threshold, time open, half-open probes, successes
// to close, call timeout), in virtual time: every generated schedule of
// outages and recoveries of a fake dependency runs in its own bubble,
// about a thousand a second. A judge replays the spec's state machine over
// the observed calls and reports a call that reached the dependency while
// the breaker should have been open, a probe too many, a breaker that
// opened or closed too early or too late, a call that waited past its
// timeout, or a retry that went around an open breaker. Its sub-packages
// failsafecheck and gobreakercheck adapt failsafe-go and sony/gobreaker
// breakers; breaker.Func adapts any other. breaker.Explore returns the
// result instead of failing the test, with the shrunk counterexample and
// its timeline.
package properties
