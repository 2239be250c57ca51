package properties

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"pgregory.net/rapid"

	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// Aim lists the fault kinds each target can take, in the order schedules
// shrink toward (link kinds mildest first, then partition, then node kinds
// mildest first). Its result is what [Bounds.Targets] expects. A target
// that takes partitions and lists the names its groups may hold (a
// Members method, as harness's Env.Network and sim's Network.Partitions
// have) gets them as its Members.
func Aim(targets []sim.Target) []TargetKinds {
	out := make([]TargetKinds, 0, len(targets))
	for _, t := range targets {
		if t == nil {
			continue
		}
		tk := TargetKinds{Name: t.Name()}
		if m, ok := t.(interface{ Members() []string }); ok && t.Supports(toxics.KindPartition) {
			tk.Members = m.Members()
		}
		for _, k := range allKinds() {
			if t.Supports(k) && k != toxics.KindHTTPJSON && (k != toxics.KindPartition || partitionable([]toxics.Kind{k}, tk.Members)) { // http_json: see generate_http.go
				tk.Kinds = append(tk.Kinds, k)
			}
		}
		if len(tk.Kinds) == 0 && t.Supports(toxics.KindPartition) {
			continue // a network with fewer than two members to cut apart
		}
		out = append(out, tk)
	}
	return out
}

// TargetKinds names a target and the fault kinds schedules may aim at it.
type TargetKinds struct {
	Name  string
	Kinds []toxics.Kind
	// Members are the names a partition on this target may put in its
	// groups (at least two when Kinds has partition). A partition cuts
	// some of them off from the rest; it shrinks toward fewer cut off.
	Members []string
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
	// (see [Aim]). Shrinking moves steps toward milder kinds, and within
	// a kind toward the first target.
	Targets []TargetKinds
	// MaxSteps is the most steps a schedule has (default 3). A schedule
	// has at least one.
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
	// Share is the range of the share of requests a protocol or HTTP
	// fault acts on, in (0, 1] (default 0.05..1). A protocol fault's
	// delay is drawn from Delay; an HTTP fault takes its delay from Delay,
	// its trickle rate from Rate and its cut from DataLimit.
	Share [2]float64
	// JSONPaths are the paths an http_json fault may change, such as
	// "items.0.price" (default none; a target that lists http_json needs
	// one).
	JSONPaths []string
	// ClockOffset is the range of how far a clock fault moves a simulated
	// endpoint's clock, ahead or behind (default 100ms..10s).
	ClockOffset DurationRange
}

// allKinds is every kind: the link kinds mildest first, the HTTP kinds,
// a partition as the harshest network fault, the clock kinds (simulated
// endpoints only), the node kinds, then the
// protocol and data kinds. Protocol and HTTP kinds are drawn only for
// targets that speak their protocol.
func allKinds() []toxics.Kind {
	return slices.Concat(toxics.LinkKinds(), toxics.HTTPKinds(), toxics.DNSKinds(), toxics.NetworkKinds(), toxics.ClockKinds(), toxics.NodeKinds(), toxics.ProtocolKinds(), toxics.DataKinds())
}

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
	defDur(&v.ClockOffset, 100*time.Millisecond, 10*time.Second)
	if v.Share == [2]float64{} {
		v.Share = [2]float64{0.05, 1}
	}
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
			if !k.IsLink() && !k.IsNode() && !k.IsNetwork() && !k.IsHTTP() && !k.IsDNS() && !k.IsClock() {
				bad("Targets[%d] (%q): unknown fault kind %q", i, t.Name, k)
			}
			if k == toxics.KindHTTPJSON && len(b.Values.JSONPaths) == 0 {
				bad("Targets[%d] (%q) lists %s, and Values.JSONPaths is empty: name the paths it may change", i, t.Name, k)
			}
		}
		errs = append(errs, checkMembers(i, t)...)
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
	if !(v.Share[0] > 0 && v.Share[0] <= v.Share[1] && v.Share[1] <= 1) {
		bad("Values.Share = %g..%g: need 0 < min <= max <= 1", v.Share[0], v.Share[1])
	}
	for i, d := range b.Directions {
		if d > toxics.Downstream {
			bad("Directions[%d] = %v: not one of both, upstream, downstream", i, d)
		}
	}
	return errors.Join(errs...)
}

// Schedules returns a generator of schedules within b. Every schedule it
// draws is valid for the targets b names and has at least one step.
//
// Each schedule first draws a swarm: a few of the (target, kind) pairs b
// allows, or every pair, and its steps aim only at those, so a rare kind
// gets whole schedules of its own instead of a share of steps among the
// mild ones. Pairs are drawn about equally often whatever their place.
//
// A step starts a drawn gap after the start of the step before it (the
// first after 0), so steps overlap often: on different targets freely, on
// one target where their faults compose (latency with bandwidth, a node
// fault during a link fault: what sim's Schedule.Validate accepts). A step
// that would overlap one it does not compose with starts when that one
// ends instead.
//
// Draws are laid out for rapid's shrinker: the steps are a slice (fewer
// steps), offsets are gaps and durations counts of Resolution above
// Fault.Min (earlier, shorter faults), pairs and directions are indexes
// into lists ordered mildest first, and the swarm shrinks toward every
// pair or toward the mildest. Every field is drawn for every step whatever
// its kind, so a step can shrink from one kind to a milder one.
func Schedules(b Bounds) (*rapid.Generator[sim.Schedule], error) {
	g, _, err := schedules(b)
	return g, err
}

