package properties

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// withConns sets the connections db was handed in each 100 ms of it:
// opened(t) in the slot from t.
func withConns(it *Iteration, opened func(t time.Duration) float64) *Iteration {
	d := &it.History.Machine.Dependencies[0]
	d.Opened = nil
	for i := range d.Used {
		d.Opened = append(d.Opened, opened(time.Duration(i)*100*time.Millisecond))
	}
	return it
}

// withFailures adds n failed ops of kind, ending from `from` on, 100 ms
// apart.
func withFailures(it *Iteration, kind string, from time.Duration, n int) *Iteration {
	for i := range n {
		end := from + time.Duration(i)*100*time.Millisecond
		it.History.Ops = append(it.History.Ops, sim.Op{ID: uint64(len(it.History.Ops)), Kind: kind, Start: end - 50*time.Millisecond, End: end, Outcome: sim.Failed, Err: "timeout"})
	}
	return it
}

// at is 1 in the slot from t, 0 elsewhere.
func at(t time.Duration, n float64) func(time.Duration) float64 {
	return func(s time.Duration) float64 {
		if s == t {
			return n
		}
		return 0
	}
}

// The reset's run shows what a connection costs db: 2 connections
// opened at 3s and 0.4 CPUs more than its usual 0.1 in that slot, 20 ms
// of CPU each. A run without connections prices none.
func TestPriceConns(t *testing.T) {
	const s = time.Second
	reset := withConns(pausedRun(toxics.Reset{}, 2900*time.Millisecond, 3*s, 0.6, func(t time.Duration) float64 {
		if t == 3*s {
			return 0.5
		}
		return 0.1
	}), at(3*s, 2))
	p := priceConns([]*Iteration{reset}, "db")
	require.InDelta(t, 0.02, p.cost, 1e-9)
	require.Equal(t, 2.0, p.most)

	quiet := withConns(pausedRun(toxics.Pause{}, 0, 0, 0.02, func(time.Duration) float64 { return 0.1 }), at(-1, 0))
	require.Zero(t, priceConns([]*Iteration{quiet}, "db").cost, "no connection to price")
	require.Zero(t, priceConns([]*Iteration{pausedRun(toxics.Pause{}, 0, 0, 0.02, func(time.Duration) float64 { return 0.1 })}, "db").cost, "not counted")
	require.Zero(t, priceConns([]*Iteration{reset}, "cache").cost, "another target")

	both := priceConns([]*Iteration{reset, quiet}, "db")
	require.InDelta(t, 0.02, both.cost, 1e-9, "a run without connections adds nothing to the fit")
	require.Equal(t, 2.0, both.most)

	// A service's start: 4 connections beside its first queries, 0.2 CPU
	// seconds more (50 ms a connection, as the fit through the origin
	// mostly says: 35 ms), then two reconnects of 2 at 5 ms each. The
	// median of the windows' ratios, 5 ms, is the lesser.
	started := withConns(pausedRun(toxics.Reset{}, 2900*time.Millisecond, 3*s, 0.6, func(t time.Duration) float64 {
		switch t {
		case 0:
			return 2.1
		case 2 * s, 3 * s:
			return 0.2
		}
		return 0.1
	}), func(t time.Duration) float64 {
		switch t {
		case 0:
			return 4
		case 2 * s, 3 * s:
			return 2
		}
		return 0
	})
	p = priceConns([]*Iteration{started}, "db")
	require.InDelta(t, 0.005, p.cost, 1e-9)
	require.Equal(t, 8.0, p.most)
}

// Twenty connections over the 4 s from the first fault, at 20 ms each,
// explain 0.10 CPUs when ten ops failed there (two connections each at
// most, beyond the 2 of the reset); with three failures they are a storm
// of dials, and uncounted they explain nothing.
func TestChurnAllowance(t *testing.T) {
	const s = time.Second
	p := connPrice{cost: 0.02, most: 2}
	every := func(t time.Duration) float64 {
		if t >= s && t < 3*s {
			return 1
		}
		return 0
	}
	run := func(failures int) *Iteration {
		it := withConns(pausedRun(toxics.Pause{}, s, 3*s, 0.6, func(time.Duration) float64 { return 0.1 }), every)
		return withFailures(it, "orders", 1100*time.Millisecond, failures)
	}
	from := []interval{{s, math.MaxInt64}}
	cpus, figures := p.allowance(run(10).History, "db", from, nil)
	require.InDelta(t, 0.1, cpus, 1e-9)
	require.Equal(t, "20 connections opened (10 ops failed there) at 20.0 ms of CPU each, as the runs compared with paid, explain 0.10 CPUs", figures)

	cpus, figures = p.allowance(run(3).History, "db", from, nil)
	require.Zero(t, cpus)
	require.Equal(t, "20 connections opened, more than 2 for each of the 3 ops that failed there beyond the most a run compared with opened (2): a storm of dials", figures)

	cpus, figures = p.allowance(run(10).History, "db", from, func(kind string) bool { return kind == "stock" })
	require.Zero(t, cpus, "the ops that failed do not use db: they account for none of its connections")
	require.Contains(t, figures, "a storm of dials")

	cpus, figures = p.allowance(pausedRun(toxics.Pause{}, s, 3*s, 0.6, func(time.Duration) float64 { return 0.1 }).History, "db", from, nil)
	require.Zero(t, cpus)
	require.Empty(t, figures, "not counted: nothing to say")

	cpus, figures = connPrice{most: 2}.allowance(run(10).History, "db", from, nil)
	require.Zero(t, cpus)
	require.Equal(t, "20 connections opened, but the runs compared with put no price on one", figures)
}

