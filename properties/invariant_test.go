package properties

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

const ms = time.Millisecond

// op makes an op intended and started at start (ms), ending at end (ms).
func op(id uint64, kind string, start, end int, out sim.Outcome) sim.Op {
	o := sim.Op{ID: id, Kind: kind, Intended: time.Duration(start) * ms, Start: time.Duration(start) * ms, End: time.Duration(end) * ms, Outcome: out}
	if out != sim.OK {
		o.Err = "boom"
	}
	return o
}

func fault(step int, target string, f toxics.Fault, start, end int) sim.FaultEvent {
	return sim.FaultEvent{Step: step, Target: target, Fault: toxics.Spec{Fault: f}, Start: time.Duration(start) * ms, End: time.Duration(end) * ms}
}

func hist(dur int, faults []sim.FaultEvent, ops ...sim.Op) *sim.History {
	return &sim.History{Duration: time.Duration(dur) * ms, Faults: faults, Ops: ops}
}

func samples(name string, pairs ...float64) []sim.Sample {
	var out []sim.Sample
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, sim.Sample{At: time.Duration(pairs[i]) * ms, Name: name, Value: pairs[i+1]})
	}
	return out
}

// blackholeDB holds from 1000 to 2000 ms.
var blackholeDB = []sim.FaultEvent{fault(0, "db", toxics.Blackhole{}, 1000, 2000)}

type invCase struct {
	name string
	inv  Invariant
	h    *sim.History
	want Verdict
	// msg lists fragments the error must contain.
	msg []string
}

func runCases(t *testing.T, cases []invCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.inv.Check(c.h)
			require.Equal(t, c.want, VerdictOf(err), "error: %v", err)
			for _, m := range c.msg {
				require.ErrorContains(t, err, m)
			}
			if c.want == Broken {
				var vs Violations
				if errors.As(err, &vs) {
					for _, v := range vs {
						require.NotEmpty(t, v.Window, "a violation says when")
						require.NotEmpty(t, v.Got, "a violation says what")
					}
				}
			}
		})
	}
}

func TestLatencyQuantile(t *testing.T) {
	// Ten ops before the fault at 10 ms each; during the fault one op
	// takes 900 ms.
	var ops []sim.Op
	for i := range 10 {
		ops = append(ops, op(uint64(i), "get", i*50, i*50+10, sim.OK))
	}
	ops = append(ops, op(10, "get", 1100, 2000, sim.Unknown), op(11, "put", 1200, 1210, sim.OK), op(12, "get", 2500, 2510, sim.OK))
	h := hist(3000, blackholeDB, ops...)
	runCases(t, []invCase{
		{"p99 before holds", LatencyQuantile{Q: 0.99, Max: 20 * ms, Window: sim.Before}, h, Held, nil},
		{"p99 during breaks, naming the fault and the excess", LatencyQuantile{Q: 0.99, Max: 100 * ms, Window: sim.During}, h, Broken,
			[]string{"during fault 0: db blackhole() (1s..2s)", "p99 900ms over 2 ops", "over by 800ms", "op 10"}},
		{"p50 during holds", LatencyQuantile{Q: 0.5, Max: 100 * ms, Window: sim.During}, h, Held, nil},
		{"kind filter leaves the slow get out", LatencyQuantile{Q: 1, Max: 100 * ms, Window: sim.During, Kinds: []string{"put"}}, h, Held, nil},
		{"after holds", LatencyQuantile{Q: 0.99, Max: 20 * ms, Window: sim.After}, h, Held, nil},
		{"overall breaks", LatencyQuantile{Q: 1, Max: 500 * ms}, h, Broken, []string{"over the whole run", "max 900ms"}},
		{"no fault: during has no evidence", LatencyQuantile{Q: 0.99, Max: 100 * ms, Window: sim.During}, hist(3000, nil, ops...), Unjudged,
			[]string{"no fault took effect"}},
		{"a fault that failed to apply is no fault", LatencyQuantile{Q: 0.99, Max: 100 * ms, Window: sim.During},
			hist(3000, []sim.FaultEvent{{Step: 0, Target: "db", Fault: toxics.Spec{Fault: toxics.Down{}}, Err: "no such proxy"}}, ops...), Unjudged,
			[]string{"no fault took effect"}},
		{"empty window has no evidence", LatencyQuantile{Q: 0.99, Max: 100 * ms, Window: sim.During, Kinds: []string{"scan"}}, h, Unjudged,
			[]string{"no ops of kind [scan]"}},
		{"bad quantile is an error", LatencyQuantile{Q: 1.5, Max: time.Second}, h, Broken, []string{"Q = 1.5 is not in (0, 1]: 0.99 for p99"}},
		{"bad window is an error", LatencyQuantile{Q: 0.5, Max: time.Second, Window: 9}, h, Broken, []string{"Window = Phase(9) is not one of"}},
	})
}