// schedules is Schedules with the guide that puts first the pairs no run
// has applied yet; the explorer records in it what each run applied (see
// guide for when).
func schedules(b Bounds) (*rapid.Generator[sim.Schedule], *guide, error) {
	if err := b.Validate(); err != nil {
		return nil, nil, err
	}
	g := newGen(b.withDefaults())
	return rapid.Custom(g.schedule), g.guide, nil
}

type gen struct {
	b                    Bounds
	pairs                []pair  // every (target, kind) b allows, mildest first
	byKind               [][]int // the pairs of each kind, mildest kind first
	kindBits, targetBits int     // coin flips of an index into byKind, into one kind's pairs
	pickBits             int     // coin flips of an index into a swarm's pairs
	guide                *guide
}

func newGen(b Bounds) *gen {
	g := &gen{b: b, pairs: listPairs(b.Targets)}
	for i, p := range g.pairs {
		if i == 0 || p.kind != g.pairs[i-1].kind {
			g.byKind = append(g.byKind, nil)
		}
		g.byKind[len(g.byKind)-1] = append(g.byKind[len(g.byKind)-1], i)
	}
	g.kindBits, g.targetBits, g.pickBits = indexBits(len(g.byKind)), indexBits(len(b.Targets)), indexBits(maxSwarm)
	g.guide = newGuide(b.Targets, g.pairs)
	return g
}

// rawStep is one step as drawn, before its pair is chosen and it is placed
// on the timeline.
type rawStep struct {
	own        int // the pair drawn for the step, used when the swarm is empty
	pick       int // flips that pick one of the swarm's pairs
	gap, extra int64
	fault      func(toxics.Kind) toxics.Fault
	cut        []bool // which members a partition cuts off (see cutOff)
}

// drawStep draws a step: a pair of its own and a pick among the swarm's,
// both whatever the swarm, so that emptying the swarm moves no draw.
func (g *gen) drawStep(t *rapid.T) rawStep {
	b := g.b
	res := int64(b.Resolution)
	var s rawStep
	s.own = g.drawPair(t)
	s.pick = drawBits(t, "pick", g.pickBits)
	// A gap never starts a step past the last offset a fault fits in, so
	// the first step always stays.
	s.gap = rapid.Int64Range(0, int64(b.Horizon-b.Fault.Min)/res).Draw(t, "gap")
	s.extra = rapid.Int64Range(0, int64(b.Fault.Max-b.Fault.Min)/res).Draw(t, "length")
	s.fault = g.drawFault(t)
	s.cut = g.drawCut(t)
	return s
}

// drawFault draws every field of every kind, in a fixed order, and returns
// what builds a fault of any kind from them.
func (g *gen) drawFault(t *rapid.T) func(toxics.Kind) toxics.Fault {
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
	f := faultFields{dir: dir, delay: delay, jitter: min(jitter, delay), rate: rate, size: size, variation: variation % size,
		sliceDelay: sliceDelay, closeDelay: closeDelay, prob: prob, limit: limit, after: after, grace: grace}
	if g.b.hasHTTP() {
		f.http = drawHTTP(t, v)
	}
	f.net = drawNetFields(t)
	if g.b.hasClock() {
		f.clock = drawClock(t, v)
	}
	return f.fault
}

// faultFields are the fields of every fault kind, from which a fault of
// any kind is built.
type faultFields struct {
	dir                                   toxics.Direction
	delay, jitter, sliceDelay, closeDelay time.Duration
	after, grace                          time.Duration
	rate, size, variation, limit          int64
	prob                                  float64
	share                                 int64       // protocol faults: parts per million
	reply, code                           int         // indexes into toxics.RedisReplies, toxics.PgErrorCodes
	http                                  httpFields  // see generate_http.go
	net                                   netFields   // issue 15's kinds (see generate_net.go)
	clock                                 clockFields // see generate_clock.go
	dns                                   dnsFields   // the DNS kinds (see generate_dns.go)
}