// The reconnect control's work test (rule 7) with connections counted: a
// database paused from 1s to 3s whose clients' calls time out and
// reconnect works more from the fault on (0.25 CPUs) than the reset's
// run and than before the fault. The twenty connections it was handed,
// for ten failed ops, explain 0.10 CPUs of it at the reset's price: the
// machine's. The same work with three failed ops is a storm of dials, and
// with no connection a storm of requests: both stand.
func TestReconnectStarvedAllowsChurn(t *testing.T) {
	const s = time.Second
	control := withConns(pausedRun(toxics.Pause{}, 0, 0, 0.02, func(time.Duration) float64 { return 0.1 }), at(-1, 0))
	control.History.Faults, control.Schedule = nil, sim.Schedule{}
	reset := withConns(pausedRun(toxics.Reset{}, 2900*time.Millisecond, 3*s, 0.6, func(t time.Duration) float64 {
		if t == 3*s {
			return 0.5
		}
		return 0.1
	}), at(3*s, 2))
	churning := func(failures int, conns bool) *Iteration {
		it := pausedRun(toxics.Pause{}, s, 3*s, 0.6, func(t time.Duration) float64 {
			if t < s {
				return 0.1
			}
			return 0.25
		})
		opened := at(-1, 0)
		if conns {
			opened = func(t time.Duration) float64 {
				if t >= s && t < 3*s {
					return 1
				}
				return 0
			}
		}
		return withFailures(withConns(it, opened), "orders", 1100*time.Millisecond, failures)
	}
	why, not := reconnectStarved("db", reset, control, []*Iteration{churning(10, true)}, nil, nil)
	require.Empty(t, not)
	require.Contains(t, why, "used 0.25 CPUs in those from the first fault on (20 connections opened)")
	require.Contains(t, why, "(beyond those, the connections it was handed: run 1: 20 connections opened (10 ops failed there) at 20.0 ms of CPU each, as the runs compared with paid, explain 0.10 CPUs)")

	why, not = reconnectStarved("db", reset, control, []*Iteration{churning(3, true)}, nil, nil)
	require.Empty(t, why)
	require.Contains(t, not, "more work than the reset made, and than before the faults: ")
	require.Contains(t, not, "a storm of dials")

	why, not = reconnectStarved("db", reset, control, []*Iteration{churning(10, false)}, nil, nil)
	require.Empty(t, why)
	require.Contains(t, not, "more work than the reset made, and than before the faults: ")
	require.Contains(t, not, "(0 connections opened)")
}

