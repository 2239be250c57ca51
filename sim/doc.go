// Package sim runs a schedule of faults against targets while a workload
// runs, and records what happened on one timeline: the [History].
//
// # A first run
//
// This test runs as it is (it is the package's TestDocExample): a client
// with a 200ms timeout calls a fake HTTP server on the simulated network
// while a 2s blackhole holds, in virtual time (it takes milliseconds).
//
//	func TestBlackholeOfAnAPI(t *testing.T) {
//		synctest.Test(t, func(t *testing.T) {
//			n := sim.NewNetwork(1) // an in-memory network; faults act on its endpoints
//			defer n.Close()
//			api, err := n.FakeHTTP("api", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
//			if err != nil {
//				t.Fatal(err)
//			}
//			client := &http.Client{Timeout: 200 * time.Millisecond, Transport: &http.Transport{DialContext: n.Dial}}
//			defer client.CloseIdleConnections()
//			get := func(ctx context.Context, _ string) (string, error) {
//				req, err := http.NewRequestWithContext(ctx, http.MethodGet, api.URL(), nil)
//				if err != nil {
//					return "", err
//				}
//				resp, err := client.Do(req)
//				if err != nil {
//					return "", err
//				}
//				return "", resp.Body.Close()
//			}
//			sched, err := sim.ParseSchedule([]byte(`{"steps":[{"at":"1s","for":"2s","target":"api","fault":{"kind":"blackhole"}}]}`))
//			if err != nil {
//				t.Fatal(err)
//			}
//			h, err := sim.Run(t.Context(), sim.Plan{
//				World: sim.World{
//					Targets:  n.Targets(),
//					Workload: sim.Workload{Driver: sim.OpenLoop{Rate: 50}, Kinds: []sim.OpKind{{Name: "get", Do: get}}},
//				},
//				Schedule: sched,
//			})
//			if err != nil {
//				t.Fatal(err)
//			}
//			for _, w := range h.Windows() { // before the fault, during it, after the heal
//				t.Logf("%s: %s", w.Label, h.Stats(w, ""))
//			}
//			// The check: the timeout bounds every call, even in the blackhole.
//			if s := h.Stats(h.Windows()[1], ""); s.Max > 250*time.Millisecond {
//				t.Errorf("a call took %v during the blackhole", s.Max)
//			}
//		})
//	}
//
// It logs each window of the run:
//
//	before the first fault: 50 ops, 0 errors (0.0%), p50 0s p90 0s p99 0s max 0s
//	fault 0: api blackhole(): 101 ops, 100 errors (99.0%), p50 200ms p90 200ms p99 200ms max 200ms
//	after the last heal: 50 ops, 0 errors (0.0%), p50 0s p90 0s p99 0s max 0s
//
// Package properties builds on this: it draws the schedules, judges
// invariants over the History and shrinks a failure.
//
// # A run
//
// A [Schedule] says which fault holds on which target, from when and for
// how long. It has a JSON form a person can write by hand, and a one-line
// text form per step for logs:
//
//	{"steps":[
//	  {"at":"1s","for":"2s","target":"db","fault":{"kind":"blackhole"}},
//	  {"at":"4s","target":"db","fault":{"kind":"restart"}}
//	]}
//
//	0: +1s for 2s db blackhole()
//	1: +4s for 0s db restart()
//
// A [Target] is anything a fault can be aimed at: a dependency of package
// harness (a Toxiproxy link and its container), or an endpoint of the
// simulated network in this package. [Run] validates the schedule against
// the targets, then applies each step at its offset and reverts it when
// its duration ends, while a [Workload] issues ops:
//
//	h, err := sim.Run(ctx, sim.Plan{
//		World: sim.World{
//			Targets: []sim.Target{db, cache},
//			Workload: sim.Workload{
//				Driver: sim.OpenLoop{Rate: 200}, // ops per second
//				Kinds: []sim.OpKind{
//					{Name: "orders", Weight: 3, Do: placeOrder}, // touches Postgres
//					{Name: "stock", Do: readStock},              // touches Redis only
//				},
//				Timeout: time.Second,
//			},
//			Samplers: []sim.Sampler{sim.Goroutines()},
//		},
//		Settings: sim.Settings{Logger: slog.Default()},
//		Schedule: sched,
//		Seed:     seed,
//	})
//
// A [Plan] is the [World] a run acts on and observes, the [Settings] that
// tune it (every zero value a working default), the schedule and the seed.
// The run lasts until the schedule's last revert plus [Settings.Cooldown];
// then the ops in flight get [Settings.Drain] to finish, and the samplers
// are read until two readings agree ([Settings.Settle]): that quiet reading
// ends the History.
// If ctx is cancelled, every fault applied is reverted before Run returns;
// a fault that fails to apply or revert is in the History and in the
// error, never swallowed. Every fault applied and reverted is logged with
// log/slog, with the seed and the step.
//
// # Load
//
// [OpenLoop] issues ops at a fixed rate and measures each op's latency
// from when it was meant to start, so a system that stalls cannot hide its
// latency by slowing the load. [ClosedLoop] runs N workers back to back.
// Each op draws its kind and input from the run's seed, so a seed replays
// the same ops; its context carries its ID ([OpID]) and a W3C traceparent
// ([Traceparent]) an HTTP workload can send on. An op's error decides its
// [Outcome]: [OK], [Failed] (nothing reached the server, such as a refused
// connection) or [Unknown] (a timeout or a reset, whose effect is unknown);
// see [Classify]. An op whose outcome the framework did not observe (due
// but never started, or cut off by the end of the run before its own
// timeout) is [Missed]: it says nothing of the service, and
// [History.Missed] counts it.
//
// # Time
//
// Every timestamp is an offset from the run's start, read with time.Since
// from one start time. Inside a [testing/synctest] bubble the clock is
// virtual: a 10-second schedule runs in microseconds of wall time and
// every step starts exactly on its offset. The same code runs on the wall
// clock against real dependencies, where a step starts within
// microseconds to a millisecond of its offset.
//
// # Determinism
//
// In a bubble, the same seed and schedule give the same History, op for
// op, whatever the workload's concurrency. Goroutines woken at the same
// virtual instant run in an order the Go scheduler picks, so Run hands
// out turns: the schedule's steps, the starts of ops, and on the
// simulated network each connection's data, deadlines, accepts and the
// faults acting on it, when they fall on the same instant, go one at a
// time in a fixed order, each once what the previous one set off has come
// to rest (synctest.Wait). Timers of the code under test (a handler's
// time.Sleep, a client's retry timer, an op's context deadline) are not
// ordered among themselves, only before the turns of their instant.
// [Diff] compares two histories; package properties checks every
// simulated run this way when SHAKEDOWN_SELFCHECK=1. While Run runs in a
// bubble, no other goroutine of the bubble may call synctest.Wait (the
// turns then go on in order, without waiting for each to come to rest).
//
// # Simulated dependencies
//
// [NewNetwork] gives an in-memory network whose endpoints are Targets and
// whose fakes stand in for real servers, so a whole run, dependencies
// included, fits in a synctest bubble and explores thousands of schedules
// in seconds. The same Schedule and History serve the real dependencies of
// package harness. [Network.Partitions] is the network itself as a target,
// named [NetworkTarget] as harness's is, for [toxics.Partition] faults
// between endpoints that dial each other with [Network.DialFrom].
// [Network.DNS] is the simulated name server, named [DNSTarget] as
// harness's is, with the same records and DNS faults: once it exists,
// [Network.Dial] resolves db.shakedown.test through it, with Go's own
// resolver, in virtual time.
//
// A client that keeps timers across bubbles cannot run in them: a timer
// made in one bubble and used in another is a fatal error of the runtime
// ("select on synctest channel from outside bubble"). go-redis (v9.23)
// does so when every connection of its pool is taken: it waits for one
// on a timer from a process-wide sync.Pool, which another bubble may have
// made. So in simulation give go-redis a PoolSize above the workload's
// concurrency (its default, 10 per GOMAXPROCS, runs out at GOMAXPROCS=1
// as soon as 10 ops wait on a blackhole): its pool then never waits.
//
// # Clock faults
//
// An endpoint has a clock of its own, [Endpoint.Now]: the client's clock
// (the bubble's) plus an offset that [toxics.ClockSkew] (while it lasts)
// and [toxics.ClockJump] (from its start; after its revert too, unless
// Back) set. [FakeKV] computes expiry on it (SET with EX, PX, EXAT, PXAT;
// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT; TTL, PTTL), so a lock whose expiry
// a client computed on its own clock and sent as a time expires early on
// a server whose clock is ahead, and a TTL running across a step expires
// early or late. A [FakeHTTP] handler reads the clock with Now (FakeHTTP
// embeds its Endpoint), and so can any server behind [Network.Listen],
// through [Network.Endpoint]. A steady skew does not change a TTL the
// server sets and counts itself: it changes absolute times exchanged
// between client and server, and durations that span its start or end.
//
// testing/synctest gives a bubble one clock, so this is what cannot be
// done: code that calls time.Now, time.Since or a timer directly reads
// the bubble's clock, whatever the faults (only code that asks its
// endpoint is skewed); the Go runtime's timers, deadlines and time.Sleep
// run on the bubble's clock, so no timer fires early or late; monotonic
// readings cannot jump (Now returns wall-clock readings, without a
// monotonic part); and an offset is a step, never a drift of the rate.
// The clock kinds are simulation-only: harness targets do not support
// them, [Schedule.Validate] refuses a step aiming one at such a target
// and says why, and harness.Node.Apply refuses them with the same reason.
//
// # Reading a history
//
// [History.Windows] cuts the timeline into the calm before the first
// fault, each fault, and the recovery after the last heal (a [Phase] each);
// [Window.Holds] is the one rule of which ops a window holds, used by the
// report and by the invariants of package properties alike.
// [History.Stats] gives the count, error rate and latency quantiles of the
// ops in a window, optionally of one kind:
//
//	for _, w := range h.Windows() {
//		fmt.Println(w.Label, h.Stats(w, "orders"))
//	}
//
// [Counter] and [Dials] sample counts a client keeps or does not keep
// (requests made, connections opened), next to [Goroutines].
//
// A History is written and read as JSON ([History.WriteJSON],
// [ReadHistory]), and as a self-contained HTML report ([WriteReport]):
// latency over time with every op a point, the fault windows of each
// target, error rates per window and the schedule. [SaveReport] writes it
// to the test's artifact directory (kept with go test -artifacts), and
// [SaveReportOnFailure] does so when the test fails.
package sim
