package properties

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/shakedown/shakedown/sim"
)

// LatencyQuantile holds when the Q-quantile of op latency (from intended
// start to end, failed ops included) stays at or under Max in a window.
// In the During window each fault is judged on its own.
type LatencyQuantile struct {
	// Q is the quantile in (0, 1]: 0.99 for p99, 1 for the maximum.
	Q float64
	// Max is the bound. Required.
	Max time.Duration
	// Window is the part of the run judged (default sim.Overall); the
	// ops it counts are those sim.Window.Holds.
	Window sim.Phase
	// Kinds limits the ops judged to these kinds (default all).
	Kinds []string
}

func (l LatencyQuantile) Name() string {
	return fmt.Sprintf("%s latency <= %v %s%s", quantileName(l.Q), l.Max, l.Window, kindsSuffix(l.Kinds))
}

func (l LatencyQuantile) validate() error {
	return invalid(l.Name(), quantileOK("Q", l.Q), positive("Max", l.Max), phaseOK(l.Window), kindsOK("Kinds", l.Kinds))
}

func (l LatencyQuantile) kinds() []string { return l.Kinds }

func (l LatencyQuantile) Check(h *sim.History) error {
	if err := l.validate(); err != nil {
		return err
	}
	return judged(l.Name(), h, l.Window, l.Kinds, func(sp span) []Violation {
		q, op := quantile(sp.ops, l.Q)
		if q <= l.Max {
			return nil
		}
		return []Violation{{
			Invariant: l.Name(), Window: sp.label, At: sp.from,
			Got:    fmt.Sprintf("%s %v over %d ops (slowest at that rank: op %d %s at %v)", quantileName(l.Q), q, len(sp.ops), op.ID, op.Kind, op.Intended),
			Want:   fmt.Sprintf("<= %v", l.Max),
			Excess: (q - l.Max).String(),
		}}
	})
}

// quantile returns the nearest-rank q-quantile of the ops' latencies and
// the op that has it.
func quantile(ops []sim.Op, q float64) (time.Duration, sim.Op) {
	sorted := slices.Clone(ops)
	slices.SortStableFunc(sorted, func(a, b sim.Op) int { return cmpDur(a.Latency(), b.Latency()) })
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = min(max(i, 0), len(sorted)-1)
	return sorted[i].Latency(), sorted[i]
}

func quantileName(q float64) string {
	if q == 1 {
		return "max"
	}
	return "p" + trimFloat(q*100)
}

func trimFloat(f float64) string { return fmt.Sprintf("%g", math.Round(f*1000)/1000) }

func kindsSuffix(kinds []string) string {
	if len(kinds) == 0 {
		return ""
	}
	return fmt.Sprintf(" for %v", kinds)
}

// MaxLatency holds when no op takes longer than Max, from its intended
// start to its end. Set Max to the client's timeout plus a margin: an op
// that outlives it shows a timeout that is not enforced.
type MaxLatency struct {
	// Max is the bound. Required.
	Max time.Duration
	// Window is the part of the run judged (default sim.Overall); the
	// ops it counts are those sim.Window.Holds.
	Window sim.Phase
	// Kinds limits the ops judged to these kinds (default all).
	Kinds []string
}

func (m MaxLatency) Name() string {
	return fmt.Sprintf("every op <= %v %s%s", m.Max, m.Window, kindsSuffix(m.Kinds))
}

func (m MaxLatency) validate() error {
	return invalid(m.Name(), positive("Max", m.Max), phaseOK(m.Window), kindsOK("Kinds", m.Kinds))
}

func (m MaxLatency) kinds() []string { return m.Kinds }

func (m MaxLatency) Check(h *sim.History) error {
	if err := m.validate(); err != nil {
		return err
	}
	seen := map[uint64]bool{} // an op overlapping two faults is reported once
	return judged(m.Name(), h, m.Window, m.Kinds, func(sp span) []Violation {
		var vs []Violation
		for _, op := range sp.ops {
			if l := op.Latency(); l > m.Max && !seen[op.ID] {
				seen[op.ID] = true
				vs = append(vs, Violation{
					Invariant: m.Name(), Window: fmt.Sprintf("op %d (%s) %s", op.ID, op.Kind, sp.label), At: op.Intended,
					Got: fmt.Sprintf("%v (%s%s)", l, op.Outcome, errSuffix(op.Err)), Want: fmt.Sprintf("<= %v", m.Max), Excess: (l - m.Max).String(),
				})
			}
		}
		return vs
	})
}

func errSuffix(err string) string {
	if err == "" {
		return ""
	}
	const most = 120
	if len(err) > most {
		err = err[:most] + "..."
	}
	return ": " + err
}

// finalOn: an op over Max stays over it (its latency can only grow), and
// stays in its window over the whole run and during each fault: a fault
// not yet reverted ends no earlier than now, after the op's intended
// start. Before the first fault and after the last heal depend on faults
// still to come (and an op before the first fault is steady state).
func (m MaxLatency) finalOn(*sim.History) bool {
	return m.Window == sim.Overall || m.Window == sim.During
}
