// Package properties asks the questions of a failure test: it draws
// schedules of faults that shrink well, judges what a run recorded against
// invariants, and ties the two together in [Check].
//
// # A first check
//
// This test runs as it is (it is the package's TestDocExample): an HTTP
// client with a 200ms timeout against a fake server on a simulated
// network, with generated schedules of faults in virtual time.
//
//	func TestClientSurvivesFaults(t *testing.T) {
//		properties.Check(t, properties.Config{
//			Simulate: true, // virtual time: every run in a testing/synctest bubble of its own
//			World: func(t testing.TB) sim.World {
//				n := sim.NewNetwork(1) // in-memory network, faults on its endpoints
//				t.Cleanup(func() { n.Close() })
//				api, err := n.FakeHTTP("api", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
//				if err != nil {
//					t.Fatal(err)
//				}
//				// The client under test: a timeout, and the simulated network.
//				client := &http.Client{Timeout: 200 * time.Millisecond, Transport: &http.Transport{DialContext: n.Dial}}
//				t.Cleanup(client.CloseIdleConnections)
//				get := func(ctx context.Context, _ string) (string, error) {
//					req, err := http.NewRequestWithContext(ctx, http.MethodGet, api.URL(), nil)
//					if err != nil {
//						return "", err
//					}
//					resp, err := client.Do(req)
//					if err != nil {
//						return "", err
//					}
//					return "", resp.Body.Close()
//				}
//				return sim.World{
//					Targets:  n.Targets(),
//					Workload: sim.Workload{Driver: sim.OpenLoop{Rate: 50}, Kinds: []sim.OpKind{{Name: "get", Do: get}}},
//				}
//			},
//			Invariants: []properties.Invariant{
//				properties.MaxLatency{Max: 300 * time.Millisecond},  // the timeout, and a margin
//				properties.Recovery{Within: 500 * time.Millisecond}, // working again 500ms after the last heal
//			},
//		})
//	}
//
// Take the Timeout away and Check fails: nothing bounds a request any
// more (a pause or a blackhole holds it for as long as it lasts), and the
// failure shrinks to a short schedule that still breaks the bound, such as
// 400ms of 151ms latency each way (a round trip of 302ms).
//
// # A check of real dependencies
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
// Config, and those of the exploration (iterations, seed, shrinking,
// confirmation, where failures go) an [Exploration]. When an invariant
// breaks, and breaks again when the schedule is rerun, rapid shrinks the
// schedule to the smallest that still breaks it, and Check fails the test
// with the findings, how often it reproduced, the schedule as JSON, its
// seed and one command that replays it:
//
//	replay: SHAKEDOWN_REPLAY=testdata/shakedown/TestCheckoutSurvivesTheDatabase/schedule.json go test -run '^TestCheckoutSurvivesTheDatabase$' ./checkout
//
// The schedule file and an HTML report (sim.WriteReport) are written next
// to each other. Each Check also logs a coverage line: the fault kinds that
// took effect on each target, the windows that held ops, the ops the
// framework missed, and how often each invariant could be judged.
//
// # The path of a check
//
// A verdict blames a fault only for what the fault caused. Check (and
// [Explore]) goes through these steps, the same at both speeds:
//
//  1. The check itself is checked before any run: the World has targets
//     and op kinds; the bounds name targets it has, and faults they take;
//     each invariant's parameters are sound (ErrorRate{Max: 5} is an
//     error that asks whether 0.05 was meant) and the op kinds, targets
//     and samples it names exist; the cooldown can fill the windows the
//     invariants judge (a Recovery.Within as long as the cooldown could
//     never be judged); the longest schedule, after the baseline, can end
//     before the test's deadline. A mistake is an error now, not a
//     verdict later. [RunSchedule], [Replay] and [ReplayOn] check the same,
//     and a schedule that cannot end before the deadline (a replayed
//     "at": "1000h") is an error at once.
//  2. Steady state first: one fault-free baseline run (an empty schedule),
//     judged by the same invariants. "No evidence" is expected there (no
//     fault took effect); a broken invariant is not: the baseline is
//     rerun Exploration.Reproduce times, and the check stops with a
//     verdict of its own, "the system does not hold without faults"
//     (Result.Steady), and nothing is shrunk. The baseline also measures
//     the machine: its latencies per op kind (p50, p99, max) are logged,
//     and a latency bound (LatencyQuantile, MaxLatency) under 1.5 times
//     the same figure without faults is too tight to judge on this
//     machine: it is not judged, and Check fails saying so, rather than
//     toss a coin.
//  3. Explore: each iteration runs a drawn schedule and judges it. Within
//     every run, an invariant whose violations all began before the first
//     fault took effect (and which the history up to that moment breaks
//     too) broke without faults: it goes to Iteration.Steady, not to the
//     schedule's findings, and Check reports it as the steady state's,
//     with the number of runs it happened in. A run in which the
//     framework missed more than a tenth of the ops (not started on
//     time, cut off by the run's own end) is not judged at all, and says
//     why. A panic in a run (in Reset, World, an op) and a testing/synctest
//     bubble left with goroutines blocked in it (a client that leaks
//     them) are findings of that run, with their stacks, and shrink like
//     any other; runs that went missing for any other reason fail the
//     check.
//  4. Reproduce before believing: a schedule that broke is rerun
//     Exploration.Reproduce times (default 3). If it does not break again
//     every time, it is flaky: reported with its rate and its schedule,
//     not shrunk, failing the test unless Exploration.AllowFlaky (and the
//     search goes on for a failure that does reproduce). While shrinking,
//     a candidate that breaks is rerun once and counts only if it breaks
//     again, and the shrunk schedule is rerun until it has been Reproduce
//     times; the report says "reproduced k of n". A bug that shows only
//     some of the time (a breaker that trips on some runs of a short
//     fault) shrinks to the edge where it shows in one run of two; when
//     the shrunk schedule does not reproduce every time (or the machine
//     explains it, below), the schedules shrinking accepted on its way
//     are tried, the latest first (bisected on a long path, at most 5),
//     and the latest that reproduces every time and stands is reported,
//     said to be "not 1-minimal"; the first failure, "not shrunk", when
//     none does.
//  5. A control beside the failure (real runs): a machine that runs the
//     test process, but slowly (every timer late by tens of
//     milliseconds, as on a loaded CI runner), breaks latency bounds and
//     deadlines that the baseline measured on a quieter machine. Once a
//     failure has been rerun (whether it reproduced or came and went),
//     the fault-free baseline runs again right beside it (one more run), judged by the same invariants and the
//     same noise-floor check; an invariant judged only around faults
//     (Recovery, FailFast) is judged on it with the failing run's fault
//     times laid over it, none applied, and counts only if the first
//     baseline judged so held. If the control explains every invariant
//     the schedule broke (it broke it too, or has its bound inside its
//     own noise floor), the machine got slower, not the service: the
//     failure's findings are Unjudged with that reason (which invariant,
//     the first baseline's and the control's figures), it is neither
//     shrunk nor reported Broken (Result.Slower), and the search goes
//     on; Check logs it ("UNJUDGED, not Broken"), summary.json lists it
//     under "unjudged", and Check fails only when those invariants were
//     judged in no other run. One invariant the control does not
//     explain, and the failure stands. A slower machine delays answers
//     but does not withhold them: where the failing run left ops without
//     an answer through the whole drain (sim.ErrHung: a client with no
//     timeout, hung) and the control left none, the control explains
//     no invariant those ops break, judged alone or by their absence,
//     however far its noise floor rose. Nor does it keep a running
//     service from asking: where the control breaks a Recovery only
//     judged with the fault times laid over it, and its Links say that
//     for a whole Within before the last op that broke it the ops were
//     refused at once while nothing was asked of the dependencies they
//     use (Isolation.Uses; every timed one where it names none), the
//     client stayed away on its own (a breaker that a slow spell of the
//     machine tripped and that stays open long after it: the
//     slow-recovery bug), and the control does not explain it. The
//     same goes for the failure's own runs: where one that broke a
//     Recovery shows its client staying away so after the heal, the
//     failure stands, flaky or not, and none of the rules below is
//     asked (the machine may have tripped the breaker; keeping it open
//     is the client's). The shrunk failure gets a control too; when the
//     machine explains it, a schedule shrinking accepted before it is
//     tried, as above.
//     In simulation time is virtual, and there is no control.
//  6. A dependency starved of CPU (real runs): before its controls, a
//     flaky failure that broke only Recovery and Isolation bounds is set
//     aside the same way when the machine record (sim.Machine) says that,
//     for each bound it broke, a dependency was kept from the CPUs in the
//     runs that broke and not in those that held: for a Recovery, a
//     dependency the schedule faulted, after the last heal; for an
//     Isolation, one that its judged ops use and the schedule did not
//     fault, up to the last heal (a breaker the machine opened before the
//     fault). There it waited for a CPU at least twice as long, and 10
//     points of the time more, in every run that broke as in every one
//     of at least two reruns that held; it used no more CPU than they did,
//     beyond what the connections it was handed explain (a client
//     storming it makes it busy, not starved; see "Churn" below) or,
//     where its Link timed its answers, while its clients asked no more
//     requests of it a second than in them; where its Link timed them,
//     it kept its requests waiting there at least twice as long on
//     average, and 5 ms more, as in the runs that held, or held them all
//     unanswered (one that answered as it did in them, or that nobody
//     asked, slowed nothing: a client that never comes back to it after
//     the heal leaves it idle, however starved); and the machine's CPU
//     pressure was at least 50%.
//  7. The reconnect control (real runs, contended machines): a run
//     without faults opens no connection, so it cannot show a machine
//     that is slow at reconnecting, and on a runner whose CPUs other work
//     has, reconnecting after any fault that cut connections (a database
//     forks and authenticates each one) can outlast a Recovery bound
//     however well the client does it. When the fault-free control does
//     not explain a failure that broke only Recovery, that reproduced or
//     that rule 8 found breaking more often than fault-free runs, and
//     the machine's CPU pressure was at least 50% in every run that
//     broke, one more run resets each faulted target that takes a reset,
//     for Fault.Min, healing where the schedule healed: the mildest
//     schedule the bounds allow that makes the client reconnect to what
//     the schedule faulted. The failure is set aside the same way when
//     that run broke the same Recovery; a reset target, after the heal,
//     waited for a CPU in it and in every run that broke at least twice
//     as long, and 10 points of the time more, as in the whole fault-free
//     control, or, where the control was starved too, at least as long
//     and 15% of the time while it used twice the CPU it used there (it
//     was working, and kept from the CPUs: a client waiting on its own
//     timers leaves it idle); and it used no more CPU from the
//     schedule's first fault on, in the runs that broke, than the reset's
//     run over the same stretch, or than the run itself before its first
//     fault, beyond what the connections it was handed explain (the
//     faults made no storm; a pause or a latency only moves the work it
//     held back past the heal, and a starved database whose clients time
//     out and reconnect is busy from the start, and forks and
//     authenticates each new connection: see "Churn" below) or, where
//     its Link timed its answers, while asked no more requests a second
//     than in the reset's run. A reconnect control that held may have run at a
//     calmer moment than the runs that broke: it runs again, in turns
//     with the schedule, as rule 8 runs its pairs, until one breaks the
//     same Recovery (judged as above), the schedule is found to break
//     more often than the resets (it stands), or cannot be (set aside:
//     the machine's noise). A client that storms its dependency after every
//     reset is not told apart on a contended machine; ReconnectStorm and
//     Amplification judge storms, and on an idle machine this never runs.
//  8. Flaky on a contended machine (real runs): a flaky failure that
//     broke only timing bounds (Recovery, Isolation, LatencyQuantile,
//     MaxLatency, FailFast, ErrorRate, AcquireWait), that neither rule 6
//     nor the control explained, on a machine whose CPU pressure was at
//     least 50% in every run that broke, is believed only when its
//     schedule breaks more often than fault-free runs beside it: its
//     reruns (not the run that broke first, which was picked because it
//     broke) are one sample, fault-free controls judged as in step 5 the
//     other, and one more of each runs, in turns, while a one-sided
//     Fisher exact test could still find the schedule's rate the greater
//     at 0.05 within 4 more pairs. Found so, the failure stands, flaky
//     (one that broke only Recovery gets the reconnect control, rule 7);
//     otherwise it is set aside the same way, with both counts: on that
//     machine, the schedule cannot be told from the noise. A failure
//     that breaks in most runs of its schedule stands; one that breaks
//     once in four is Unjudged there (on an idle machine, flaky). A
//     flaky failure that broke anything else in any of its runs (a lost
//     write, a leak, a storm, a Func) always stands.
//  9. A second fault, the machine's (real runs, contended machines):
//     applied first, before rules 5 to 8, to every failure once it has
//     been rerun, reproduced or flaky, and to each candidate of
//     shrinking. A failure that broke only Recovery and Isolation bounds
//     is set aside the same way when, in every run of it that broke, a
//     dependency that the schedule was not faulting, and that every op
//     breaking the bound uses (as the check's Isolation Uses say: a Redis
//     kept from the CPUs explains no order failing on Postgres, and
//     without an Isolation no Recovery is set aside so), waited for a CPU
//     at least 15% of the time where the bound judges it (a Recovery:
//     after the last heal, one that no fault touched in the Within before
//     it; an Isolation: over the faults of other targets, less its own
//     faults and their Grace), used no more CPU there than a quarter
//     over the most it used in the fault-free baseline and in the runs of
//     the schedule that held, or over what it used before the run's
//     first fault, beyond what the connections it was handed explain (a
//     client storming it makes it busy from the fault on, and that is the
//     schedule's doing; a starved database whose clients time out and
//     reconnect works more from before any fault) or, where its Link
//     timed its answers (sim.DependencyCPU.Answered), while its clients
//     asked no more requests of it a second than those runs did (a
//     starved database burns more CPU on the same requests; a storm sends
//     more of them), and, where its Link timed them, kept its requests
//     waiting there at least twice as long on average, and 5 ms more, as
//     in those runs and before the first fault, or held them all
//     unanswered there (a starved dependency that
//     answered as it always did, or that nobody asked, slowed nothing:
//     ops that fail whenever the cache does, with no fallback, fail
//     before they reach it), while the machine's CPU pressure was at
//     least 50%. The schedule then never broke
//     without a second fault that it did not contain: a cache fault that
//     is harmless alone, beside a
//     database the machine slows, fills a bulkhead or opens a breaker.
//     One run that broke with every such dependency fed, and the failure
//     stands. A shrink candidate that breaks so does not count as
//     failing, so shrinking does not chase the machine's fault into
//     schedules that fault the database themselves. A service fragile
//     only when two dependencies are slow at once is Unjudged so on a
//     contended machine, not passed; schedules that slow both test it.
//
// Churn. Rules 6, 7 and 9 hold only when the starved dependency did no
// more work than the runs they compare it with. A database the machine
// starves works more for a reason of the machine's own: its clients'
// calls time out, are cancelled (over connections of their own) and
// their connections replaced, and it forks and authenticates a process
// for each. So each real run records, beside each dependency's CPU, the
// connections its Link handed it every 100 ms (sim.DependencyCPU.Opened),
// and the work those rules allow also covers the connections it was
// handed where they judge, at the CPU a connection cost it in the runs
// compared with (fitted over their windows with connections; rule 7
// also takes the reset's run's whole stretch after its reset, where a
// starved database does a connection's work seconds late; rule 9, where
// those runs were handed none, the runs that broke before their first
// fault), when those
// connections are no storm: at most two for each op there that failed
// (its cancel and its replacement), beyond the most one of those runs
// was handed. A client that dials in a loop is handed more, and one that
// storms with requests over its pooled connections does work that no
// connection explains: both still stand. The logs quote the figures
// ("20 connections opened (10 ops failed there) at 4.1 ms of CPU each,
// as the runs compared with paid, explain 0.02 CPUs").
//
// Answers. Where a dependency's Link times its answers (every harness
// target does), rules 6, 7 and 9 also ask it whether it kept the ops
// waiting where the bound broke, and count requests instead of CPU for
// work (above). For a Recovery, "where the bound broke" runs from the
// heal to the end of the last op that broke it: a client that recovered
// is answered quickly and often afterwards, and those answers would water
// a slow reconnect's lateness down.
//
// Each Check logs what the baseline, the confirmations and the controls
// cost beside the other runs ("time: ... in all; the fault-free baseline
// took ...").
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
// own fields ([Values]). Every schedule it draws is valid and has a step.
// Each draws from a swarm, a few (target, kind) pairs or all of them, so
// a crash gets schedules of its own instead of a share among latencies;
// steps overlap where their faults compose (latency with bandwidth, a node
// fault during a link fault). The draws are laid out so that rapid
// shrinks toward fewer steps, earlier and shorter faults, and milder
// kinds: a property that fails on "any blackhole of db lasting 2 s or
// more" shrinks to exactly
//
//	0: +0s for 2s db blackhole()
//
// A target that takes partitions (harness's Env.Network, sim's
// Network.Partitions) gets from [Aim] the names it can cut apart, as
// [TargetKinds] Members, once it has two; a drawn partition cuts some of
// them off from the rest, and shrinks toward fewer cut off.
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
// [sim.Window.Holds], the same the HTML report counts with. An op whose
// outcome the framework itself missed (not started on time, cut off by the
// run's end) is never evidence about the service: no latency, error or
// recovery judgement counts it.
//
// The invariants of this package check their own parameters before any
// run, and against the World: ErrorRate{Max: 5} is an error ("Max = 5 is
// not a fraction in [0, 1]: did you mean 0.05?"), and so are an unknown
// window, a negative duration, and an op kind, target or sample an
// invariant names that the World lacks.
//
//   - latency: [LatencyQuantile] (overall or per [sim.Phase]: before, during
//     each fault, after the last heal; optionally per op kind) and
//     [MaxLatency] (the client's timeout plus a margin);
//   - errors: [ErrorRate] per window, [Recovery] (no failure later than D
//     after the last heal, D counted in the time the machine let the
//     dependencies run: in a real run, the time the most starved of them
//     waited for a CPU after the heal moves the deadline on, at most D
//     more), [FailFast] (failed calls return within X while
//     a fault holds; Grace or After leave out the failures a breaker must
//     see before it opens, so one that opens at its threshold holds and one
//     that never opens breaks);
//   - pools: [PoolReleased], [AcquireWait], [ReconnectStorm] (dials in
//     each window, or per stretch: "at most 8 connections opened during
//     each fault") over the samples of pgxcheck.Pool, redischeck.Pool,
//     sqlcheck.Pool or [sim.Dials] (which counts the dials of an
//     http.Transport, a go-redis or pgx dialer, or a database/sql
//     connector);
//   - goroutines: [NoGoroutineLeak] over the service's goroutines alone,
//     told apart from the framework's by their stacks
//     ([NoGoroutineLeak.Sampler]; Packages names the service's), or a
//     count of one's own;
//   - bulkheads: [Isolation] (op kinds that do not use the faulted target
//     keep their bounds; an op a fault on its own target touched, or
//     Grace after that fault healed, in the machine's time as Recovery's
//     Within, is not judged);
//   - retries: [Amplification] (calls reaching a dependency, from a
//     [sim.Counter], stay under K times the ops made and, with Rate, under
//     a number a second; judged during each fault, a retry storm is not
//     diluted by the healthy time around it);
//   - data: [Linearizable], a porcupine check of a key-value history (get,
//     put, append, compare-and-set) or of a model of one's own, in which an
//     op of unknown outcome may or may not have been applied, and an op it
//     cannot read is an error, never left out.
//
// [Func] makes an invariant of any function.
//
// # Iterations, deadlines, replays
//
// A real iteration takes as long as its schedule, so Check runs
// Exploration.Iterations of them (default 10; SHAKEDOWN_ITERATIONS
// overrides). rapid v1.3.0 has only the process-wide -rapid.checks, so
// Check counts the iterations itself and turns rapid's further draws away;
// -rapid.checks remains an upper bound. No run starts unless it can end
// before the test's deadline. rapid caps shrinking at -rapid.shrinktime
// (default 30s); raise it for real dependencies, or bound it with
// Exploration.ShrinkTime.
//
// While shrinking, a schedule that was already run takes its recorded,
// confirmed verdict instead of running again: rapid tries many draws that
// decode to the same schedule, and real runs vary a little from one to
// the next.
//
// SHAKEDOWN_REPLAY=<file> makes Check run exactly the schedule in that
// file once ([Replay]); a file without steps fails, saying so.
// [RunSchedule] runs a schedule from code. [Explore] is Check without the
// verdict: it returns a [Result] (the baseline, the shrunk failing
// iteration with its history, findings and confirmation, the coverage),
// so a suite can assert that a fragile configuration is caught.
//
// # Shrinking and the summary
//
// After rapid's shrinking, [Minimize] takes a failure to a 1-minimal
// schedule: no step can be removed, no two steps on one target that
// overlap or are at most a resolution apart merged into one spanning both
// (with the fault of either, the milder kind first), no step's kind
// replaced by a milder one on its target, no offset, duration or value
// moved one grain toward its mild end, without the failure going away
// (every candidate confirmed as the first failure was). The merge is what
// takes an outage cut in two, where neither half fails alone, to one step.
// Exploration.ShrinkTime bounds rapid's part only; the 1-minimal pass is
// bounded by a count of runs (2000) and the test's deadline, so that its
// result does not depend on the machine's speed. The report says
// "1-minimal", or how many candidates were left unrun.
//
// Every Check writes summary.json next to its report (in Exploration.Dir,
// default testdata/shakedown/<test name>/). Its schema, version 1 (a field
// may be added without a new version; none changes meaning or goes away):
//
//	{
//	  "version": 1,
//	  "test": "TestCheckout",
//	  "verdict": "failed",            // held | failed | flaky | steady_state_broken
//	  "shard": "2/4",                 // SHAKEDOWN_SHARD; absent for the whole
//	  "invariants": [                 // in the Config's order
//	    {"name": "p99 <= 300ms during faults", "verdict": "broken", "judged": 9, "broken": 4}
//	  ],                              // verdict: held | broken | unjudged (no evidence)
//	  "coverage": {"runs": 14, "schedules": 10, "faults": {"db": {"latency": 3, "down": 2}}},
//	  "findings": [{
//	    "signature": "p99 <= 300ms during faults | db latency",
//	    "invariant": "p99 <= 300ms during faults",
//	    "shape": ["db latency"],      // each step's target and kind, in order
//	    "status": "new",              // new | still_failing | fixed | regressed
//	    "flaky": false,
//	    "seed": 42,
//	    "schedule": {"steps": [...]}, // the shrunk schedule, as in schedule.json
//	    "report": "report.html"       // this check's report of it, if it wrote one
//	  }],
//	  "corpus_added": ["corpus/found-3f2a9c1b7d4e.json"], // SHAKEDOWN_EXPLORE
//	  "unjudged": [{                  // failures set aside as the machine's (a control run explained them)
//	    "invariants": ["every op <= 1s overall"],
//	    "schedule": "+0s for 500ms db latency(67ms)",
//	    "seed": 42,
//	    "reason": "the machine got slower, not the service: ..."
//	  }]
//	}
//
// A finding's signature is its invariant and the shape of its shrunk
// schedule, never its offsets or magnitudes, so the same bug found again
// with other numbers is the same finding. Against the summary already
// there, a finding is new, still_failing, or regressed (fixed there);
// one there that no longer fails is kept as fixed (and stays, so that its
// return shows as regressed). A Check that stopped at a broken baseline
// marks nothing fixed. Findings are sorted by signature.
//
// # In CI: shards and nightly exploration
//
// SHAKEDOWN_SHARD=i/n (i counted from 1) makes this process run iteration
// k of each exploration only when (k-1) mod n = i-1; every shard runs the
// baseline and the corpus. The shards must share rapid's seed (RAPID_SEED
// or -rapid.seed, nonzero), else the exploration is an error; the n
// shards then run disjoint iterations that together are the schedules of
// SHAKEDOWN_SHARD=1/1, because a sharded exploration's coverage guidance
// counts the pairs each schedule drew rather than those that took effect.
// A sharded Check logs, rather than fails on, invariants its own runs had
// no evidence for: cmd/shakedown's summary command merges the shards'
// summaries and judges them together.
//
// SHAKEDOWN_EXPLORE is a nightly budget: a number of schedules (in place
// of Exploration.Iterations; rapid's -rapid.checks must allow it) or a
// duration the search may take. A confirmed failure it finds is written
// into the corpus folder as corpus/found-<hash>.json, named by its
// findings' signatures so that a rerun adds no second file; commit it.
//
// # Simulation
//
// With Config.Simulate set, every run happens in its own testing/synctest
// bubble on a World built inside it (a sim.Network with its fakes and
// the clients under test), so a 10-second schedule takes microseconds of
// wall time and rapid can shrink through hundreds of runs. The same
// bounds, invariants and schedule files serve both speeds.
//
// A simulated search draws its schedules in batches of 8 (one rapid
// check each) and judges a batch in order, the runs after its first
// failure counting for nothing, so a seed finds the same failure however
// the runs are made. With Exploration.Parallel above 1 a batch's runs,
// and a failure's confirming runs, go side by side on that many
// goroutines (runtime.GOMAXPROCS(0) for every core): about 1.6 to 1.9
// times the schedules a second on 2 cores. It is not the default, since
// runs side by side must share nothing: a logs.Capture built outside
// World and read by the invariants, or process-wide settings (a global
// OpenTelemetry provider, slog.SetDefault), would mix their records.
// Rapid's shrinking runs one candidate at a time: which one comes next
// depends on the last one's verdict. The 1-minimal pass after it asks
// about its candidates in a known order (the steps to remove, the merges,
// the milder kinds, and in a bisection the next value with the ones after
// it either way), so with Parallel above 1 it runs up to Parallel of them
// side by side, ahead of its asking; what it never asks about counts for
// nothing, and it ends at the same schedule.
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
