package properties

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"pgregory.net/rapid"

	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// Aim lists the fault kinds each target can take, in the order schedules
// shrink toward (link kinds mildest first, then node kinds mildest first).
// Its result is what [Bounds.Targets] expects.
func Aim(targets []sim.Target) []TargetKinds {
	out := make([]TargetKinds, 0, len(targets))
	for _, t := range targets {
		if t == nil {
			continue
		}
		tk := TargetKinds{Name: t.Name()}
		for _, k := range allKinds() {
			if t.Supports(k) {
				tk.Kinds = append(tk.Kinds, k)
			}
		}
		out = append(out, tk)
	}
	return out
}

// TargetKinds names a target and the fault kinds schedules may aim at it.
type TargetKinds struct {
	Name  string
	Kinds []toxics.Kind
}

// DurationRange is an inclusive range of durations.
type DurationRange struct {
	Min, Max time.Duration
}

// Int64Range is an inclusive range of integers.
type Int64Range struct {
	Min, Max int64
}

// Bounds says which schedules [Schedules] draws. The zero value of every
// field but Targets means its documented default.
type Bounds struct {
	// Targets are the targets steps aim at, each with the kinds it takes
	// (see [Aim]). Shrinking moves steps toward the first target.
	Targets []TargetKinds
	// MaxSteps is the most steps a schedule has (default 3). A schedule
	// has at least one step unless the horizon cut it off.
	MaxSteps int
	// Horizon is the offset by which every fault has ended (default 10s).
	Horizon time.Duration
	// Resolution is the grain of offsets and durations (default 100ms):
	// both are whole multiples of it, so schedules read well and shrink
	// to round numbers.
	Resolution time.Duration
	// Fault is the shortest and longest a fault lasts (defaults:
	// Resolution and Horizon/2). Both must be multiples of Resolution.
	Fault DurationRange
	// Values are the ranges of the faults' own fields.
	Values Values
	// Directions link faults may take; shrinking moves toward the first
	// (default both, upstream, downstream).
	Directions []toxics.Direction
}

// Values are the ranges fault fields are drawn from. Each field shrinks
// toward its milder end: shorter delays, higher rates, bigger slices,
// later timeouts, rarer corruption. Zero fields take the defaults below.
type Values struct {
	// Delay of a latency fault (default 50ms..1s).
	Delay DurationRange
	// Jitter is the most jitter of a latency fault (default 0: none). It
	// never exceeds the delay.
	Jitter time.Duration
	// Rate of a bandwidth fault in bytes per second (default 0..64 KiB/s;
	// 0 stalls the link).
	Rate Int64Range
	// SliceSize is a slicer's average chunk size in bytes (default 1..1024).
	SliceSize Int64Range
	// SliceDelay is a slicer's delay between chunks (default 0..10ms).
	SliceDelay DurationRange
	// CloseDelay of a slow_close fault (default 100ms..2s).
	CloseDelay DurationRange
	// Corrupt is a corruption probability range, in (0, 1] (default
	// 0.0001..0.01).
	Corrupt [2]float64
	// DataLimit in bytes (default 0..64 KiB).
	DataLimit Int64Range
	// TimeoutAfter of a timeout fault (default 0..2s).
	TimeoutAfter DurationRange
	// Grace of a stop fault (default 0..0: the runtime's default).
	Grace DurationRange
}

func allKinds() []toxics.Kind { return append(toxics.LinkKinds(), toxics.NodeKinds()...) }

func (b Bounds) withDefaults() Bounds {
	if b.MaxSteps == 0 {
		b.MaxSteps = 3
	}
	if b.Horizon == 0 {
		b.Horizon = 10 * time.Second
	}
	if b.Resolution == 0 {
		b.Resolution = 100 * time.Millisecond
	}
	if b.Fault.Min == 0 {
		b.Fault.Min = b.Resolution
	}
	if b.Fault.Max == 0 && b.Resolution > 0 {
		b.Fault.Max = max(b.Fault.Min, (b.Horizon/2)/b.Resolution*b.Resolution)
	}
	v := &b.Values
	defDur(&v.Delay, 50*time.Millisecond, time.Second)
	defInt(&v.Rate, 0, 64<<10)
	defInt(&v.SliceSize, 1, 1024)
	defDur(&v.SliceDelay, 0, 10*time.Millisecond)
	defDur(&v.CloseDelay, 100*time.Millisecond, 2*time.Second)
	if v.Corrupt == [2]float64{} {
		v.Corrupt = [2]float64{0.0001, 0.01}
	}
	defInt(&v.DataLimit, 0, 64<<10)
	defDur(&v.TimeoutAfter, 0, 2*time.Second)
	if len(b.Directions) == 0 {
		b.Directions = []toxics.Direction{toxics.Both, toxics.Upstream, toxics.Downstream}
	}
	return b
}

