package properties

import (
	"context"
	"math/bits"
	"slices"

	"pgregory.net/rapid"

	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// This file holds what the generator draws its steps' (target, kind)
// pairs from: a swarm subset per schedule, and a guide that puts first the
// pairs no run of this Check has applied yet.

// pair is one (target, kind) a step can aim at. The generator lists every
// pair the Bounds allow in one canonical order, mildest kind first and,
// within a kind, in the order of Bounds.Targets: index 0 is the mildest,
// and a lower index is never a more severe kind.
type pair struct {
	target int // index in Bounds.Targets
	kind   toxics.Kind
}

func listPairs(targets []TargetKinds) []pair {
	var out []pair
	for _, k := range allKinds() {
		for i, t := range targets {
			if slices.Contains(t.Kinds, k) {
				out = append(out, pair{i, k})
			}
		}
	}
	return out
}

// maxSwarm is the most pairs a schedule's swarm subset names. rapid draws
// the subset's length with a geometric law, so about 40% of schedules draw
// from every pair, a quarter from one pair only (a whole schedule of
// crashes, say), and the rest from two or three.
const maxSwarm = 3

// drawPair draws one pair among all the bounds allow: a kind, then a
// target among those that take it. Drawn apart, the kind shrinks toward a
// milder one on the same target, which one index over pairs of
// interleaved targets does not.
func (g *gen) drawPair(t *rapid.T) int {
	of := g.byKind[scale(drawBits(t, "kind", g.kindBits), g.kindBits, len(g.byKind))]
	return of[scale(drawBits(t, "target", g.targetBits), g.targetBits, len(of))]
}

// steerFlips is the number of coin flips that say whether the guide
// steers a schedule: it does unless all are clear, so 4095 schedules in
// 4096 are steered.
const steerFlips = 12

// drawSteer draws whether the guide steers the schedule's pairs.
//
// A steered pair the guide does not hold open becomes the open pair
// before it in the mildest-first order (the last open pair if none is
// before it). So rapid can leave the guide while shrinking: lowering a
// drawn pair down to the open pair it was steered to keeps the schedule
// as it was, and so does then clearing the flips; from there every pair
// shrinks among all pairs, open or not. A pair steered around to the last
// open pair (none was before it) has no such way out, and rapid shrinks it
// among the open pairs only: the 1-minimal pass after rapid's (issue 12,
// item 2) should try each step's milder kinds on its target.
func drawSteer(t *rapid.T) bool {
	steer := false
	for range steerFlips {
		steer = rapid.Bool().Draw(t, "steer") || steer
	}
	return steer
}

// drawBits draws nbits coin flips and reads them as a binary number, most
// significant first.
func drawBits(t *rapid.T, label string, nbits int) int {
	v := 0
	for range nbits {
		v <<= 1
		if rapid.Bool().Draw(t, label) {
			v |= 1
		}
	}
	return v
}

// scale maps v, read from nbits flips, to an index in [0, n). Unlike
// rapid's integers, which favour small values (a geometric number of
// bits), every index is about equally likely: with nbits two more than
// n-1 needs (see indexBits), the likeliest index is at most 5/4 as likely
// as the least. Clearing any flip, as rapid's shrinker does, never raises
// the index, and all flips clear is index 0. The number of flips is fixed
// by the generator, not by n, so the draws after them stay in place when n
// changes.
func scale(v, nbits, n int) int { return v * n >> nbits }

// indexBits is the number of flips scale needs for indexes below n.
func indexBits(n int) int { return bits.Len(uint(max(n-1, 1))) + 2 }

// guide puts first the pairs no run of this Check has applied yet: while
// some are left, every pair of a schedule the guide steers (4095 in 4096) is
// one of them, so a Check applies every pair within about as many
// schedules as there are pairs (each schedule has a step, and each step of
// a steered schedule a pair not applied yet). A pair drawn twice without
// taking effect (its target refused it) is given up on.
//
// The guide changes how a draw of rapid decodes into a schedule, so it must
// not change between a failing run and rapid's replays of it: the explorer
// calls record only for runs of its search that broke nothing, and never
// once shrinking has begun. When every pair has been applied (or none
// yet) the guide decodes as if it were not there.
//
// A guide is not safe for concurrent use; rapid draws one schedule at a
// time.
type guide struct {
	pairs   []pair
	byKey   map[pairKey]int
	applied []bool
	misses  []int
	open    []int  // pairs not applied yet and not given up on, canonical order; every pair when none is left
	isOpen  []bool // by pair
}

type pairKey struct {
	target string
	kind   toxics.Kind
}

// guideMisses is how many runs may draw a pair without it taking effect
// before the guide gives up on it.
const guideMisses = 2

func newGuide(targets []TargetKinds, pairs []pair) *guide {
	c := &guide{pairs: pairs, byKey: map[pairKey]int{}, applied: make([]bool, len(pairs)), misses: make([]int, len(pairs))}
	for i, p := range pairs {
		c.byKey[pairKey{targets[p.target].Name, p.kind}] = i
	}
	c.update()
	return c
}

// record notes the pairs a run applied, from the faults its history holds.
// Faults on targets or of kinds outside the bounds are ignored.
func (c *guide) record(h *sim.History) {
	if h == nil {
		return
	}
	for _, e := range h.Faults {
		if e.Fault.Fault == nil {
			continue
		}
		i, ok := c.byKey[pairKey{e.Target, e.Fault.Fault.Kind()}]
		switch {
		case !ok:
		case e.Applied():
			c.applied[i] = true
		default:
			c.misses[i]++
		}
	}
	c.update()
}

func (c *guide) update() {
	c.open = c.open[:0]
	c.isOpen = make([]bool, len(c.pairs))
	for i := range c.pairs {
		if !c.applied[i] && c.misses[i] < guideMisses {
			c.open = append(c.open, i)
			c.isOpen[i] = true
		}
	}
	if len(c.open) == 0 {
		for i := range c.pairs {
			c.open = append(c.open, i)
			c.isOpen[i] = true
		}
	}
}

// steer returns p if it is open, else the open pair before it (the last
// if none is).
func (c *guide) steer(p int) int {
	if c.isOpen[p] {
		return p
	}
	i, _ := slices.BinarySearch(c.open, p)
	if i == 0 {
		i = len(c.open)
	}
	return c.open[i-1]
}

// together reports whether two steps on one target can stand in one
// schedule: exactly when sim's Schedule.Validate accepts them. Steps that
// overlap in time must compose into something both take part in:
//
//   - a link fault with a node fault: the link carries (or delays, or
//     drops) the bytes of a node that is paused, stopped or restarting;
//     the two act in different places;
//   - two link faults of different kinds, such as latency with bandwidth
//     (a slow and narrow link) or a timeout behind a slicer: each is a
//     stage of the link's pipeline, applied to what the other lets through;
//   - two link faults of one kind in opposite directions, such as latency
//     upstream with latency downstream.
//
// And not: two node faults (a node is in one state at a time; a restart
// is a point, and clashes with a node fault that holds then), down with
// reset (both decide the fate of every new connection: refused, or
// accepted and reset), or two faults of one link kind in the same
// direction (their effects add up into one fault of that kind, which one
// step draws better and shrinks further).
func together(a, b sim.Step) bool {
	return sim.Schedule{Steps: []sim.Step{a, b}}.Validate([]sim.Target{anyFault(a.Target)}) == nil
}

// anyFault is a target that takes every fault kind, for asking sim's
// Validate about two steps alone.
type anyFault string

func (a anyFault) Name() string { return string(a) }
func (anyFault) Supports(k toxics.Kind) bool {
	return k.IsLink() || k.IsNode() || k.IsNetwork() || k.IsDNS() || k.IsClock()
}
func (anyFault) Apply(context.Context, toxics.Fault) (func(context.Context) error, error) {
	panic("properties: anyFault is for validation only")
}