func TestMaxLatency(t *testing.T) {
	h := hist(3000, blackholeDB, op(1, "get", 0, 10, sim.OK), op(2, "get", 1100, 1400, sim.Unknown), op(3, "get", 1200, 6200, sim.Unknown))
	runCases(t, []invCase{
		{"breaks on the op that outlived the timeout", MaxLatency{Max: time.Second + 100*ms}, h, Broken,
			[]string{"op 3 (get)", "got 5s (unknown: boom)", "over by 3.9s"}},
		{"holds under a looser bound", MaxLatency{Max: 6 * time.Second}, h, Held, nil},
		{"before the fault holds", MaxLatency{Max: 100 * ms, Window: sim.Before}, h, Held, nil},
		{"zero bound is an error", MaxLatency{}, h, Broken, []string{"Max = 0s must be positive"}},
	})
	// An op overlapping two faults is reported once.
	two := []sim.FaultEvent{fault(0, "db", toxics.Blackhole{}, 1000, 2000), fault(1, "cache", toxics.Down{}, 1500, 2500)}
	err := MaxLatency{Max: time.Second, Window: sim.During}.Check(hist(3000, two, op(1, "get", 1100, 2400, sim.Unknown)))
	var vs Violations
	require.ErrorAs(t, err, &vs)
	require.Len(t, vs, 1)
}

func TestErrorRate(t *testing.T) {
	h := hist(4000, blackholeDB,
		op(1, "get", 0, 10, sim.OK), op(2, "get", 100, 110, sim.OK),
		op(3, "get", 1100, 1200, sim.Failed), op(4, "get", 1300, 1400, sim.Unknown), op(5, "get", 1500, 1510, sim.OK),
		op(6, "get", 2100, 2110, sim.OK), op(7, "get", 3000, 3010, sim.OK))
	runCases(t, []invCase{
		{"before holds at zero", ErrorRate{Max: 0, Window: sim.Before}, h, Held, nil},
		{"during breaks", ErrorRate{Max: 0.5, Window: sim.During}, h, Broken, []string{"2 of 3 ops failed (66.667%", "want <= 50%", "first: op 3"}},
		{"during holds with a loose bound", ErrorRate{Max: 0.7, Window: sim.During}, h, Held, nil},
		{"after holds", ErrorRate{Max: 0, Window: sim.After}, h, Held, nil},
		{"overall", ErrorRate{Max: 0.2, Window: sim.Overall}, h, Broken, []string{"2 of 7 ops failed"}},
		{"after with a fault never reverted has no evidence", ErrorRate{Window: sim.After},
			hist(4000, []sim.FaultEvent{fault(0, "db", toxics.Blackhole{}, 1000, 0)}, op(1, "get", 3000, 3010, sim.OK)), Unjudged,
			[]string{"fault 0 (db) was never reverted"}},
		{"a failed revert counts as never reverted", ErrorRate{Window: sim.After},
			hist(4000, []sim.FaultEvent{{Step: 0, Target: "db", Fault: toxics.Spec{Fault: toxics.Down{}}, Start: time.Second, End: 2 * time.Second, RevertErr: "gone"}},
				op(1, "get", 3000, 3010, sim.OK)), Unjudged, []string{"never reverted"}},
		{"a restart needs no revert", ErrorRate{Window: sim.After},
			hist(4000, []sim.FaultEvent{fault(0, "db", toxics.Restart{}, 1000, 1000)}, op(1, "get", 3000, 3010, sim.OK)), Held, nil},
		{"out of range", ErrorRate{Max: 2}, h, Broken, []string{"Max = 2 is not a fraction in [0, 1]: did you mean 0.02?"}},
	})
}

