package breaker

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/shakedown/shakedown/properties"
)

// The spec of a breaker is a state machine (closed, open, half-open) whose
// inputs are the results of the calls that reached the dependency. The
// judge runs it alongside what the breaker did: every call let through,
// every call turned away, every state the breaker reported must be one
// the machine allows at that moment.
//
// Calls run concurrently, so events at the same virtual instant (a call
// ending as another starts, a fault failing several calls at once) may
// have reached the breaker in any order, and a slow call's result may or
// may not count once the breaker has moved on. The judge therefore keeps
// the set of every state the machine may be in, as a linearizability
// checker does, and reports a violation only when no order of the events
// and no reading of a late result explains what the breaker did.

type modelPhase uint8

const (
	mClosed modelPhase = iota
	mOpen
	mHalfOpen
)

func (p modelPhase) String() string {
	switch p {
	case mClosed:
		return "closed"
	case mOpen:
		return "open"
	}
	return "half-open"
}

// mstate is one state the spec's machine may be in. It is comparable, so
// sets of states dedupe.
type mstate struct {
	phase    modelPhase
	fails    int           // closed: consecutive failed calls
	since    time.Duration // when the phase began (-1: the start)
	openedAt time.Duration // open: when
	openedBy int           // open: the call whose failure opened it
	reopened bool          // open: by a failed probe
	probes   int           // half-open: probes let through
	succ     int           // half-open: consecutive successful probes
	bonus    int           // half-open, probes in flight: permits that late results gave back
	inflight string        // half-open: IDs of the probes in flight, 4 bytes each
	closedBy int           // closed: the probe whose success closed it (0: never opened)
}

func (s mstate) inFlight() int { return len(s.inflight) / 4 }

func (s mstate) hasProbe(id int) bool {
	for i := 0; i < len(s.inflight); i += 4 {
		if int(binary.LittleEndian.Uint32([]byte(s.inflight[i:i+4]))) == id {
			return true
		}
	}
	return false
}

func (s mstate) withProbe(id int) string {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(id))
	return s.inflight + string(b[:])
}

func (s mstate) withoutProbe(id int) string {
	for i := 0; i < len(s.inflight); i += 4 {
		if int(binary.LittleEndian.Uint32([]byte(s.inflight[i:i+4]))) == id {
			return s.inflight[:i] + s.inflight[i+4:]
		}
	}
	return s.inflight
}

type mevKind uint8

const (
	evObserve mevKind = iota // the breaker reported a state
	evStart                  // a call reached the dependency
	evEnd                    // the dependency answered (or the caller gave up)
	evReject                 // the breaker turned a call away
)

// mevent is one event of a run, for the judge. It holds no pointer, so
// that the judge's slices of them cost the garbage collector nothing.
type mevent struct {
	at    time.Duration
	seq   int32 // order recorded
	op    int32
	call  int32 // evStart, evEnd: index in Iteration.Calls
	kind  mevKind
	state State // evObserve
	after bool  // evObserve: after the call (else before)
}

// model is the spec's machine with the run's parameters.
type model struct {
	spec     Spec
	run      *Iteration
	maxSet   int
	canGroup int  // the most events at one instant whose orders are all tried
	notes    bool // note the changes of state for the timeline
}

func (m *model) openUntil(s mstate) time.Duration { return s.openedAt + m.spec.OpenFor }

func (m *model) exhausted(s mstate) bool {
	if m.spec.ProbesInFlight {
		return s.inFlight() >= m.spec.HalfOpenProbes+s.bonus
	}
	return s.probes >= m.spec.HalfOpenProbes
}

func halfOpen(s mstate, t time.Duration) mstate {
	return mstate{phase: mHalfOpen, since: t, openedAt: s.openedAt, openedBy: s.openedBy, reopened: s.reopened}
}

func (m *model) open(s mstate, t time.Duration, by int, reopened bool) mstate {
	return mstate{phase: mOpen, since: t, openedAt: t, openedBy: by, reopened: reopened, fails: s.fails, succ: s.succ}
}

func (m *model) closedResult(s mstate, failed bool, t time.Duration, id int) mstate {
	if !failed {
		s.fails = 0
		return s
	}
	s.fails++
	if s.fails >= m.spec.FailureThreshold {
		return m.open(s, t, id, false)
	}
	return s
}

