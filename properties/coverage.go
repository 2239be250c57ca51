package properties

import (
	"fmt"
	"maps"
	"slices"
	"strings"

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
	for _, f := range it.Findings {
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
//	coverage over 12 runs: faults db{latency 5, blackhole 3} cache{down 1}; windows with ops: before 12, during 9, after 11; judged: p99 latency <= 300ms during 9/12, ...
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
	fmt.Fprintf(&b, "; windows with ops: before %d, during %d, after %d; judged:", c.Windows[sim.Before], c.Windows[sim.During], c.Windows[sim.After])
	for i, name := range c.Invariants {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, " %s %d/%d", name, c.Judged[name], c.Runs)
	}
	return b.String()
}