func TestRecovery(t *testing.T) {
	recovered := hist(5000, blackholeDB,
		op(1, "get", 1100, 2100, sim.Unknown), // fails just after the heal: allowed
		op(2, "get", 2200, 2300, sim.Failed),  // still within 500ms of the heal
		op(3, "get", 2600, 2610, sim.OK), op(4, "get", 4000, 4010, sim.OK))
	slow := hist(5000, blackholeDB, op(1, "get", 2600, 2700, sim.Failed), op(2, "get", 3500, 3600, sim.Unknown), op(3, "get", 4000, 4010, sim.OK))
	runCases(t, []invCase{
		{"recovers within 500ms", Recovery{Within: 500 * ms}, recovered, Held, nil},
		{"fails 1.6s after the heal", Recovery{Within: 500 * ms}, slow, Broken,
			[]string{"op 2 (get) after the last heal at 2s", "got unknown at 3.6s", "1.1s after the recovery deadline"}},
		{"no op late enough", Recovery{Within: 5 * time.Second}, recovered, Unjudged, []string{"lengthen the cooldown"}},
		{"no fault", Recovery{Within: time.Second}, hist(5000, nil, op(1, "get", 0, 10, sim.OK)), Unjudged, []string{"no fault took effect"}},
	})
}

// withWaits is h with one dependency per slice of shares: each its
// share of every 100 ms spent waiting for a CPU, from the run's start.
func withWaits(h *sim.History, shares ...[]float64) *sim.History {
	h.Machine = &sim.Machine{CPUPressure: 0.9}
	for i, sh := range shares {
		h.Machine.Dependencies = append(h.Machine.Dependencies, sim.DependencyCPU{Target: fmt.Sprintf("dep%d", i), Slots: sh})
	}
	return h
}

// waits is n slots of share each after `from` slots of none.
func waits(from, n int, share float64) []float64 {
	s := make([]float64, from+n)
	for i := from; i < from+n; i++ {
		s[i] = share
	}
	return s
}

// TestRecoveryInTheMachinesTime: Recovery counts Within in the time the
// machine let the dependencies run. After a heal at 2s, a dependency
// that waited for a CPU half of every 100 ms moves a 500ms deadline on
// by 500ms (the half of 1s: the stretch it waited in is waited in too),
// at most Within; the most starved dependency counts, slot by slot; a
// dependency idle after the heal (a client waiting on its own timers)
// moves nothing, and neither does a wait before the heal or a run that
// cannot say.
func TestRecoveryInTheMachinesTime(t *testing.T) {
	rec := Recovery{Within: 500 * ms}
	failsAt := func(end int) *sim.History {
		h := hist(5000, blackholeDB, op(1, "get", end-100, end, sim.Failed))
		for i := range 5 {
			h.Ops = append(h.Ops, op(uint64(2+i), "get", 4000+100*i, 4010+100*i, sim.OK))
		}
		return h
	}
	for _, tc := range []struct {
		name   string
		h      *sim.History
		waited time.Duration
	}{
		{"half of every slot", withWaits(failsAt(2900), waits(20, 30, 0.5)), 500 * ms},
		{"at most Within", withWaits(failsAt(2900), waits(20, 30, 1)), 500 * ms},
		{"the most starved, slot by slot", withWaits(failsAt(2900), waits(20, 2, 0.5), waits(22, 2, 0.5)), 200 * ms},
		{"idle after the heal", withWaits(failsAt(2900), waits(0, 20, 0.9)), 0},
		{"a slot nobody could say about", withWaits(failsAt(2900), append(waits(20, 0, 0), -1, 0.5)), 50 * ms},
		{"simulated", failsAt(2900), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			heal, why := lastHeal(tc.h)
			require.Empty(t, why)
			deadline, waited := rec.deadline(tc.h, heal)
			require.Equal(t, tc.waited, waited)
			require.Equal(t, heal+rec.Within+tc.waited, deadline)
			err := rec.Check(tc.h)
			if heal+rec.Within+tc.waited >= 2900*ms {
				require.NoError(t, err, "the op that failed at 2.9s is within the moved deadline")
				return
			}
			require.Error(t, err)
			if tc.waited > 0 {
				require.Contains(t, err.Error(), fmt.Sprintf("heal + 500ms + %v its dependencies waited for a CPU", tc.waited))
			}
		})
	}
}

