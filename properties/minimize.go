package properties

import (
	"cmp"
	"reflect"
	"slices"
	"time"

	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// Minimize shrinks the failing schedule s to a 1-minimal one within b:
// a schedule that still fails (fails reports true) but from which no step
// can be removed, no two steps on one target merged (see below), no
// step's kind replaced by a milder kind that b allows
// on its target, no member left out of a partition's group (a group keeps
// one), and no magnitude (offset, duration, delay, jitter, rate,
// size, probability, limit, timeout, grace) moved one grain toward its
// mild end, without the failure going away. The grain of offsets and
// durations is b.Resolution; that of a value is b.Resolution too for
// durations (a tenth of the range, at least 1ms, for a range narrower
// than one) and a sixty-fourth of the range for numbers. A
// magnitude moves by bisection between its mild end and its value.
//
// Two steps on one target that overlap, or leave a gap of at most
// b.Resolution between them, merge into one step from the first's start
// to the later end, with the fault of either (the milder kind first, a
// restart never, as it takes no time); the merged step is no longer than
// b.Fault.Max. A merge is tried after the removals: where neither step
// alone fails but the two together do (a short outage cut in two), it is
// the only move to fewer steps.
//
// fails is asked about each candidate once; it decides what failing means
// (Check runs the schedule and confirms a failure by running it again)
// and how long to go on (a fails that returns false without running,
// once out of time, ends the pass early with the mildest failing
// schedule found so far). Candidates that b does not allow (a step past
// the horizon, two faults on one target that do not compose) are never
// asked about. Check and breaker.Check call it after rapid's shrinking.
func Minimize(b Bounds, s sim.Schedule, fails func(sim.Schedule) bool) sim.Schedule {
	return minimize(b, s, fails, nil)
}

// minimize is Minimize; ahead, when not nil, is told the candidates a
// pass is about to ask about, in the order it asks (those the bounds
// allow and not asked before), so that it can judge some of them ahead,
// side by side.
func minimize(b Bounds, s sim.Schedule, fails func(sim.Schedule) bool, ahead func([]sim.Schedule)) sim.Schedule {
	m := newMinimizer(b, fails)
	m.ahead = ahead
	s = normal(s)
	for changed := true; changed; {
		changed = false
		var c bool
		s, c = m.removeSteps(s)
		changed = changed || c
		s, c = m.merges(s)
		changed = changed || c
		s, c = m.milderKinds(s)
		changed = changed || c
		s, c = m.magnitudes(s)
		changed = changed || c
		s, c = m.smallerGroups(s)
		changed = changed || c
	}
	return s
}

type minimizer struct {
	b       Bounds
	targets []sim.Target
	fails   func(sim.Schedule) bool
	seen    map[string]bool
	ahead   func([]sim.Schedule)
}

func newMinimizer(b Bounds, fails func(sim.Schedule) bool) *minimizer {
	b = b.withDefaults()
	m := &minimizer{b: b, fails: fails, seen: map[string]bool{}}
	m.targets = m.boundTargets()
	return m
}

// boundTargets are targets named as the bounds' are, taking the kinds
// the bounds give each.
func (m *minimizer) boundTargets() []sim.Target {
	var out []sim.Target
	for _, t := range m.b.Targets {
		out = append(out, boundTarget{anyFault(t.Name), t.Kinds})
	}
	return out
}

// boundTarget takes the kinds the bounds give a target.
type boundTarget struct {
	anyFault
	kinds []toxics.Kind
}

func (t boundTarget) Supports(k toxics.Kind) bool { return slices.Contains(t.kinds, k) }

// offer tells ahead the candidates of cs that try would ask fails about.
func (m *minimizer) offer(cs []sim.Schedule) {
	if m.ahead == nil {
		return
	}
	var out []sim.Schedule
	for _, c := range cs {
		c = normal(c)
		if _, seen := m.seen[scheduleKey(c)]; !seen && m.allowed(c) {
			out = append(out, c)
		}
	}
	m.ahead(out)
}

// try reports whether candidate c is allowed by the bounds and fails.
func (m *minimizer) try(c sim.Schedule) bool {
	c = normal(c)
	if !m.allowed(c) {
		return false
	}
	key := scheduleKey(c)
	if v, ok := m.seen[key]; ok {
		return v
	}
	v := m.fails(c)
	m.seen[key] = v
	return v
}

// allowed reports whether the bounds allow c: its steps on the timeline
// within the horizon, at least Fault.Min long (a restart aside), of kinds
// their targets take, composing where they overlap on one target.
func (m *minimizer) allowed(c sim.Schedule) bool {
	if len(c.Steps) == 0 {
		return false
	}
	for _, st := range c.Steps {
		restart := st.Fault != nil && st.Fault.Kind() == toxics.KindRestart
		if st.At < 0 || st.End() > m.b.Horizon || (!restart && st.For < m.b.Fault.Min) {
			return false
		}
		if k := m.kinds(st.Target); st.Fault == nil || !slices.Contains(k, st.Fault.Kind()) {
			return false
		}
	}
	return c.Validate(m.targets) == nil
}

func (m *minimizer) kinds(target string) []toxics.Kind {
	for _, t := range m.b.Targets {
		if t.Name == target {
			return t.Kinds
		}
	}
	return nil
}

// normal orders a schedule's steps by offset (stably), as Schedules draws
// them.
func normal(s sim.Schedule) sim.Schedule {
	steps := slices.Clone(s.Steps)
	slices.SortStableFunc(steps, func(a, b sim.Step) int { return cmp.Compare(a.At, b.At) })
	return sim.Schedule{Steps: steps}
}

func (m *minimizer) removeSteps(s sim.Schedule) (sim.Schedule, bool) {
	changed, offer := false, true
	for i := 0; i < len(s.Steps) && len(s.Steps) > 1; {
		if offer && m.ahead != nil {
			// The removals still to try of this s; another s, another list.
			var rest []sim.Schedule
			for j := i; j < len(s.Steps); j++ {
				rest = append(rest, sim.Schedule{Steps: slices.Delete(slices.Clone(s.Steps), j, j+1)})
			}
			m.offer(rest)
		}
		offer = false
		c := sim.Schedule{Steps: slices.Delete(slices.Clone(s.Steps), i, i+1)}
		if m.try(c) {
			s, changed, offer = normal(c), true, true
			continue
		}
		i++
	}
	return s, changed
}

// merges tries each pair of steps on one target that overlap or are
// adjacent as one step spanning both (see mergeCandidates), starting over
// after each merge that still fails.
func (m *minimizer) merges(s sim.Schedule) (sim.Schedule, bool) {
	changed := false
	for again := true; again; {
		again = false
		cs := m.mergeCandidates(s)
		m.offer(cs)
		for _, c := range cs {
			if m.try(c) {
				s, changed, again = normal(c), true, true
				break
			}
		}
	}
	return s, changed
}

// mergeCandidates are s with two steps on one target that overlap or
// leave a gap of at most the resolution merged into one, from the first's
// start to the later end, with either step's fault, the milder kind first
// (by the order of the target's kinds in the bounds). A restart's fault is
// not used (it takes no time), and a merged step longer than Fault.Max is
// not offered. s is in normal order.
func (m *minimizer) mergeCandidates(s sim.Schedule) []sim.Schedule {
	var out []sim.Schedule
	for i, a := range s.Steps {
		for j := i + 1; j < len(s.Steps); j++ {
			b := s.Steps[j]
			if b.Target != a.Target || b.At-a.End() > m.b.Resolution {
				continue
			}
			at, end := a.At, max(a.End(), b.End())
			if end-at > m.b.Fault.Max {
				continue
			}
			kinds := m.kinds(a.Target)
			faults := []toxics.Fault{a.Fault, b.Fault}
			if a.Fault == nil || b.Fault == nil {
				continue
			}
			if slices.Index(kinds, b.Fault.Kind()) < slices.Index(kinds, a.Fault.Kind()) {
				faults[0], faults[1] = faults[1], faults[0]
			}
			for fi, f := range faults {
				if f.Kind() == toxics.KindRestart || fi == 1 && reflect.DeepEqual(f, faults[0]) {
					continue
				}
				steps := slices.Delete(slices.Clone(s.Steps), j, j+1)
				steps[i] = sim.Step{At: at, For: end - at, Target: a.Target, Fault: f}
				out = append(out, normal(sim.Schedule{Steps: steps}))
			}
		}
	}
	return out
}

// milderKinds tries each step's milder kinds on its target, each with the
// severe end of its values (the magnitudes pass then makes them milder).
func (m *minimizer) milderKinds(s sim.Schedule) (sim.Schedule, bool) {
	changed := false
	for i := range s.Steps {
		st := s.Steps[i]
		kinds := m.kinds(st.Target)
		at := slices.Index(kinds, st.Fault.Kind())
		var cs []sim.Schedule
		for _, k := range kinds[:max(at, 0)] {
			c := sim.Schedule{Steps: slices.Clone(s.Steps)}
			c.Steps[i] = m.withKind(st, k)
			cs = append(cs, c)
		}
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

// withKind is st with a fault of kind k instead, its values at their
// severe end (see severe); a restart takes no time, and a step that was
// one lasts Fault.Min.
func (m *minimizer) withKind(st sim.Step, k toxics.Kind) sim.Step {
	from := st.Fault.Kind()
	st.Fault = m.severe(fieldsOf(st.Fault)).fault(k)
	switch {
	case k == toxics.KindRestart:
		st.For = 0
	case from == toxics.KindRestart:
		st.For = m.b.Fault.Min
	}
	return st
}

// severe is f with every value at the harsh end of its range, its
// direction kept.
func (m *minimizer) severe(f faultFields) faultFields {
	v := m.b.Values
	return faultFields{dir: f.dir, delay: v.Delay.Max, jitter: min(v.Jitter, v.Delay.Max), rate: v.Rate.Min, size: v.SliceSize.Min,
		sliceDelay: v.SliceDelay.Max, closeDelay: v.CloseDelay.Max, prob: v.Corrupt[1], limit: v.DataLimit.Min,
		after: v.TimeoutAfter.Min, grace: v.Grace.Max, net: severeNet(f.net),
		clock: clockFields{offset: v.ClockOffset.Max, behind: f.clock.behind, stays: true},
		share: ppm(v.Share[1]), reply: len(toxics.RedisReplies()) - 1, code: len(toxics.PgErrorCodes()) - 1}
}

// fieldsOf is the inverse of faultFields.fault.
func fieldsOf(f toxics.Fault) faultFields {
	switch f := f.(type) {
	case toxics.Latency:
		return faultFields{delay: f.Delay, jitter: f.Jitter, dir: f.Direction}
	case toxics.Bandwidth:
		return faultFields{rate: f.Rate, dir: f.Direction}
	case toxics.Slicer:
		return faultFields{size: int64(f.AverageSize), variation: int64(f.SizeVariation), sliceDelay: f.Delay, dir: f.Direction}
	case toxics.SlowClose:
		return faultFields{closeDelay: f.Delay, dir: f.Direction}
	case toxics.Corrupt:
		return faultFields{prob: f.Probability, dir: f.Direction}
	case toxics.DataLimit:
		return faultFields{limit: f.Bytes, dir: f.Direction}
	case toxics.Timeout:
		return faultFields{after: f.After, dir: f.Direction}
	case toxics.Blackhole:
		return faultFields{dir: f.Direction}
	case toxics.Stop:
		return faultFields{grace: f.Grace}
	case toxics.Loss, toxics.ConnectHang, toxics.ConnLimit, toxics.Targeted:
		return netFieldsOf(f)
	case toxics.ClockSkew, toxics.ClockJump:
		return clockFieldsOf(f)
	case toxics.RedisDelay, toxics.RedisError, toxics.PgError, toxics.PgRefuse:
		return protoFields(f)
	}
	if h, ok := httpFieldsOf(f); ok {
		return h
	}
	if d, ok := dnsFieldsOf(f); ok {
		return d
	}
	return faultFields{}
}

// knob is one magnitude of a step: its value as a number, how to set it,
// the mild and the harsh end of its range, and its grain (the lattice of
// values tried is the multiples of grain, and the two ends).
type knob struct {
	name         string
	get          func(sim.Step) int64
	set          func(sim.Step, int64) sim.Step
	mild, severe int64
	grain        int64
}

// fieldKnob is a knob on one of a fault's fields.
func fieldKnob(name string, mild, severe, grain int64, get func(faultFields) int64, set func(*faultFields, int64)) knob {
	return knob{name: name, mild: mild, severe: severe, grain: grain,
		get: func(st sim.Step) int64 { return get(fieldsOf(st.Fault)) },
		set: func(st sim.Step, v int64) sim.Step {
			f := fieldsOf(st.Fault)
			set(&f, v)
			st.Fault = f.fault(st.Fault.Kind())
			return st
		}}
}

// knobs are the magnitudes of st, in the order they are moved.
func (m *minimizer) knobs(st sim.Step) []knob {
	b := m.b
	res := int64(b.Resolution)
	ks := []knob{{name: "offset", mild: 0, severe: int64(b.Horizon), grain: res,
		get: func(st sim.Step) int64 { return int64(st.At) },
		set: func(st sim.Step, v int64) sim.Step { st.At = time.Duration(v); return st }}}
	kind := st.Fault.Kind()
	if kind != toxics.KindRestart {
		ks = append(ks, knob{name: "duration", mild: int64(b.Fault.Min), severe: int64(b.Fault.Max), grain: res,
			get: func(st sim.Step) int64 { return int64(st.For) },
			set: func(st sim.Step, v int64) sim.Step { st.For = time.Duration(v); return st }})
	}
	v := b.Values
	dur := func(name string, r DurationRange, milderHigh bool, get func(faultFields) time.Duration, set func(*faultFields, time.Duration)) knob {
		mild, severe := r.Min, r.Max
		if milderHigh {
			mild, severe = severe, mild
		}
		return fieldKnob(name, int64(mild), int64(severe), int64(durGrain(b.Resolution, r.Max-r.Min)),
			func(f faultFields) int64 { return int64(get(f)) }, func(f *faultFields, x int64) { set(f, time.Duration(x)) })
	}
	num := func(name string, r Int64Range, get func(faultFields) int64, set func(*faultFields, int64)) knob {
		return fieldKnob(name, r.Max, r.Min, max(1, (r.Max-r.Min)/64), get, set)
	}
	if kind.IsLink() && fieldsOf(st.Fault) != (faultFields{}) || kind == toxics.KindBlackhole {
		// Directions are listed mildest first.
		ks = append(ks, fieldKnob("direction", 0, int64(len(b.Directions)-1), 1,
			func(f faultFields) int64 { return int64(slices.Index(b.Directions, f.dir)) },
			func(f *faultFields, x int64) { f.dir = b.Directions[x] }))
	}
	switch kind {
	case toxics.KindDNSDelay:
		ks = append(ks, dur("delay", v.Delay, false, func(f faultFields) time.Duration { return f.delay }, func(f *faultFields, x time.Duration) { f.delay = x }))
	case toxics.KindLatency:
		ks = append(ks,
			dur("delay", v.Delay, false, func(f faultFields) time.Duration { return f.delay }, func(f *faultFields, x time.Duration) { f.delay = x }),
			dur("jitter", DurationRange{0, v.Jitter}, false, func(f faultFields) time.Duration { return f.jitter }, func(f *faultFields, x time.Duration) { f.jitter = x }))
	case toxics.KindBandwidth:
		ks = append(ks, num("rate", v.Rate, func(f faultFields) int64 { return f.rate }, func(f *faultFields, x int64) { f.rate = x }))
	case toxics.KindSlicer:
		ks = append(ks,
			num("slice size", v.SliceSize, func(f faultFields) int64 { return f.size }, func(f *faultFields, x int64) { f.size = x }),
			dur("slice delay", v.SliceDelay, false, func(f faultFields) time.Duration { return f.sliceDelay }, func(f *faultFields, x time.Duration) { f.sliceDelay = x }))
	case toxics.KindSlowClose:
		ks = append(ks, dur("close delay", v.CloseDelay, false, func(f faultFields) time.Duration { return f.closeDelay }, func(f *faultFields, x time.Duration) { f.closeDelay = x }))
	case toxics.KindCorrupt:
		lo, hi := ppm(v.Corrupt[0]), ppm(v.Corrupt[1])
		ks = append(ks, fieldKnob("probability", lo, hi, max(1, (hi-lo)/64),
			func(f faultFields) int64 { return ppm(f.prob) }, func(f *faultFields, x int64) { f.prob = float64(x) / 1e6 }))
	case toxics.KindDataLimit:
		ks = append(ks, num("data limit", v.DataLimit, func(f faultFields) int64 { return f.limit }, func(f *faultFields, x int64) { f.limit = x }))
	case toxics.KindTimeout:
		ks = append(ks, dur("timeout", v.TimeoutAfter, true, func(f faultFields) time.Duration { return f.after }, func(f *faultFields, x time.Duration) { f.after = x }))
	case toxics.KindStop:
		ks = append(ks, dur("grace", v.Grace, false, func(f faultFields) time.Duration { return f.grace }, func(f *faultFields, x time.Duration) { f.grace = x }))
	case toxics.KindLoss, toxics.KindConnLimit, toxics.KindTargeted:
		ks = append(ks, netKnobs(kind)...)
	case toxics.KindClockSkew, toxics.KindClockJump:
		ks = append(ks, dur("clock offset", v.ClockOffset, false, func(f faultFields) time.Duration { return f.clock.offset }, func(f *faultFields, x time.Duration) { f.clock.offset = x }))
	case toxics.KindRedisDelay:
		ks = append(ks, dur("delay", v.Delay, false, func(f faultFields) time.Duration { return f.delay }, func(f *faultFields, x time.Duration) { f.delay = x }))
	}
	if kind.Protocol() != "" {
		ks = append(ks, protoKnobs(kind, v)...)
	}
	return ks
}

// durGrain is the grain of a duration value whose range spans span.
func durGrain(res, span time.Duration) time.Duration {
	if span >= res {
		return res
	}
	return max(time.Millisecond, span/10/time.Millisecond*time.Millisecond)
}

// milder is the value one grain milder than v on k's lattice: the next
// multiple of the grain toward the mild end, or the mild end itself.
func (k knob) milder(v int64) int64 {
	if k.mild <= k.severe { // mild is the low end
		return max((v-1)/k.grain*k.grain, k.mild)
	}
	n := (v/k.grain + 1) * k.grain
	return min(n, k.mild)
}

// between reports whether x lies strictly between a and b.
func between(x, a, b int64) bool { return min(a, b) < x && x < max(a, b) }

// mid is the value the bisection between bad (fails) and good (believed
// not to) tries next, halfway on the knob's grain; false when bad is one
// step from good, and the bisection is over.
func (k knob) mid(bad, good int64) (int64, bool) {
	next := k.milder(bad)
	if next == good {
		return 0, false
	}
	mid := good + (bad-good)/2
	mid = mid / k.grain * k.grain
	if !between(mid, good, bad) {
		mid = next
	}
	return mid, true
}

func (m *minimizer) magnitudes(s sim.Schedule) (sim.Schedule, bool) {
	changed := false
	for i := range s.Steps {
		for _, k := range m.knobs(s.Steps[i]) {
			with := func(v int64) sim.Schedule {
				c := sim.Schedule{Steps: slices.Clone(s.Steps)}
				c.Steps[i] = k.set(c.Steps[i], v)
				return c
			}
			v := k.get(s.Steps[i])
			if v == k.mild || !between(v, k.mild-1, k.severe+1) && !between(v, k.severe-1, k.mild+1) {
				continue // at its mild end, or outside the bounds (a hand-written schedule): left as it is
			}
			bad, good := v, k.mild // bad fails; good is believed not to
			// ahead: the candidate asked about next, then those asked
			// after it, as it fails or not, when there is an ahead.
			ahead := func(c int64, after ...[2]int64) {
				if m.ahead == nil {
					return
				}
				cs := []sim.Schedule{with(c)}
				for _, a := range after {
					if mid, ok := k.mid(a[0], a[1]); ok {
						cs = append(cs, with(mid))
					}
				}
				m.offer(cs)
			}
			ahead(good, [2]int64{bad, good})
			if m.try(with(good)) {
				bad = good
			}
			for bad != good {
				mid, ok := k.mid(bad, good)
				if !ok {
					break
				}
				ahead(mid, [2]int64{mid, good}, [2]int64{bad, mid})
				if m.try(with(mid)) {
					bad = mid
				} else {
					good = mid
				}
			}
			if bad != v {
				// The steps' order may change with an offset; s keeps
				// the index i on the same step until the loop moves on.
				s.Steps[i] = k.set(s.Steps[i], bad)
				changed = true
			}
		}
	}
	return normal(s), changed
}

// neighbours are the schedules one move milder than s: each step
// removed, each two steps on one target merged (see mergeCandidates), each step's kind replaced by each milder one, each member left
// out of a partition's group, each magnitude
// moved one grain toward its mild end. A 1-minimal schedule fails and
// none of its allowed neighbours does. (For tests.)
func neighbours(b Bounds, s sim.Schedule) []sim.Schedule {
	m := newMinimizer(b, nil)
	var out []sim.Schedule
	add := func(c sim.Schedule) {
		if c = normal(c); m.allowed(c) {
			out = append(out, c)
		}
	}
	for _, c := range m.mergeCandidates(normal(s)) {
		add(c)
	}
	for i, st := range s.Steps {
		add(sim.Schedule{Steps: slices.Delete(slices.Clone(s.Steps), i, i+1)})
		kinds := m.kinds(st.Target)
		for _, k := range kinds[:max(slices.Index(kinds, st.Fault.Kind()), 0)] {
			c := sim.Schedule{Steps: slices.Clone(s.Steps)}
			c.Steps[i] = m.withKind(st, k)
			add(c)
		}
		for _, c := range smallerGroupCandidates(s, i) {
			add(c)
		}
		for _, k := range m.knobs(st) {
			if v := k.get(st); v != k.mild {
				c := sim.Schedule{Steps: slices.Clone(s.Steps)}
				c.Steps[i] = k.set(st, k.milder(v))
				add(c)
			}
		}
	}
	return out
}