func (m *model) halfResult(s mstate, failed bool, t time.Duration, id int) mstate {
	if failed {
		return m.open(s, t, id, true)
	}
	s.succ++
	if s.succ >= m.spec.SuccessesToClose {
		return mstate{phase: mClosed, since: t, closedBy: id, succ: s.succ}
	}
	return s
}

// apply appends to out the states s may move to on e; none if the
// breaker's doing is not allowed in s.
func (m *model) apply(s mstate, e *mevent, out []mstate) []mstate {
	t := e.at
	switch e.kind {
	case evStart:
		switch s.phase {
		case mClosed:
			return append(out, s)
		case mOpen:
			if t < m.openUntil(s)-m.spec.Slack {
				return out
			}
			s = halfOpen(s, t)
		}
		if m.exhausted(s) {
			return out
		}
		s.probes++
		s.inflight = s.withProbe(m.run.Calls[e.call].ID)
		return append(out, s)

	case evEnd:
		c := &m.run.Calls[e.call]
		outcomes := []bool{c.Failed}
		if c.Ambiguous {
			outcomes = []bool{true, false}
		}
		late := c.Start <= s.since
		for _, failed := range outcomes {
			switch s.phase {
			case mClosed:
				if late { // a call from before the breaker closed: it may be ignored
					out = append(out, s)
				}
				out = append(out, m.closedResult(s, failed, t, c.ID))
			case mOpen:
				out = append(out, s) // an open breaker ignores results
			case mHalfOpen:
				if s.hasProbe(c.ID) {
					p := s
					p.inflight = s.withoutProbe(c.ID)
					out = append(out, m.halfResult(p, failed, t, c.ID))
					continue
				}
				out = append(out, s) // not a probe: ignored...
				if late {            // ...or counted, giving back a permit it never took
					p := s
					if m.spec.ProbesInFlight {
						p.bonus++
					}
					out = append(out, m.halfResult(p, failed, t, c.ID))
				}
			}
		}
		return out

	case evReject:
		switch s.phase {
		case mClosed:
			return out
		case mOpen:
			if t <= m.openUntil(s)+m.spec.Slack {
				return append(out, s)
			}
			s = halfOpen(s, t) // it should have let a probe through by now
		}
		if m.exhausted(s) {
			return append(out, s)
		}
		return out

	case evObserve:
		switch e.state {
		case Unknown:
			return append(out, s)
		case Closed:
			if s.phase == mClosed {
				return append(out, s)
			}
		case Open:
			if s.phase == mOpen {
				return append(out, s)
			}
		case HalfOpen:
			switch {
			case s.phase == mHalfOpen:
				return append(out, s)
			case s.phase == mOpen && t >= m.openUntil(s)-m.spec.Slack:
				return append(out, halfOpen(s, t)) // eager breakers half-open on the clock
			}
		}
		return out
	}
	return out
}

// applySet applies e to every state of set, into out[:0].
func (m *model) applySet(set []mstate, e *mevent, out []mstate) []mstate {
	out = out[:0]
	for _, s := range set {
		out = m.apply(s, e, out)
	}
	return m.dedupe(out)
}