// TestRecoveryMachineTimePastTheRun: a run whose deadline the machine's
// time moved past its last op has no evidence for Recovery, and says
// why; its last ops, failing on a dependency starved all along, are not
// judged.
func TestRecoveryMachineTimePastTheRun(t *testing.T) {
	h := withWaits(hist(3200, blackholeDB, op(1, "get", 2700, 2900, sim.Failed), op(2, "get", 2850, 2950, sim.Failed)), waits(20, 12, 0.96))
	err := Recovery{Within: 500 * ms}.Check(h)
	var ne *NoEvidence
	require.ErrorAs(t, err, &ne)
	require.Contains(t, ne.Reason, "no op ended after 3s (heal at 2s + 500ms + 500ms its dependencies waited for a CPU); the run ended at 3.2s: lengthen the cooldown")
}

func TestFailFast(t *testing.T) {
	h := hist(4000, blackholeDB, op(1, "get", 1100, 1150, sim.Failed), op(2, "get", 1200, 1900, sim.Unknown), op(3, "get", 1300, 1310, sim.OK))
	runCases(t, []invCase{
		{"breaks on the op that hung", FailFast{Within: 100 * ms}, h, Broken, []string{"op 2 (get)", "unknown after 700ms", "over by 600ms"}},
		{"holds within 1s", FailFast{Within: time.Second}, h, Held, nil},
		{"nothing failed: no evidence", FailFast{Within: 100 * ms}, hist(4000, blackholeDB, op(1, "get", 1100, 1110, sim.OK)), Unjudged,
			[]string{"no op failed while a fault held"}},
		{"no fault: no evidence", FailFast{Within: 100 * ms}, hist(4000, nil), Unjudged, []string{"no fault took effect"}},
	})
}

