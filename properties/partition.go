package properties

import (
	"fmt"
	"slices"

	"pgregory.net/rapid"

	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// This file holds what schedules need of partitions: the members a
// partition draws its groups from, and the 1-minimal pass's step that
// cuts fewer of them off.

// partitionable reports whether a target with these kinds and members can
// take a partition: it takes the kind and has two members to cut apart.
func partitionable(kinds []toxics.Kind, members []string) bool {
	return slices.Contains(kinds, toxics.KindPartition) && len(members) >= 2
}

// checkMembers returns the mistakes in the Members of Bounds.Targets[i].
func checkMembers(i int, t TargetKinds) []error {
	if !slices.Contains(t.Kinds, toxics.KindPartition) {
		return nil
	}
	var errs []error
	if len(t.Members) < 2 {
		errs = append(errs, fmt.Errorf("properties: bounds: Targets[%d] (%q) takes partitions but has %d Members: a partition needs two to cut apart", i, t.Name, len(t.Members)))
	}
	seen := map[string]bool{}
	for j, m := range t.Members {
		switch {
		case m == "":
			errs = append(errs, fmt.Errorf("properties: bounds: Targets[%d] (%q): Members[%d] is empty", i, t.Name, j))
		case seen[m]:
			errs = append(errs, fmt.Errorf("properties: bounds: Targets[%d] (%q): Members[%d] %q is listed twice", i, t.Name, j, m))
		}
		seen[m] = true
	}
	return errs
}

// checkWorldMembers returns an error for each member of Bounds.Targets[i]
// that its target in the World does not list (when it lists any).
func checkWorldMembers(i int, tk TargetKinds, t sim.Target) []error {
	lister, ok := t.(interface{ Members() []string })
	if !ok || !slices.Contains(tk.Kinds, toxics.KindPartition) {
		return nil
	}
	have := lister.Members()
	var errs []error
	for j, m := range tk.Members {
		if m != "" && !slices.Contains(have, m) {
			errs = append(errs, fmt.Errorf("properties: Bounds.Targets[%d] (%q): Members[%d] %q is not a member of the World's target (it has %v)", i, tk.Name, j, m, have))
		}
	}
	return errs
}

// drawCut draws, for each member of the partition target with the most,
// whether a partition cuts it off. It draws nothing when no target takes
// partitions, so the draws of schedules without them stay as they were.
func (g *gen) drawCut(t *rapid.T) []bool {
	n := 0
	for _, tk := range g.b.Targets {
		if slices.Contains(tk.Kinds, toxics.KindPartition) {
			n = max(n, len(tk.Members))
		}
	}
	if n == 0 {
		return nil
	}
	cut := make([]bool, n)
	for i := range cut {
		cut[i] = rapid.Bool().Draw(t, "cut")
	}
	return cut
}

// cutOff is the partition that cuts the members drawn in cut off from the
// rest: two groups, the rest first. With none drawn it cuts off the last
// member alone (what the draws shrink to), and with all drawn it keeps the
// first with the rest, so both groups always have a member.
func cutOff(members []string, cut []bool) toxics.Partition {
	var rest, off []string
	for i, m := range members {
		if i < len(cut) && cut[i] {
			off = append(off, m)
		} else {
			rest = append(rest, m)
		}
	}
	switch n := len(members); {
	case n < 2:
		// Bounds.Validate refuses this; an invalid fault says so again.
	case len(off) == 0:
		rest, off = slices.Clone(members[:n-1]), []string{members[n-1]}
	case len(rest) == 0:
		rest, off = []string{members[0]}, slices.Clone(members[1:])
	}
	return toxics.Partition{Groups: [][]string{rest, off}}
}

// smallerGroups tries, for each partition step, each of its members left
// out of its group (so it reaches every group again), while the group keeps
// one: a milder cut. It keeps the first that still fails, per step.
func (m *minimizer) smallerGroups(s sim.Schedule) (sim.Schedule, bool) {
	changed := false
	for i := range s.Steps {
		cs := smallerGroupCandidates(s, i)
		m.offer(cs)
		for _, c := range cs {
			if m.try(c) {
				s, changed = c, true
				break
			}
		}
	}
	return normal(s), changed
}

// smallerGroupCandidates are s with step i's partition one member
// smaller, in each way it can be.
func smallerGroupCandidates(s sim.Schedule, i int) []sim.Schedule {
	p, ok := s.Steps[i].Fault.(toxics.Partition)
	if !ok {
		return nil
	}
	var out []sim.Schedule
	for gi, g := range p.Groups {
		if len(g) < 2 {
			continue
		}
		for mi := range g {
			groups := make([][]string, len(p.Groups))
			for k, h := range p.Groups {
				groups[k] = slices.Clone(h)
			}
			groups[gi] = slices.Delete(groups[gi], mi, mi+1)
			c := sim.Schedule{Steps: slices.Clone(s.Steps)}
			c.Steps[i].Fault = toxics.Partition{Groups: groups}
			out = append(out, c)
		}
	}
	return out
}
