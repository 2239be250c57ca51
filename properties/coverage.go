package properties

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// Coverage counts what the runs of an exploration exercised: which fault
// kinds took effect on which targets, which windows held ops, and how often
// each invariant could be judged. A verdict is only as good as its
// evidence; Coverage shows how much there was.
type Coverage struct {
	// Runs is the number of runs counted.
	Runs int
	// Faults counts the faults that took effect, by target and kind;
	// NotApplied those that did not.
	Faults     map[string]map[toxics.Kind]int
	NotApplied int
	// Windows counts the runs in which the window held ops (During: any
	// fault's window).
	Windows map[sim.Phase]int
	// Judged counts, per invariant name, the runs in which it was judged
	// (held or broke); Broken those in which it broke.
	Judged, Broken map[string]int
	// Invariants lists the invariant names in the order of the Config.
	Invariants []string
	// Missed counts the ops whose outcome the framework did not observe
	// (not started on time, cut off by the run's end), over all runs;
	// Skipped the runs not judged because it missed more than a tenth of
	// their ops.
	Missed, Skipped int
	// Steady counts the runs in which an invariant broke without faults
	// (before the first fault took effect).
	Steady int
}

func (c *Coverage) add(it *Iteration) {
	if c.Faults == nil {
		c.Faults = map[string]map[toxics.Kind]int{}
		c.Windows = map[sim.Phase]int{}
		c.Judged = map[string]int{}
		c.Broken = map[string]int{}
	}
	c.Runs++
	h := it.History
	missed, all := missedOps(h)
	c.Missed += missed
	if float64(missed) > maxMissed*float64(all) {
		c.Skipped++
	}
	if len(it.Steady) > 0 {
		c.Steady++
	}
	for _, e := range h.Faults {
		if !e.Applied() || e.Fault.Fault == nil {
			c.NotApplied++
			continue
		}
		if c.Faults[e.Target] == nil {
			c.Faults[e.Target] = map[toxics.Kind]int{}
		}
		c.Faults[e.Target][e.Fault.Fault.Kind()]++
	}
	for _, w := range []sim.Phase{sim.Before, sim.During, sim.After} {
		sps, _ := spans(h, w, nil)
		for _, sp := range sps {
			if len(sp.ops) > 0 {
				c.Windows[w]++
				break
			}
		}
	}
	for _, f := range slices.Concat(it.Findings, it.Steady) {
		if !slices.Contains(c.Invariants, f.Invariant) {
			c.Invariants = append(c.Invariants, f.Invariant)
		}
		if f.Verdict != Unjudged {
			c.Judged[f.Invariant]++
		}
		if f.Verdict == Broken {
			c.Broken[f.Invariant]++
		}
	}
}

// Unjudged returns the invariants never judged in any run.
func (c Coverage) Unjudged() []string {
	var out []string
	for _, name := range c.Invariants {
		if c.Judged[name] == 0 {
			out = append(out, name)
		}
	}
	return out
}

// String is the coverage line:
//
//	coverage over 12 runs: faults db{latency 5, blackhole 3} cache{down 1}; windows with ops: before 12, during 9, after 11; missed by the framework: 3 ops; judged: p99 latency <= 300ms during 9/12, ...
func (c Coverage) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "coverage over %d runs: faults", c.Runs)
	if len(c.Faults) == 0 {
		b.WriteString(" none took effect")
	}
	for _, target := range slices.Sorted(maps.Keys(c.Faults)) {
		var parts []string
		for _, k := range allKinds() {
			if n := c.Faults[target][k]; n > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", k, n))
			}
		}
		fmt.Fprintf(&b, " %s{%s}", target, strings.Join(parts, ", "))
	}
	if c.NotApplied > 0 {
		fmt.Fprintf(&b, " (%d not applied)", c.NotApplied)
	}
	fmt.Fprintf(&b, "; windows with ops: before %d, during %d, after %d", c.Windows[sim.Before], c.Windows[sim.During], c.Windows[sim.After])
	fmt.Fprintf(&b, "; missed by the framework: %d ops", c.Missed)
	if c.Skipped > 0 {
		fmt.Fprintf(&b, " (%d runs not judged: more than %.0f%% missed)", c.Skipped, 100*maxMissed)
	}
	if c.Steady > 0 {
		fmt.Fprintf(&b, "; broke without faults in %d runs", c.Steady)
	}
	b.WriteString("; judged:")
	for i, name := range c.Invariants {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, " %s %d/%d", name, c.Judged[name], c.Runs)
	}
	return b.String()
}

// noiseMargin is how far above the fault-free figure a latency bound must
// sit to be judged: a bound under 1.5 times the baseline's own quantile
// cannot tell a fault's effect from the machine's noise.
const noiseMargin = 1.5

// floor is the noise floor a baseline measured: the latencies of its ops
// by kind (ops the framework missed left out).
type floor struct {
	ops   map[string][]sim.Op
	kinds []string
}

func measure(h *sim.History) floor {
	f := floor{ops: map[string][]sim.Op{}}
	for _, op := range h.Ops {
		if op.Outcome == sim.Missed {
			continue
		}
		if _, ok := f.ops[op.Kind]; !ok {
			f.kinds = append(f.kinds, op.Kind)
		}
		f.ops[op.Kind] = append(f.ops[op.Kind], op)
	}
	slices.Sort(f.kinds)
	return f
}

// String is the baseline's figures: "98 ops; set p50 1ms, p99 3ms, max
// 4ms".
func (f floor) String() string {
	n := 0
	var parts []string
	for _, k := range f.kinds {
		ops := f.ops[k]
		n += len(ops)
		p50, _ := quantile(ops, 0.5)
		p99, _ := quantile(ops, 0.99)
		top, _ := quantile(ops, 1)
		r := func(d time.Duration) time.Duration { return d.Round(time.Microsecond) }
		parts = append(parts, fmt.Sprintf("%s p50 %v, p99 %v, max %v", k, r(p50), r(p99), r(top)))
	}
	if n == 0 {
		return "no ops"
	}
	return fmt.Sprintf("%d ops; %s", n, strings.Join(parts, "; "))
}

// tooTight says why inv, a latency bound, cannot be judged on this
// machine ("" when it can, or is no latency bound): its bound is under
// noiseMargin times the same quantile of the fault-free run.
func (f floor) tooTight(inv Invariant) string {
	var q float64
	var bound time.Duration
	var kinds []string
	switch v := inv.(type) {
	case LatencyQuantile:
		q, bound, kinds = v.Q, v.Max, v.Kinds
	case MaxLatency:
		q, bound, kinds = 1, v.Max, v.Kinds
	default:
		return ""
	}
	var ops []sim.Op
	for _, k := range f.kinds {
		if kindMatch(kinds, k) {
			ops = append(ops, f.ops[k]...)
		}
	}
	if len(ops) == 0 || !(q > 0 && q <= 1) {
		return ""
	}
	got, _ := quantile(ops, q)
	if float64(bound) >= noiseMargin*float64(got) {
		return ""
	}
	return fmt.Sprintf("too tight to judge on this machine: without faults the %s latency was already %v over %d ops, and a bound under %g times that (%v) cannot tell a fault's effect from the machine's noise; raise the bound or judge on a quieter machine",
		quantileName(q), got, len(ops), noiseMargin, time.Duration(noiseMargin*float64(got)).Round(time.Microsecond))
}

// tooTight is an invariant set aside as too tight to judge: every run
// has no evidence for it, with the reason.
type tooTight struct {
	Invariant
	reason string
}

func (t tooTight) Check(*sim.History) error {
	return &NoEvidence{Invariant: t.Name(), Reason: t.reason}
}