func defDur(r *DurationRange, lo, hi time.Duration) {
	if *r == (DurationRange{}) {
		*r = DurationRange{lo, hi}
	}
}

func defInt(r *Int64Range, lo, hi int64) {
	if *r == (Int64Range{}) {
		*r = Int64Range{lo, hi}
	}
}

// Validate reports every problem with b (after defaults), each naming the
// field and the value.
func (b Bounds) Validate() error {
	b = b.withDefaults()
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("properties: bounds: "+format, args...))
	}
	if len(b.Targets) == 0 {
		bad("Targets is empty: name at least one target and its fault kinds")
	}
	seen := map[string]bool{}
	for i, t := range b.Targets {
		if t.Name == "" {
			bad("Targets[%d] has no name", i)
		}
		if seen[t.Name] {
			bad("Targets[%d]: target %q is listed twice", i, t.Name)
		}
		seen[t.Name] = true
		if len(t.Kinds) == 0 {
			bad("Targets[%d] (%q) has no fault kinds", i, t.Name)
		}
		for _, k := range t.Kinds {
			if !k.IsLink() && !k.IsNode() {
				bad("Targets[%d] (%q): unknown fault kind %q", i, t.Name, k)
			}
		}
	}
	if b.MaxSteps < 0 {
		bad("MaxSteps = %d: must not be negative", b.MaxSteps)
	}
	if b.Resolution < 0 {
		bad("Resolution = %v: must be positive", b.Resolution)
	}
	if b.Horizon < 0 {
		bad("Horizon = %v: must be positive", b.Horizon)
	}
	if b.Resolution > 0 {
		for _, f := range []struct {
			name string
			v    time.Duration
		}{{"Fault.Min", b.Fault.Min}, {"Fault.Max", b.Fault.Max}, {"Horizon", b.Horizon}} {
			if f.v%b.Resolution != 0 {
				bad("%s = %v is not a multiple of Resolution %v", f.name, f.v, b.Resolution)
			}
		}
	}
	if b.Fault.Min <= 0 || b.Fault.Max < b.Fault.Min {
		bad("Fault = %v..%v: need 0 < Min <= Max", b.Fault.Min, b.Fault.Max)
	}
	if b.Fault.Min > b.Horizon {
		bad("Fault.Min = %v is beyond Horizon %v: no fault would fit", b.Fault.Min, b.Horizon)
	}
	v := b.Values
	durRange := func(name string, r DurationRange, minLo time.Duration) {
		if r.Min < minLo || r.Max < r.Min {
			bad("Values.%s = %v..%v: need %v <= Min <= Max", name, r.Min, r.Max, minLo)
		}
	}
	intRange := func(name string, r Int64Range, minLo int64) {
		if r.Min < minLo || r.Max < r.Min {
			bad("Values.%s = %d..%d: need %d <= Min <= Max", name, r.Min, r.Max, minLo)
		}
	}
	durRange("Delay", v.Delay, time.Millisecond)
	if v.Jitter < 0 {
		bad("Values.Jitter = %v: must not be negative", v.Jitter)
	}
	intRange("Rate", v.Rate, 0)
	intRange("SliceSize", v.SliceSize, 1)
	durRange("SliceDelay", v.SliceDelay, 0)
	durRange("CloseDelay", v.CloseDelay, time.Millisecond)
	if !(v.Corrupt[0] > 0 && v.Corrupt[0] <= v.Corrupt[1] && v.Corrupt[1] <= 1) {
		bad("Values.Corrupt = %g..%g: need 0 < min <= max <= 1", v.Corrupt[0], v.Corrupt[1])
	}
	intRange("DataLimit", v.DataLimit, 0)
	durRange("TimeoutAfter", v.TimeoutAfter, 0)
	durRange("Grace", v.Grace, 0)
	for i, d := range b.Directions {
		if d > toxics.Downstream {
			bad("Directions[%d] = %v: not one of both, upstream, downstream", i, d)
		}
	}
	return errors.Join(errs...)
}

