package properties

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// awayRun is a 3.5 s real run of orders (which use db) and stock lookups
// (cache), one of each every 50 ms, judged with a fault of db from 0 to
// 100 ms laid over it (as graft lays a failing run's over a control):
// orders fail from tripAt on, every lookup answers. db's Link saw
// db(t) requests answered in the 100 ms from t, cache's two in each;
// neither waited for a CPU.
func awayRun(tripAt time.Duration, db func(t time.Duration) float64) *Iteration {
	h := &sim.History{Duration: 3500 * time.Millisecond,
		Faults: []sim.FaultEvent{{Target: "db", Fault: toxics.Spec{Fault: toxics.Latency{Delay: 50 * time.Millisecond}}, Start: 0, End: 100 * time.Millisecond}}}
	var id uint64
	for at := time.Duration(0); at < h.Duration; at += 50 * time.Millisecond {
		order := sim.Op{ID: id, Kind: "orders", Intended: at, Start: at, End: at + 2*time.Millisecond, Outcome: sim.OK}
		if at >= tripAt {
			order.Outcome, order.Err = sim.Unknown, `503 {"error":"postgres: circuit breaker open"}`
		}
		stock := sim.Op{ID: id + 1, Kind: "stock", Intended: at, Start: at, End: at + time.Millisecond, Outcome: sim.OK}
		h.Ops, id = append(h.Ops, order, stock), id+2
	}
	h.Machine = &sim.Machine{CPUPressure: 0.9, Load1: 9}
	for _, target := range []string{"cache", "db"} {
		d := sim.DependencyCPU{Target: target}
		for t := time.Duration(0); t < h.Duration; t += sim.DependencySlot {
			d.Slots, d.Used = append(d.Slots, 0), append(d.Used, 0.01)
		}
		h.Machine.Dependencies = append(h.Machine.Dependencies, d)
	}
	it := &Iteration{History: h}
	answered(it, "cache", func(time.Duration) (float64, time.Duration, float64) { return 2, time.Millisecond, 0 })
	return answered(it, "db", func(t time.Duration) (float64, time.Duration, float64) { return db(t), time.Millisecond, 0 })
}

// awayUses are the dependencies awayRun's ops use, as Isolation names them.
var awayUses = map[string][]string{"orders": {"db"}, "stock": {"cache"}}

// dbUntil is db answering two requests in each 100 ms until trip, and
// none after it (a breaker open for good); dbProbing answers none after
// trip either, but for a probe every 500 ms.
func dbUntil(trip time.Duration) func(t time.Duration) float64 {
	return func(t time.Duration) float64 {
		if t < trip {
			return 2
		}
		return 0
	}
}

func dbProbing(trip time.Duration) func(t time.Duration) float64 {
	return func(t time.Duration) float64 {
		if t < trip || t%(500*time.Millisecond) == 0 {
			return 2
		}
		return 0
	}
}

// TestStayedAway: a control whose orders fail from 1 s to its end breaks
// a Recovery of 2 s judged with a fault healing at 100 ms laid over it.
// Where db, which orders use, was asked nothing for the 2 s before the
// last failing order (a breaker tripped by a slow spell and open for a
// minute), the client stayed away on its own: a slower machine does not
// explain that. Where its breaker probed db every 500 ms, or where the
// Link did not time db's answers, it may.
func TestStayedAway(t *testing.T) {
	rec := Recovery{Within: 2 * time.Second}
	const s = time.Second
	untilTrip, probing := dbUntil(s), dbProbing(s)
	away := awayRun(s, untilTrip)
	require.Equal(t, Broken, Evaluate(away.History, []Invariant{rec})[0].Verdict, "the run breaks the Recovery")

	require.Equal(t, "its orders ops were still failing at 3.452s, refused at once, and in the 2s before, nothing was asked of db (no request answered or waiting at its Link): the client stayed away on its own",
		stayedAway(away.History, rec, awayUses))
	require.NotEmpty(t, stayedAway(away.History, &rec, awayUses), "a *Recovery is a Recovery")
	require.Empty(t, stayedAway(awayRun(s, probing).History, rec, awayUses), "a breaker that probes asks")
	require.Empty(t, stayedAway(away.History, MaxLatency{Max: s}, awayUses), "not a Recovery")
	require.Empty(t, stayedAway(away.History, rec, nil), "without Uses an order might use cache, which was asked")

	untimed := awayRun(s, untilTrip)
	untimed.History.Machine.Dependencies[1].Answered, untimed.History.Machine.Dependencies[1].AnswerTime = nil, nil
	require.Empty(t, stayedAway(untimed.History, rec, awayUses), "db's answers not timed")

	held := awayRun(s, untilTrip)
	answered(held, "db", func(t time.Duration) (float64, time.Duration, float64) {
		if t < s {
			return 2, time.Millisecond, 0
		}
		return 0, 0, 1 // one request waiting, never answered
	})
	require.Empty(t, stayedAway(held.History, rec, awayUses), "a request held unanswered was asked")

	early := awayRun(2500*time.Millisecond, dbUntil(2*s))
	require.Empty(t, stayedAway(early.History, rec, awayUses), "db was asked within the 2 s before the last failing order")

	frozen := awayRun(s, untilTrip)
	for i, op := range frozen.History.Ops {
		if op.Kind == "orders" && op.Outcome != sim.OK && op.Start >= 3*s {
			frozen.History.Ops[i].End = op.Start + 800*time.Millisecond // timed out, not refused
		}
	}
	require.Empty(t, stayedAway(frozen.History, rec, awayUses), "orders timing out, not refused")
}