// Rule 9 with connections counted: db, not faulted, starved and busier
// after the heal (0.25 CPUs against 0.1 before the fault and without
// faults) is the churn of its clients when the connections it was handed
// there (one every 100 ms, for five failed orders) explain the rest, at
// the price the fault-free baseline paid for its pool's four (10 ms of
// CPU each). In a run that was handed none, the rest is a storm of
// requests, and the failure stands.
func TestUnscheduledAllowsChurn(t *testing.T) {
	rec := Recovery{Within: 300 * time.Millisecond}
	invs := []Invariant{rec, Isolation{Uses: map[string][]string{"orders": {"db"}, "stock": {"cache"}}, MaxErrorRate: 0.01}}
	base := unscheduledRun(0.9, 0.05, 0.1, 0.1, "")
	base.History.Faults, base.Schedule = nil, sim.Schedule{}
	db := &base.History.Machine.Dependencies[1]
	db.Used[0] = 0.5
	db.Opened = make([]float64, len(db.Used))
	db.Opened[0] = 4
	// churn is a run that broke, db handed a connection every 100 ms
	// after the heal when conns, and, when pricedBefore, 2 in one slot
	// before the fault with 0.2 CPUs more there (10 ms each).
	churn := func(conns bool, pricedBefore ...bool) *Iteration {
		it := unscheduledRun(0.95, 0.4, 0.25, 0.1, "", rec.Name())
		d := &it.History.Machine.Dependencies[1]
		d.Opened = make([]float64, len(d.Used))
		if len(pricedBefore) > 0 && pricedBefore[0] {
			d.Used[2], d.Opened[2] = 0.3, 2
		}
		for i := 10; i < 20 && conns; i++ {
			d.Opened[i] = 1
		}
		return it
	}
	again := func(first *Iteration, runs ...*Iteration) *Iteration {
		first.again = runs
		return first
	}
	why, not := unscheduled(again(churn(true), churn(true)), base, invs)
	require.Empty(t, not)
	require.Contains(t, why, "used 0.25/0.25 CPUs there against 0.10/0.10 before the first fault and at most 0.12 without faults and in the runs that held (beyond those, the connections it was handed: run 1: 10 connections opened (5 ops failed there) at 10.0 ms of CPU each, as the runs compared with paid, explain 0.10 CPUs; run 2: ")

	why, not = unscheduled(again(churn(true), churn(false)), base, invs)
	require.Empty(t, why)
	require.Contains(t, not, "db: used 0.25 CPUs after the last heal (run 2 of those that broke) against 0.10 before the first fault and 0.12 without faults and in the runs that held; 0 connections opened")

	// Where the runs compared with were handed no connection (a pool
	// filled before the run began), the price is what a connection cost
	// db in the runs that broke before their first fault; a run whose
	// time before the fault priced none stands, as before.
	db.Opened[0], db.Used[0] = 0, 0.1
	why, not = unscheduled(again(churn(true, true), churn(true, true)), base, invs)
	require.Empty(t, not)
	require.Contains(t, why, "10 connections opened (5 ops failed there) at 10.0 ms of CPU each")
	why, not = unscheduled(again(churn(true), churn(true)), base, invs)
	require.Empty(t, why)
	require.Contains(t, not, "10 connections opened, but the runs compared with put no price on one")
}

// The reconnect control's own price: a starved database handed 4
// connections by the reset at 2.9s does their work over the 2 s after
// (0.2 CPUs against 0.1 before): 50 ms each, where the windows around
// the connections see 7.5 ms. A run paused from 1s whose 20 connections
// for 10 failed ops made it work 0.25 CPUs from then on (0.04 over what
// the reset's run and its own time before the fault allow) is the
// machine's at the reset's price, and would stand at the windows'.
func TestResetPrice(t *testing.T) {
	const s = time.Second
	control := withConns(pausedRun(toxics.Pause{}, 0, 0, 0.02, func(time.Duration) float64 { return 0.1 }), at(-1, 0))
	control.History.Faults, control.Schedule = nil, sim.Schedule{}
	slow := func(t time.Duration) float64 {
		if t >= 3*s {
			return 0.2
		}
		return 0.1
	}
	reset := withConns(pausedRun(toxics.Reset{}, 2900*time.Millisecond, 3*s, 0.6, slow), at(3*s, 4))
	require.InDelta(t, 0.05, resetPrice(reset, "db"), 1e-9)
	require.InDelta(t, 0.0075, priceConns([]*Iteration{reset, control}, "db").cost, 1e-9, "the windows' price")

	require.Zero(t, resetPrice(withConns(pausedRun(toxics.Reset{}, 2900*time.Millisecond, 3*s, 0.6, slow), at(-1, 0)), "db"), "no connection after the reset")
	require.Zero(t, resetPrice(withConns(pausedRun(toxics.Reset{}, 2900*time.Millisecond, 3*s, 0.6, func(time.Duration) float64 { return 0.1 }), at(3*s, 4)), "db"), "no more work after it")
	require.Zero(t, resetPrice(withConns(pausedRun(toxics.Reset{}, 200*time.Millisecond, 300*time.Millisecond, 0.6, slow), at(300*time.Millisecond, 4)), "db"), "too little before the reset to compare with")
	require.Zero(t, resetPrice(pausedRun(toxics.Reset{}, 2900*time.Millisecond, 3*s, 0.6, slow), "db"), "not counted")
	// Its pool's first connections before the reset count against those after.
	filled := withConns(pausedRun(toxics.Reset{}, 2900*time.Millisecond, 3*s, 0.6, slow), func(t time.Duration) float64 {
		switch t {
		case 0:
			return 29
		case 3 * s:
			return 4
		}
		return 0
	})
	require.Zero(t, resetPrice(filled, "db"), "no more connections a second after the reset than before it")

	churning := withFailures(withConns(pausedRun(toxics.Pause{}, s, 3*s, 0.6, func(t time.Duration) float64 {
		if t < s {
			return 0.1
		}
		return 0.25
	}), func(t time.Duration) float64 {
		if t >= s && t < 3*s {
			return 1
		}
		return 0
	}), "orders", 1100*time.Millisecond, 10)
	why, not := reconnectStarved("db", reset, control, []*Iteration{churning}, nil, nil)
	require.Empty(t, not)
	require.Contains(t, why, "20 connections opened (10 ops failed there) at 50.0 ms of CPU each, as the runs compared with paid, explain 0.25 CPUs")
}