func TestIsolation(t *testing.T) {
	uses := map[string][]string{"order": {"db", "cache"}, "stock": {"cache"}}
	good := hist(3000, blackholeDB,
		op(1, "order", 1100, 2000, sim.Unknown), // uses db: not judged
		op(2, "stock", 1200, 1210, sim.OK), op(3, "stock", 1300, 1320, sim.OK))
	bad := hist(3000, blackholeDB,
		op(1, "order", 1100, 2000, sim.Unknown),
		op(2, "stock", 1200, 1900, sim.Unknown), op(3, "stock", 1300, 1320, sim.OK))
	runCases(t, []invCase{
		{"stock keeps its bounds while db is down", Isolation{Uses: uses, Max: 50 * ms, MaxErrorRate: 0}, good, Held, nil},
		{"stock slowed by a db fault", Isolation{Uses: uses, Max: 50 * ms, MaxErrorRate: 0}, bad, Broken,
			[]string{"stock ops during fault 0", "although stock does not use db", "1 of 2 ops failed"}},
		{"fault on a shared target judges nothing", Isolation{Uses: uses, Max: 50 * ms},
			hist(3000, []sim.FaultEvent{fault(0, "cache", toxics.Down{}, 1000, 2000)}, op(1, "stock", 1100, 1900, sim.Unknown)), Unjudged,
			[]string{"no op of a kind independent"}},
		{"empty Uses is an error", Isolation{}, good, Broken, []string{"Uses is empty"}},
	})

	// db is faulted from 1s to 2s and cache from 1.5s to 3s: pay ops
	// use db only. The one that both faults touched is db's; the one
	// 300ms after db healed is db's within a Grace of 500ms.
	two := hist(4000, []sim.FaultEvent{fault(0, "db", toxics.Blackhole{}, 1000, 2000), fault(1, "cache", toxics.Down{}, 1500, 3000)},
		op(1, "pay", 1600, 1700, sim.Unknown), op(2, "pay", 2300, 2310, sim.Unknown),
		op(3, "pay", 2600, 2610, sim.OK), op(4, "pay", 2800, 2810, sim.OK))
	payUses := map[string][]string{"pay": {"db"}, "stock": {"cache"}}
	runCases(t, []invCase{
		{"ops of their own target's fault and its grace are not judged", Isolation{Uses: payUses, Grace: 500 * ms}, two, Held, nil},
		{"without a grace, the op after db healed is judged; the one db's fault touched is not", Isolation{Uses: payUses}, two, Broken,
			[]string{"pay ops during fault 1", "1 of 3 ops failed"}},
		{"negative Grace is an error", Isolation{Uses: payUses, Grace: -ms}, two, Broken, []string{"Grace"}},
	})

	// The grace runs in the machine's time, as Recovery's Within does: a
	// pay op failing 600ms after db healed is db's own when db waited for
	// a CPU half of every 100ms after the heal (the 500ms grace moved on
	// by 500ms), and judged when it did not.
	late := func() *sim.History {
		return hist(4000, []sim.FaultEvent{fault(0, "db", toxics.Blackhole{}, 1000, 2000), fault(1, "cache", toxics.Down{}, 1500, 3500)},
			op(1, "pay", 2500, 2600, sim.Failed), op(2, "pay", 3100, 3110, sim.OK), op(3, "pay", 3200, 3210, sim.OK))
	}
	runCases(t, []invCase{
		{"a grace in the machine's time", Isolation{Uses: payUses, MaxErrorRate: 0.1, Grace: 500 * ms}, withWaits(late(), waits(20, 10, 0.5)), Held, nil},
		{"the same op on a machine that fed db", Isolation{Uses: payUses, MaxErrorRate: 0.1, Grace: 500 * ms}, withWaits(late(), waits(20, 10, 0)), Broken,
			[]string{"pay ops during fault 1", "1 of 3 ops failed"}},
		{"simulated: no machine, the wall's time", Isolation{Uses: payUses, MaxErrorRate: 0.1, Grace: 500 * ms}, late(), Broken, []string{"1 of 3 ops failed"}},
	})
}

func TestAmplification(t *testing.T) {
	h := hist(3000, blackholeDB, op(1, "get", 0, 10, sim.OK), op(2, "get", 100, 110, sim.OK))
	h.Samples = samples("db.calls", 0, 40, 3000, 45)
	runCases(t, []invCase{
		{"5 calls for 2 ops under 3x", Amplification{Counter: "db.calls", K: 3}, h, Held, nil},
		{"5 calls for 2 ops over 2x", Amplification{Counter: "db.calls", K: 2}, h, Broken, []string{"5 calls for 2 ops (2.5x)", "over by 1 calls"}},
		{"no samples", Amplification{Counter: "redis.calls", K: 2}, h, Unjudged, []string{`0 samples named "redis.calls"`}},
		{"no ops of kind", Amplification{Counter: "db.calls", K: 2, Kinds: []string{"put"}}, h, Unjudged, []string{"ops of kind [put]"}},
		{"K and Rate zero is an error", Amplification{Counter: "db.calls"}, h, Broken, []string{"K and Rate are both 0"}},
	})
}