// fault is the fault of kind k with f's fields.
func (f faultFields) fault(k toxics.Kind) toxics.Fault {
	switch k {
	case toxics.KindLatency:
		return toxics.Latency{Delay: f.delay, Jitter: f.jitter, Direction: f.dir}
	case toxics.KindBandwidth:
		return toxics.Bandwidth{Rate: f.rate, Direction: f.dir}
	case toxics.KindSlicer:
		return toxics.Slicer{AverageSize: int(f.size), SizeVariation: int(f.variation), Delay: f.sliceDelay, Direction: f.dir}
	case toxics.KindSlowClose:
		return toxics.SlowClose{Delay: f.closeDelay, Direction: f.dir}
	case toxics.KindCorrupt:
		return toxics.Corrupt{Probability: f.prob, Direction: f.dir}
	case toxics.KindDataLimit:
		return toxics.DataLimit{Bytes: f.limit, Direction: f.dir}
	case toxics.KindTimeout:
		return toxics.Timeout{After: f.after, Direction: f.dir}
	case toxics.KindBlackhole:
		return toxics.Blackhole{Direction: f.dir}
	case toxics.KindReset:
		return toxics.Reset{}
	case toxics.KindDown:
		return toxics.Down{}
	case toxics.KindPause:
		return toxics.Pause{}
	case toxics.KindRestart:
		return toxics.Restart{}
	case toxics.KindStop:
		return toxics.Stop{Grace: f.grace}
	case toxics.KindPartition:
		return toxics.Partition{} // its groups come from the target's members: see cutOff
	case toxics.KindRedisDelay, toxics.KindRedisError, toxics.KindPgError, toxics.KindPgRefuse:
		return f.protoFault(k)
	case toxics.KindData:
		return toxics.Data{}
	case toxics.KindHTTPStatus, toxics.KindHTTPDelay, toxics.KindHTTPTrickle, toxics.KindHTTPCut, toxics.KindHTTPJSON:
		return f.httpFault(k)
	case toxics.KindLoss, toxics.KindConnectHang, toxics.KindConnLimit, toxics.KindTargeted:
		return f.netFault(k)
	case toxics.KindDNSDelay, toxics.KindDNSServfail, toxics.KindDNSNXDomain, toxics.KindDNSDrop:
		return f.dnsFault(k)
	case toxics.KindClockSkew, toxics.KindClockJump:
		return f.clockFault(k)
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

// schedule draws a swarm, the steps, and whether the guide steers them;
// then aims each step at a pair of the swarm, or at its own pair when the
// swarm is empty.
func (g *gen) schedule(t *rapid.T) sim.Schedule {
	swarm := rapid.SliceOfN(rapid.Custom(g.drawPair), 0, maxSwarm).Draw(t, "swarm")
	raws := rapid.SliceOfN(rapid.Custom(g.drawStep), 1, g.b.MaxSteps).Draw(t, "steps")
	withProto(t, g.b.Values, raws)
	steer := func(p int) int { return p }
	if drawSteer(t) {
		steer = g.guide.steer
	}
	for i, p := range swarm {
		swarm[i] = steer(p)
	}
	slices.Sort(swarm)
	swarm = slices.Compact(swarm)
	pairs := make([]int, len(raws))
	for i, r := range raws {
		pairs[i] = steer(r.own)
		if len(swarm) > 0 {
			pairs[i] = swarm[scale(r.pick, g.pickBits, len(swarm))]
		}
	}
	return g.place(raws, pairs)
}

// place lays drawn steps on the timeline, in the order drawn: each starts
// its gap after the start of the step placed before it (whatever its
// target), later if it cannot overlap a step already placed on its
// target, and ends by the horizon (shortened if need be; dropped if not
// even Fault.Min fits). Chained so, steps keep their places relative to
// each other when rapid shrinks the first gap: two faults that must hold
// at once move earlier together.
func (g *gen) place(raws []rawStep, pairs []int) sim.Schedule {
	b := g.b
	var last time.Duration // start of the step placed last
	var steps []sim.Step
	for i, r := range raws {
		p := g.pairs[pairs[i]]
		st := sim.Step{At: last + time.Duration(r.gap)*b.Resolution, For: b.Fault.Min + time.Duration(r.extra)*b.Resolution,
			Target: b.Targets[p.target].Name, Fault: r.fault(p.kind)}
		if p.kind == toxics.KindPartition {
			st.Fault = cutOff(b.Targets[p.target].Members, r.cut)
		}
		isRestart := p.kind == toxics.KindRestart
		if isRestart {
			st.For = 0 // a restart is a point in time
		}
		st.At = g.clear(st, steps)
		if st.At+st.For > b.Horizon {
			st.For = b.Horizon - st.At
			if st.For < 0 || (st.For < b.Fault.Min && !isRestart) {
				continue // no room left on the timeline
			}
		}
		steps = append(steps, st)
		last = st.At
	}
	slices.SortStableFunc(steps, func(a, b sim.Step) int { return cmp.Compare(a.At, b.At) })
	return sim.Schedule{Steps: steps}
}

// clear returns the first offset from st.At at which st can stand with
// every step placed on its target, or an offset past the horizon.
func (g *gen) clear(st sim.Step, placed []sim.Step) time.Duration {
	for moved := true; moved && st.At <= g.b.Horizon; {
		moved = false
		for _, q := range placed {
			if q.Target == st.Target && !together(q, st) {
				// Past q's end; a restart at q's end would still touch it.
				st.At = max(q.End(), st.At+g.b.Resolution)
				moved = true
			}
		}
	}
	return st.At
}