// Schedules returns a generator of schedules within b. Every schedule it
// draws is valid for the targets b names: steps on one target follow each
// other (each starts a drawn gap after the previous one on that target
// ended), so no two steps on a target overlap; steps on different targets
// may.
//
// Draws are laid out for rapid's shrinker: the steps are a slice (fewer
// steps), offsets are gaps and durations counts of Resolution above
// Fault.Min (earlier, shorter faults), and the kind, target and direction
// are indexes into lists ordered mildest first. Every field is drawn for
// every step whatever its kind, so a step can shrink from one kind to a
// milder one.
func Schedules(b Bounds) (*rapid.Generator[sim.Schedule], error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	b = b.withDefaults()
	g := newGen(b)
	return rapid.Custom(g.schedule), nil
}

type gen struct {
	b     Bounds
	kinds []toxics.Kind // union of the targets' kinds, canonical order
	order map[toxics.Kind]int
	sets  []map[toxics.Kind]bool
}

func newGen(b Bounds) *gen {
	g := &gen{b: b, order: map[toxics.Kind]int{}}
	for i, k := range allKinds() {
		g.order[k] = i
	}
	used := map[toxics.Kind]bool{}
	for _, t := range b.Targets {
		set := map[toxics.Kind]bool{}
		for _, k := range t.Kinds {
			set[k] = true
			used[k] = true
		}
		g.sets = append(g.sets, set)
	}
	for _, k := range allKinds() {
		if used[k] {
			g.kinds = append(g.kinds, k)
		}
	}
	return g
}

// pick maps a drawn kind index to a kind the target takes: the mildest it
// takes at or above the drawn one, else its most severe. Lowering the index
// never makes the kind more severe.
func (g *gen) pick(target, idx int) toxics.Kind {
	set := g.sets[target]
	for _, k := range g.kinds[idx:] {
		if set[k] {
			return k
		}
	}
	for i := idx - 1; i >= 0; i-- {
		if set[g.kinds[i]] {
			return g.kinds[i]
		}
	}
	return g.kinds[0] // unreachable: Validate requires kinds
}

// rawStep is one step as drawn, before it is placed on the timeline.
type rawStep struct {
	target, kind int
	gap, extra   int64
	fault        toxics.Fault
}

func (g *gen) drawStep(t *rapid.T) rawStep {
	b := g.b
	res := int64(b.Resolution)
	var s rawStep
	s.target = rapid.IntRange(0, len(b.Targets)-1).Draw(t, "target")
	s.kind = rapid.IntRange(0, len(g.kinds)-1).Draw(t, "kind")
	s.gap = rapid.Int64Range(0, int64(b.Horizon)/res).Draw(t, "gap")
	s.extra = rapid.Int64Range(0, int64(b.Fault.Max-b.Fault.Min)/res).Draw(t, "length")
	s.fault = g.drawFault(t, g.pick(s.target, s.kind))
	return s
}