func TestPoolInvariants(t *testing.T) {
	base := func(s ...[]sim.Sample) *sim.History {
		h := hist(3000, blackholeDB, op(1, "get", 0, 10, sim.OK), op(2, "get", 2500, 2600, sim.OK))
		for _, x := range s {
			h.Samples = append(h.Samples, x...)
		}
		return h
	}
	released := base(samples("pg.in_use", 0, 0, 1500, 5, 3000, 0))
	leaked := base(samples("pg.in_use", 0, 0, 1500, 5, 3000, 2))
	early := base(samples("pg.in_use", 0, 0, 1500, 5))
	waits := base(samples("pg.wait_count", 0, 0, 1000, 0, 2000, 4, 3000, 4), samples("pg.wait_seconds", 0, 0, 1000, 0, 2000, 2, 3000, 2))
	// dials: 1 before the heal; 9 within the second after it.
	storm := base(samples("pg.dials", 0, 1, 1900, 1, 2100, 5, 2200, 9, 2900, 10))
	calm := base(samples("pg.dials", 0, 1, 1900, 1, 2100, 2, 2200, 3, 2900, 4))
	runCases(t, []invCase{
		{"released", PoolReleased{Pool: "pg"}, released, Held, nil},
		{"two still checked out", PoolReleased{Pool: "pg"}, leaked, Broken, []string{"got 2 in use", "want <= 0"}},
		{"allowance", PoolReleased{Pool: "pg", Max: 2}, leaked, Held, nil},
		{"no sample after the last op", PoolReleased{Pool: "pg"}, early, Unjudged, []string{"after the last op ended at 2.6s"}},
		{"waits too long", AcquireWait{Pool: "pg", Max: 100 * ms}, waits, Broken, []string{"4 acquires waited 500ms on average", "between samples at 1s and 2s"}},
		{"waits within bound", AcquireWait{Pool: "pg", Max: time.Second}, waits, Held, nil},
		{"no wait samples", AcquireWait{Pool: "pg", Max: time.Second}, released, Unjudged, []string{"0 pg.wait_count"}},
		{"storm after heal", ReconnectStorm{Pool: "pg", Max: 5, Per: time.Second, Window: sim.After}, storm, Broken,
			[]string{"after the last heal at 2s: between 1.9s and 2.9s", "got 9 dials"}},
		{"calm after heal", ReconnectStorm{Pool: "pg", Max: 5, Per: time.Second, Window: sim.After}, calm, Held, nil},
		{"storm over the whole run", ReconnectStorm{Pool: "pg", Max: 5}, storm, Broken, []string{"over the whole run: between 0s and 2.9s", "got 9 dials"}},
		{"no dial samples", ReconnectStorm{Pool: "pg", Max: 5}, released, Unjudged, []string{"pg.dials samples"}},
	})
}

func TestNoGoroutineLeak(t *testing.T) {
	h := hist(1000, nil)
	h.Samples = samples("service_goroutines", 0, 10, 500, 40, 1000, 12)
	// The first reading caught 6 ops in flight; the calm before the fault
	// at 400 ms read 4.
	inflight := hist(1000, []sim.FaultEvent{fault(0, "db", toxics.Down{}, 400, 600)})
	inflight.Samples = samples("own", 0, 10, 100, 4, 300, 5, 500, 3, 1000, 6)
	runCases(t, []invCase{
		{"back within slack", NoGoroutineLeak{Slack: 2}, h, Held, nil},
		{"leaked", NoGoroutineLeak{Slack: 1}, h, Broken, []string{"12 goroutines (at 0s: 10)", "over by 1 goroutines"}},
		{"the baseline is the calm before the fault", NoGoroutineLeak{Slack: 1, Counter: "own"}, inflight, Broken, []string{"6 goroutines (at 100ms: 4)"}},
		{"no samples", NoGoroutineLeak{}, hist(1000, nil), Unjudged, []string{`0 "service_goroutines" samples (add the invariant's Sampler()`}},
	})
}

func kv(id uint64, kind, in, out string, start, end int, o sim.Outcome) sim.Op {
	x := op(id, kind, start, end, o)
	x.Input, x.Output = in, out
	return x
}