// TestControlDoesNotExplainAClientThatStayedAway: the control beside a
// failing schedule explains its Recovery when the control breaks it too,
// judged with the schedule's fault times laid over it, unless the
// control's client stayed away from db on its own.
func TestControlDoesNotExplainAClientThatStayedAway(t *testing.T) {
	rec := Recovery{Within: 2 * time.Second}
	iso := Isolation{Uses: awayUses, Q: 0.99, Max: time.Second, MaxErrorRate: 0.05}
	const s = time.Second
	always := func(time.Duration) float64 { return 2 }
	failing := awayRun(s, always)
	failing.Schedule = sim.Schedule{Steps: []sim.Step{{At: 0, For: 100 * time.Millisecond, Target: "db", Fault: toxics.Latency{Delay: 50 * time.Millisecond}}}}
	failing.Findings = Evaluate(failing.History, []Invariant{rec})
	base := awayRun(10*s, always) // never fails
	base.History.Faults = nil
	for _, tc := range []struct {
		name    string
		control *Iteration
		explain bool
	}{
		{"a breaker open for a minute", awayRun(s, dbUntil(s)), false},
		{"a breaker that probes", awayRun(s, dbProbing(s)), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.control.History.Faults = nil
			log := &logTB{TB: t}
			x := &explorer{t: log, cfg: Config{Invariants: []Invariant{rec, iso}}, base: base}
			why := x.explains(failing, tc.control, measure(tc.control.History), rec.Name())
			if tc.explain {
				require.Contains(t, why, "the control broke it too, judged with the failing run's fault times laid over it")
				return
			}
			require.Empty(t, why)
			require.Contains(t, strings.Join(log.lines, "\n"), "the client stayed away on its own: a slower machine does not explain it")
		})
	}
}

// TestStandsWhenTheClientStayedAway: a failure one of whose runs that
// broke shows its client staying away from db after the heal stands
// before any rule of the machine's is asked; one whose runs all show the
// client asking again is left to them.
func TestStandsWhenTheClientStayedAway(t *testing.T) {
	rec := Recovery{Within: 2 * time.Second}
	iso := Isolation{Uses: awayUses, Q: 0.99, Max: time.Second, MaxErrorRate: 0.05}
	invs := []Invariant{rec, iso}
	const s = time.Second
	judged := func(it *Iteration) *Iteration { it.Findings = Evaluate(it.History, invs); return it }
	probing, away := dbProbing(s), dbUntil(s)
	held := judged(awayRun(10*s, probing))
	first := judged(awayRun(s, probing))
	first.again = []*Iteration{held, judged(awayRun(s, away))}
	require.Equal(t, rec.Name()+", run 2 of those that broke: its orders ops were still failing at 3.452s, refused at once, and in the 2s before, nothing was asked of db (no request answered or waiting at its Link): the client stayed away on its own",
		awayIn(first, invs))

	log := &logTB{TB: t}
	x := &explorer{t: log, cfg: Config{Invariants: invs}}
	require.True(t, x.stands(first, "iteration 1"))
	require.Contains(t, strings.Join(log.lines, "\n"), "shakedown: iteration 1: no rule of the machine's applies: "+rec.Name())

	first.again = []*Iteration{held, judged(awayRun(s, probing))}
	require.Empty(t, awayIn(first, invs), "every run that broke shows the client asking again")
	require.False(t, x.stands(first, "iteration 1"))
}