// drawFault draws every field of every kind, in a fixed order, and builds
// the one kind asked for.
func (g *gen) drawFault(t *rapid.T, k toxics.Kind) toxics.Fault {
	v := g.b.Values
	dir := rapid.SampledFrom(g.b.Directions).Draw(t, "direction")
	delay := drawDur(t, "delay", v.Delay, false)
	jitter := time.Duration(rapid.Int64Range(0, int64(v.Jitter/time.Millisecond)).Draw(t, "jitter")) * time.Millisecond
	rate := drawInt(t, "rate", v.Rate, true)
	size := drawInt(t, "slice_size", v.SliceSize, true)
	variation := rapid.Int64Range(0, v.SliceSize.Max-1).Draw(t, "size_variation")
	sliceDelay := drawDur(t, "slice_delay", v.SliceDelay, false)
	closeDelay := drawDur(t, "close_delay", v.CloseDelay, false)
	lo, hi := ppm(v.Corrupt[0]), ppm(v.Corrupt[1])
	prob := float64(rapid.Int64Range(lo, max(lo, hi)).Draw(t, "corrupt_ppm")) / 1e6
	limit := drawInt(t, "data_limit", v.DataLimit, true)
	after := drawDur(t, "timeout_after", v.TimeoutAfter, true)
	grace := drawDur(t, "grace", v.Grace, false)

	switch k {
	case toxics.KindLatency:
		return toxics.Latency{Delay: delay, Jitter: min(jitter, delay), Direction: dir}
	case toxics.KindBandwidth:
		return toxics.Bandwidth{Rate: rate, Direction: dir}
	case toxics.KindSlicer:
		return toxics.Slicer{AverageSize: int(size), SizeVariation: int(variation % size), Delay: sliceDelay, Direction: dir}
	case toxics.KindSlowClose:
		return toxics.SlowClose{Delay: closeDelay, Direction: dir}
	case toxics.KindCorrupt:
		return toxics.Corrupt{Probability: prob, Direction: dir}
	case toxics.KindDataLimit:
		return toxics.DataLimit{Bytes: limit, Direction: dir}
	case toxics.KindTimeout:
		return toxics.Timeout{After: after, Direction: dir}
	case toxics.KindBlackhole:
		return toxics.Blackhole{Direction: dir}
	case toxics.KindReset:
		return toxics.Reset{}
	case toxics.KindDown:
		return toxics.Down{}
	case toxics.KindPause:
		return toxics.Pause{}
	case toxics.KindRestart:
		return toxics.Restart{}
	case toxics.KindStop:
		return toxics.Stop{Grace: grace}
	default:
		return toxics.Crash{}
	}
}

func ppm(p float64) int64 { return max(1, int64(p*1e6+0.5)) }

// drawDur draws a duration in whole milliseconds; milder=true puts the
// shrink target (index 0) at Max.
func drawDur(t *rapid.T, label string, r DurationRange, milderHigh bool) time.Duration {
	n := rapid.Int64Range(0, int64((r.Max-r.Min)/time.Millisecond)).Draw(t, label)
	d := time.Duration(n) * time.Millisecond
	if milderHigh {
		return r.Max - d
	}
	return r.Min + d
}

func drawInt(t *rapid.T, label string, r Int64Range, milderHigh bool) int64 {
	n := rapid.Int64Range(0, r.Max-r.Min).Draw(t, label)
	if milderHigh {
		return r.Max - n
	}
	return r.Min + n
}

func (g *gen) schedule(t *rapid.T) sim.Schedule {
	b := g.b
	minSteps := min(1, b.MaxSteps)
	raws := rapid.SliceOfN(rapid.Custom(g.drawStep), minSteps, b.MaxSteps).Draw(t, "steps")
	return g.place(raws)
}

// place lays drawn steps on the timeline, target by target.
func (g *gen) place(raws []rawStep) sim.Schedule {
	b := g.b
	type last struct {
		end     time.Duration
		restart bool
		any     bool
	}
	prev := make([]last, len(b.Targets))
	var steps []sim.Step
	for _, r := range raws {
		p := prev[r.target]
		isRestart := r.fault.Kind() == toxics.KindRestart
		at := p.end + time.Duration(r.gap)*b.Resolution
		if p.any && r.gap == 0 && (p.restart || isRestart) {
			// A restart is a point in time; keep it clear of the
			// neighbouring step on its target.
			at += b.Resolution
		}
		length := b.Fault.Min + time.Duration(r.extra)*b.Resolution
		if isRestart {
			length = 0
		}
		if at+length > b.Horizon {
			length = b.Horizon - at
			if length < b.Fault.Min && !(isRestart && length >= 0) {
				continue // no room left on the timeline
			}
		}
		steps = append(steps, sim.Step{At: at, For: length, Target: b.Targets[r.target].Name, Fault: r.fault})
		prev[r.target] = last{end: at + length, restart: isRestart, any: true}
	}
	slices.SortStableFunc(steps, func(a, b sim.Step) int { return int(a.At - b.At) })
	return sim.Schedule{Steps: steps}
}