func TestLinearizable(t *testing.T) {
	runCases(t, []invCase{
		{"sequential history", Linearizable{}, hist(1000, nil,
			kv(1, "put", "x=1", "", 0, 10, sim.OK), kv(2, "get", "x", "1", 20, 30, sim.OK), kv(3, "get", "y", "", 40, 50, sim.OK)), Held, nil},
		{"stale read", Linearizable{}, hist(1000, nil,
			kv(1, "put", "x=1", "", 0, 10, sim.OK), kv(2, "put", "x=2", "", 20, 30, sim.OK), kv(3, "get", "x", "1", 40, 50, sim.OK)), Broken,
			[]string{`key "x"`, "no remaining op can follow"}},
		{"unknown put may have applied", Linearizable{}, hist(1000, nil,
			kv(1, "put", "x=1", "", 0, 10, sim.OK), kv(2, "put", "x=2", "", 20, 900, sim.Unknown), kv(3, "get", "x", "2", 950, 960, sim.OK)), Held, nil},
		{"unknown put may not have applied", Linearizable{}, hist(1000, nil,
			kv(1, "put", "x=1", "", 0, 10, sim.OK), kv(2, "put", "x=2", "", 20, 900, sim.Unknown), kv(3, "get", "x", "1", 950, 960, sim.OK)), Held, nil},
		{"unknown put then both values seen out of order", Linearizable{}, hist(1000, nil,
			kv(1, "put", "x=1", "", 0, 10, sim.OK), kv(2, "put", "x=2", "", 20, 900, sim.Unknown),
			kv(3, "get", "x", "2", 950, 960, sim.OK), kv(4, "get", "x", "1", 970, 980, sim.OK)), Broken, nil},
		{"failed put had no effect", Linearizable{}, hist(1000, nil,
			kv(1, "put", "x=1", "", 0, 10, sim.OK), kv(2, "put", "x=2", "", 20, 30, sim.Failed), kv(3, "get", "x", "2", 40, 50, sim.OK)), Broken, nil},
		{"unknown get constrains nothing", Linearizable{}, hist(1000, nil,
			kv(1, "put", "x=1", "", 0, 10, sim.OK), kv(2, "get", "x", "garbage", 20, 30, sim.Unknown)), Held, nil},
		{"no ops of the kinds judged", Linearizable{Kinds: []string{"put", "get"}}, hist(1000, nil, op(1, "scan", 0, 10, sim.OK)), Unjudged,
			[]string{"no op completed of kind [put get]"}},
		{"a kind without a model is an error, not left out", Linearizable{}, hist(1000, nil, op(1, "scan", 0, 10, sim.OK)), Broken,
			[]string{`kind "scan" has no key-value model`}},
		{"bad input", Linearizable{}, hist(1000, nil, kv(1, "put", "novalue", "", 0, 10, sim.OK)), Broken, []string{`input "novalue" is not key=value`}},
	})
}

func TestEvaluate(t *testing.T) {
	h := hist(3000, blackholeDB, op(1, "get", 1100, 1900, sim.Unknown))
	panicky := Func("panics", func(*sim.History) error { panic("oops") })
	fs := Evaluate(h, []Invariant{
		MaxLatency{Max: time.Second},
		ErrorRate{Max: 0, Window: sim.During},
		FailFast{Within: 100 * ms, Kinds: []string{"put"}},
		panicky,
		nil,
	})
	got := make([]string, len(fs))
	for i, f := range fs {
		got[i] = fmt.Sprintf("%s=%s", f.Invariant, f.Verdict)
	}
	require.Equal(t, []string{
		"every op <= 1s overall=held",
		"error rate <= 0% during=broken",
		"failed ops return within 100ms during faults for [put]=no evidence",
		"panics=broken",
		"invariant 4=broken",
	}, got)
	require.True(t, fs.Broken())
	s := fs.String()
	require.Contains(t, s, "invariant \"panics\" panicked: oops")
	require.Contains(t, s, "1 of 1 ops failed")
	require.False(t, strings.Contains(s, "every op <= 1s overall: held\n    "), "held findings carry no detail")
	require.Equal(t, Broken, Evaluate(nil, []Invariant{MaxLatency{Max: 1}})[0].Verdict)
}

func TestViolationsErrorCaps(t *testing.T) {
	var vs Violations
	for i := range 15 {
		vs = append(vs, Violation{Invariant: "x", Window: fmt.Sprintf("op %d", i), Got: "a", Want: "b"})
	}
	msg := vs.Error()
	require.Equal(t, maxListed+1, strings.Count(msg, "\n")+1)
	require.Contains(t, msg, "... and 5 more")
}