// dedupe removes repeated states, keeping the first of each (so the
// first state follows the most likely reading), and caps the set.
func (m *model) dedupe(set []mstate) []mstate {
	if len(set) < 2 {
		return set
	}
	seen := make(map[mstate]bool, len(set))
	out := set[:0]
	for _, s := range set {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	if len(out) > m.maxSet {
		out = out[:m.maxSet]
	}
	return out
}

// group runs the events of one instant through set in every order that
// keeps each op's own events in the order it made them. It returns the
// states after them (in buf, which it may grow), or the event no order
// explains and the states before it (on the order recorded).
func (m *model) group(set []mstate, g []mevent, buf []mstate) ([]mstate, *mevent, []mstate) {
	oneOp := true
	for _, e := range g[1:] {
		if e.op != g[0].op || e.op == 0 {
			oneOp = false
			break
		}
	}
	// The events of one op happen in the order it made them; only those
	// of several ops at once can interleave.
	if !oneOp && len(g) <= m.canGroup {
		type node struct {
			mask uint32
			s    mstate
		}
		// before[i] are the events of g[i]'s op that must come first.
		before := make([]uint32, len(g))
		for i := range g {
			for j := range g {
				if g[j].op == g[i].op && g[i].op != 0 && g[j].seq < g[i].seq {
					before[i] |= 1 << j
				}
			}
		}
		level := make([]node, 0, len(set))
		for _, s := range set {
			level = append(level, node{0, s})
		}
		for range g {
			seen := map[node]bool{}
			var next []node
			for _, nd := range level {
				for i := range g {
					bit := uint32(1) << i
					if nd.mask&bit != 0 || nd.mask&before[i] != before[i] {
						continue
					}
					for _, s := range m.apply(nd.s, &g[i], nil) {
						n := node{nd.mask | bit, s}
						if !seen[n] && len(next) < 64*m.maxSet {
							seen[n] = true
							next = append(next, n)
						}
					}
				}
			}
			level = next
		}
		out := buf[:0]
		for _, nd := range level {
			out = append(out, nd.s)
		}
		if out = m.dedupe(out); len(out) > 0 {
			return out, nil, nil
		}
	}
	// One op's events, too many events at once to try every order, or
	// none worked: the order recorded decides, and names the culprit.
	cur := append([]mstate(nil), set...)
	for i := range g {
		buf = m.applySet(cur, &g[i], buf)
		if len(buf) == 0 {
			return nil, &g[i], cur
		}
		cur, buf = buf, cur
	}
	return cur, nil, nil
}

// events lists the run's events in the order they were recorded,
// which is also time order: each was recorded at the virtual instant it
// happened, and virtual time does not pass while goroutines run.
func events(r *Iteration) []mevent {
	// Two slots per seq: an op's end is both a reject and a state seen.
	slots := make([]mevent, 2*r.seqs+2)
	put := func(e mevent, sub int) {
		if i := 2*int(e.seq) + sub; i < len(slots) {
			slots[i] = e
		}
	}
	for i := range r.Calls {
		c := &r.Calls[i]
		put(mevent{kind: evStart, at: c.Start, seq: int32(c.seqStart), op: int32(c.Op), call: int32(i)}, 0)
		if c.seqEnd > 0 {
			put(mevent{kind: evEnd, at: c.End, seq: int32(c.seqEnd), op: int32(c.Op), call: int32(i)}, 0)
		}
	}
	for _, o := range r.Ops {
		if o.seqStart == 0 {
			continue
		}
		if o.Before != Unknown {
			put(mevent{kind: evObserve, at: o.Start, seq: int32(o.seqStart), op: int32(o.ID), state: o.Before}, 0)
		}
		if o.TurnedAway() && !o.panicked { // a panic is not the breaker turning a call away
			put(mevent{kind: evReject, at: o.End, seq: int32(o.seqEnd), op: int32(o.ID)}, 0)
		}
		if o.After != Unknown {
			put(mevent{kind: evObserve, at: o.End, seq: int32(o.seqEnd), op: int32(o.ID), state: o.After, after: true}, 1)
		}
	}
	evs := slots[:0]
	for _, e := range slots {
		if e.seq != 0 {
			e.seq = int32(len(evs) + 1) // its own seq, in this order, for the op order rule
			evs = append(evs, e)
		}
	}
	return evs
}

// judge checks r against its spec and fills in its violations and
// counts.
func judge(r *Iteration) {
	r.Opened, r.HalfOpened, r.Reclosed = 0, 0, 0
	v := runModel(r, false)
	var vs properties.Violations
	if v != nil {
		vs = append(vs, *v)
	}
	vs = append(vs, bounds(r)...)
	slices.SortStableFunc(vs, func(a, b properties.Violation) int { return int(a.At - b.At) })
	r.Violations = vs
}

// timelineNotes runs the spec's machine again to note, for the timeline,
// where its state changed.
func (r *Iteration) timelineNotes() map[int]string {
	if r.notes == nil {
		opened, half, reclosed := r.Opened, r.HalfOpened, r.Reclosed
		r.notes = map[int]string{}
		runModel(r, true)
		r.Opened, r.HalfOpened, r.Reclosed = opened, half, reclosed
	}
	return r.notes
}

// runModel runs the spec's machine alongside r's events and returns the
// first departure from it, or nil. It counts the machine's changes of
// state in r and, with notes, notes them for the timeline.
func runModel(r *Iteration, notes bool) *properties.Violation {
	m := &model{spec: r.Spec, run: r, maxSet: 256, canGroup: 12, notes: notes}
	evs := events(r)
	set := []mstate{{phase: mClosed, since: -1}}
	var buf []mstate
	var v *properties.Violation
	for i := 0; i < len(evs); {
		j := i + 1
		for j < len(evs) && evs[j].at == evs[i].at {
			j++
		}
		prev := set[0]
		next, culprit, before := m.group(set, evs[i:j], buf)
		if culprit != nil {
			v = m.explain(before[0], culprit)
			break
		}
		set, buf = next, set
		if set[0] != prev {
			m.note(r, prev, set[0], evs[i:j])
		}
		i = j
	}
	return v
}

// note records, for the timeline, how the spec's state changed at the
// last op of a group, and counts the changes.
func (m *model) note(r *Iteration, prev, cur mstate, g []mevent) {
	op := 0
	for _, e := range g {
		if e.op != 0 {
			op = int(e.op)
		}
	}
	var text string
	switch {
	case cur.phase == mOpen && (prev.phase != mOpen || cur.openedAt != prev.openedAt):
		r.Opened++
		if !m.notes {
			return
		}
		why := fmt.Sprintf("%d consecutive failures", m.spec.FailureThreshold)
		if cur.reopened {
			why = "a failed probe"
		}
		text = fmt.Sprintf("spec: opens (after %s) until %v", why, fmtDur(m.openUntil(cur)))
	case cur.phase == mHalfOpen && prev.phase != mHalfOpen:
		r.HalfOpened++
		if !m.notes {
			return
		}
		text = "spec: half-open"
		if cur.probes > 0 {
			text += fmt.Sprintf(", probe %d/%d", cur.probes, m.spec.HalfOpenProbes)
		}
	case cur.phase == mHalfOpen && cur.probes != prev.probes:
		text = fmt.Sprintf("spec: probe %d/%d", cur.probes, m.spec.HalfOpenProbes)
	case cur.phase == mClosed && prev.phase == mHalfOpen:
		r.Reclosed++
		if !m.notes {
			return
		}
		text = fmt.Sprintf("spec: closes after %d successful probe%s", cur.succ, plural(cur.succ))
	case cur.phase == mClosed && cur.fails != prev.fails && cur.fails > 0:
		text = fmt.Sprintf("spec: %d/%d failures", cur.fails, m.spec.FailureThreshold)
	}
	if m.notes && text != "" && op != 0 {
		if old := r.notes[op]; old != "" {
			text = old + "; " + text
		}
		r.notes[op] = text
	}
}

// explain says why the breaker's doing e is not allowed in state s.
func (m *model) explain(s mstate, e *mevent) *properties.Violation {
	sp := m.spec
	v := &properties.Violation{At: e.at}
	why := m.stateWords(s, e.at)
	switch e.kind {
	case evStart:
		c := &m.run.Calls[e.call]
		v.Window = fmt.Sprintf("call %d (op %d)", c.ID, c.Op)
		what := fmt.Sprintf("call %d of op %d reached the dependency at %v", c.ID, c.Op, fmtDur(e.at))
		if c.Attempt > 1 {
			what = fmt.Sprintf("a retry (attempt %d of op %d, call %d) reached the dependency at %v", c.Attempt, c.Op, c.ID, fmtDur(e.at))
		}
		switch {
		case s.phase == mOpen && c.Attempt > 1:
			v.Invariant = "retries never bypass an open breaker"
		case s.phase == mOpen && !s.reopened:
			v.Invariant = fmt.Sprintf("opens after %d consecutive failures; no call reaches the dependency while open", sp.FailureThreshold)
		case s.phase == mOpen:
			v.Invariant = "no call reaches the dependency while open"
		case s.phase == mHalfOpen || (s.phase == mOpen && e.at >= m.openUntil(s)-sp.Slack):
			v.Invariant = fmt.Sprintf("half-open lets at most %d probe%s through", sp.HalfOpenProbes, plural(sp.HalfOpenProbes))
		default:
			v.Invariant = "the breaker follows its spec"
		}
		v.Got = what
		v.Want = "no call while " + why
	case evReject:
		v.Window = fmt.Sprintf("op %d", e.op)
		v.Got = fmt.Sprintf("op %d was turned away at %v", e.op, fmtDur(e.at))
		switch s.phase {
		case mClosed:
			if s.closedBy != 0 {
				v.Invariant = fmt.Sprintf("closes after %d successful probe%s", sp.SuccessesToClose, plural(sp.SuccessesToClose))
			} else {
				v.Invariant = fmt.Sprintf("opens after %d consecutive failures, not before", sp.FailureThreshold)
			}
			v.Want = "let through: " + why
		case mOpen:
			v.Invariant = fmt.Sprintf("half-opens %v after opening", sp.OpenFor)
			v.Want = fmt.Sprintf("a probe let through: it opened at %v and OpenFor is %v", fmtDur(s.openedAt), sp.OpenFor)
			v.Excess = fmtDur(e.at - m.openUntil(s) - sp.Slack)
		default:
			v.Invariant = fmt.Sprintf("half-open lets %d probe%s through", sp.HalfOpenProbes, plural(sp.HalfOpenProbes))
			v.Want = "let through: " + why
		}
	case evObserve:
		v.Window = fmt.Sprintf("op %d", e.op)
		when := "before"
		if e.after {
			when = "after"
		}
		v.Got = fmt.Sprintf("the breaker reported %s at %v (%s op %d)", e.state, fmtDur(e.at), when, e.op)
		v.Want = why
		switch {
		case e.state == Closed && s.phase == mHalfOpen:
			v.Invariant = fmt.Sprintf("closes after %d successful probe%s, not before", sp.SuccessesToClose, plural(sp.SuccessesToClose))
		case e.state != Closed && s.phase == mClosed && s.closedBy != 0 && s.fails == 0:
			v.Invariant = fmt.Sprintf("closes after %d successful probe%s", sp.SuccessesToClose, plural(sp.SuccessesToClose))
		case e.state == Open && s.phase == mClosed:
			v.Invariant = fmt.Sprintf("opens after %d consecutive failures, not before", sp.FailureThreshold)
		case e.state == HalfOpen && s.phase == mOpen:
			v.Invariant = fmt.Sprintf("half-opens %v after opening, not before", sp.OpenFor)
		case s.phase == mOpen:
			v.Invariant = fmt.Sprintf("opens after %d consecutive failures", sp.FailureThreshold)
		default:
			v.Invariant = "the breaker's state follows its spec"
		}
	}
	return v
}

// stateWords describes s at time t, for a violation.
func (m *model) stateWords(s mstate, t time.Duration) string {
	sp := m.spec
	switch s.phase {
	case mClosed:
		switch {
		case s.closedBy != 0 && s.fails == 0:
			return fmt.Sprintf("by the spec it is closed: it closed at %v when call %d was its %d%s successful probe",
				fmtDur(s.since), s.closedBy, s.succ, ordinalSuffix(s.succ))
		case s.fails == 0:
			return "by the spec it is closed: no failure since the last success"
		}
		return fmt.Sprintf("by the spec it is closed: %d consecutive failure%s, fewer than %d", s.fails, plural(s.fails), sp.FailureThreshold)
	case mOpen:
		by := fmt.Sprintf("after %d consecutive failed calls, the last call %d", sp.FailureThreshold, s.openedBy)
		if s.reopened {
			by = fmt.Sprintf("when probe call %d failed", s.openedBy)
		}
		if t >= m.openUntil(s)-sp.Slack {
			return fmt.Sprintf("by the spec it opened at %v (%s) and half-opened at %v (OpenFor %v)", fmtDur(s.openedAt), by, fmtDur(m.openUntil(s)), sp.OpenFor)
		}
		return fmt.Sprintf("by the spec it is open: it opened at %v (%s) and stays open until %v (OpenFor %v)",
			fmtDur(s.openedAt), by, fmtDur(m.openUntil(s)), sp.OpenFor)
	}
	used := fmt.Sprintf("%d of %d probes let through", s.probes, sp.HalfOpenProbes)
	if sp.ProbesInFlight {
		used = fmt.Sprintf("%d of %d probes in flight", s.inFlight(), sp.HalfOpenProbes+s.bonus)
	}
	return fmt.Sprintf("by the spec it is half-open since %v: %s, %d of %d successes to close", fmtDur(s.since), used, s.succ, sp.SuccessesToClose)
}

func ordinalSuffix(n int) string {
	switch {
	case n%100 >= 11 && n%100 <= 13:
		return "th"
	case n%10 == 1:
		return "st"
	case n%10 == 2:
		return "nd"
	case n%10 == 3:
		return "rd"
	}
	return "th"
}

// bounds checks what needs no state machine: every call ends within
// CallTimeout, every call turned away within FailFast, the breaker does
// not panic, and after the last heal it recovers within the bound its
// spec implies. Each check reports its first violation, with a count of
// the others.
func bounds(r *Iteration) properties.Violations {
	sp := r.Spec
	var panics, timeouts, slow properties.Violations
	for _, o := range r.Ops {
		if o.seqStart == 0 {
			continue
		}
		lat := o.End - o.Start
		window := fmt.Sprintf("op %d", o.ID)
		if o.panicked {
			panics = append(panics, properties.Violation{Invariant: "the breaker does not panic", Window: window, At: o.Start, Got: o.Err, Want: "no panic"})
		}
		if lat > sp.CallTimeout+sp.Slack {
			timeouts = append(timeouts, properties.Violation{Invariant: fmt.Sprintf("every call ends within %v", sp.CallTimeout), Window: window, At: o.Start,
				Got:  fmt.Sprintf("op %d made at %v took %v (%s)", o.ID, fmtDur(o.Start), fmtDur(lat), errOrOK(o.Err)),
				Want: fmt.Sprintf("<= %v", sp.CallTimeout+sp.Slack), Excess: fmtDur(lat - sp.CallTimeout - sp.Slack)})
		}
		if o.TurnedAway() && lat > sp.FailFast {
			slow = append(slow, properties.Violation{Invariant: "calls turned away fail fast", Window: window, At: o.Start,
				Got:  fmt.Sprintf("op %d made at %v was turned away after %v (%s)", o.ID, fmtDur(o.Start), fmtDur(lat), errOrOK(o.Err)),
				Want: fmt.Sprintf("<= %v", sp.FailFast), Excess: fmtDur(lat - sp.FailFast)})
		}
	}
	var lost properties.Violations
	for _, c := range r.Calls {
		if c.Op == 0 {
			lost = append(lost, properties.Violation{Invariant: "calls carry the context the breaker was given", Window: fmt.Sprintf("call %d", c.ID), At: c.Start,
				Got:  fmt.Sprintf("call %d reached the dependency at %v with a context not derived from the one Execute got", c.ID, fmtDur(c.Start)),
				Want: "call(ctx) with ctx derived from Execute's: the verifier cannot tell which op made the call, and a timeout of the caller cannot stop it"})
		}
	}
	var vs properties.Violations
	for _, group := range []properties.Violations{panics, timeouts, slow, lost} {
		if len(group) == 0 {
			continue
		}
		first := group[0]
		if len(group) > 1 {
			first.Got += fmt.Sprintf("; %d calls in all", len(group))
		}
		vs = append(vs, first)
	}
	// Recovery: once the last outage is over, calls made after the bound
	// get through and succeed, and the breaker ends closed.
	healed := r.Schedule.Horizon()
	by := healed + r.recovery
	want := fmt.Sprintf("every call from %v on gets through and succeeds (last heal + CallTimeout %v + OpenFor %v + %d probe%s at %g/s + latency %v)",
		fmtDur(by), sp.CallTimeout, sp.OpenFor, sp.SuccessesToClose, plural(sp.SuccessesToClose), r.Rate, r.Latency)
	for _, o := range r.Ops {
		if o.seqStart == 0 || o.Start <= by || (!o.TurnedAway() && o.Err == "") {
			continue
		}
		what := "failed"
		if o.TurnedAway() {
			what = "was turned away"
		}
		vs = append(vs, properties.Violation{Invariant: "closes again once the dependency is healthy", Window: fmt.Sprintf("op %d", o.ID), At: o.Start,
			Got: fmt.Sprintf("op %d made at %v %s (%s), %v after the last outage ended at %v", o.ID, fmtDur(o.Start), what, errOrOK(o.Err),
				fmtDur(o.Start-healed), fmtDur(healed)),
			Want: want})
		break
	}
	if n := len(r.Ops); n > 0 {
		last := r.Ops[n-1]
		if last.seqStart != 0 && last.Start > by && last.After != Unknown && last.After != Closed {
			vs = append(vs, properties.Violation{Invariant: "closes again once the dependency is healthy", Window: fmt.Sprintf("op %d", last.ID), At: last.End,
				Got:  fmt.Sprintf("the breaker reported %s at the end of the run, %v after the last outage ended", last.After, fmtDur(last.End-healed)),
				Want: fmt.Sprintf("closed from %v on", fmtDur(by))})
		}
	}
	return vs
}

func errOrOK(err string) string {
	if err == "" {
		return "no error"
	}
	return err
}

// fmtDur prints a duration of a virtual timeline for people, rounded to
// 0.1ms (calls start on a prime number of nanoseconds, an artefact of
// keeping them off the round instants of faults and timeouts).
func fmtDur(d time.Duration) string {
	if d > 100*time.Microsecond || d < -100*time.Microsecond {
		return d.Round(100 * time.Microsecond).String()
	}
	return d.String()
}
