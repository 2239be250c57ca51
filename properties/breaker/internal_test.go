package breaker

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

const bms = time.Millisecond // a millisecond, short for the tables

func TestFakeDepPlan(t *testing.T) {
	step := func(at, d time.Duration, f toxics.Fault) sim.Step {
		return sim.Step{At: at, For: d, Target: TargetName, Fault: f}
	}
	tests := []struct {
		name  string
		steps []sim.Step
		at    time.Duration // when the call is made
		want  answer
	}{
		{"healthy", nil, 10 * bms, answer{at: 11 * bms}},
		{"down refuses", []sim.Step{step(0, 100*bms, toxics.Down{})}, 10 * bms, answer{at: 11 * bms, err: errDepRefused}},
		{"stop refuses", []sim.Step{step(0, 100*bms, toxics.Stop{})}, 10 * bms, answer{at: 11 * bms, err: errDepRefused}},
		{"crash refuses", []sim.Step{step(0, 100*bms, toxics.Crash{})}, 10 * bms, answer{at: 11 * bms, err: errDepRefused}},
		{"reset resets", []sim.Step{step(0, 100*bms, toxics.Reset{})}, 10 * bms, answer{at: 11 * bms, err: errDepReset}},
		{"blackhole never answers", []sim.Step{step(0, 100*bms, toxics.Blackhole{})}, 10 * bms, answer{at: 11 * bms, hang: true}},
		{"latency both ways counts twice", []sim.Step{step(0, 100*bms, toxics.Latency{Delay: 20 * bms})}, 10 * bms, answer{at: 51 * bms}},
		{"latency one way", []sim.Step{step(0, 100*bms, toxics.Latency{Delay: 20 * bms, Direction: toxics.Upstream})}, 10 * bms, answer{at: 31 * bms}},
		{"latency reverted delivers at once", []sim.Step{step(0, 30*bms, toxics.Latency{Delay: 50 * bms})}, 10 * bms, answer{at: 30 * bms}},
		{"pause answers when it ends", []sim.Step{step(0, 100*bms, toxics.Pause{})}, 10 * bms, answer{at: 101 * bms}},
		{"fault after the call is answered", []sim.Step{step(20*bms, 100*bms, toxics.Down{})}, 10 * bms, answer{at: 11 * bms}},
		{"down fails a call in flight", []sim.Step{step(0, 60*bms, toxics.Latency{Delay: 100 * bms}), step(50*bms, 10*bms, toxics.Down{})}, 10 * bms,
			answer{at: 50 * bms, err: errDepClosed}},
		{"crash resets a call in flight", []sim.Step{step(0, 50*bms, toxics.Blackhole{}), step(60*bms, 10*bms, toxics.Crash{})}, 10 * bms,
			answer{at: 60 * bms, err: errDepReset}},
		{"restart fails a call in flight", []sim.Step{step(0, 50*bms, toxics.Pause{}), step(30*bms, 0, toxics.Restart{})}, 10 * bms,
			answer{at: 30 * bms, err: errDepClosed}},
		{"blackhole loses a call in flight", []sim.Step{step(0, 30*bms, toxics.Latency{Delay: 50 * bms}), step(20*bms, 10*bms, toxics.Blackhole{})}, 10 * bms,
			answer{at: 20 * bms, hang: true}},
		{"restart is a moment, not an outage", []sim.Step{step(5*bms, 0, toxics.Restart{})}, 10 * bms, answer{at: 11 * bms}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &fakeDep{steps: sim.Schedule{Steps: tt.steps}.Sorted().Steps, latency: bms}
			got := d.plan(tt.at)
			if tt.want.hang {
				require.True(t, got.hang, "%+v", got)
				return
			}
			require.False(t, got.hang, "%+v", got)
			require.Equal(t, tt.want.at, got.at)
			require.True(t, errors.Is(got.err, tt.want.err) || got.err == tt.want.err, "err %v, want %v", got.err, tt.want.err)
		})
	}
}

func TestFakeDepStaggersAnswers(t *testing.T) {
	d := &fakeDep{latency: bms}
	seen := map[time.Duration]bool{}
	for id := 1; id <= 500; id++ {
		a := d.answer(id, 0)
		require.NotZero(t, a.at%time.Microsecond, "answer %d falls on a round microsecond", id)
		require.False(t, seen[a.at], "two answers at %v", a.at)
		seen[a.at] = true
	}
}

// runBuilder writes an Iteration by hand, event by event, as the
// recorder would.
type runBuilder struct {
	r   *Iteration
	seq int
}

func newRunBuilder(spec Spec) *runBuilder {
	return &runBuilder{r: &Iteration{Spec: spec.withDefaults(), Rate: 100, Latency: bms, recovery: time.Hour}}
}

func (b *runBuilder) next() int { b.seq++; return b.seq }

// op starts op id at t, having seen state before.
func (b *runBuilder) op(id int, t time.Duration, before State) {
	for len(b.r.Ops) < id {
		b.r.Ops = append(b.r.Ops, Op{ID: len(b.r.Ops) + 1})
	}
	o := &b.r.Ops[id-1]
	o.Start, o.Before, o.seqStart = t, before, b.next()
}

// call starts a call of op at t and returns its ID.
func (b *runBuilder) call(op int, t time.Duration) int {
	id := len(b.r.Calls) + 1
	b.r.Ops[op-1].Calls = append(b.r.Ops[op-1].Calls, id)
	b.r.Calls = append(b.r.Calls, Call{ID: id, Op: op, Attempt: len(b.r.Ops[op-1].Calls), Start: t, seqStart: b.next()})
	return id
}

func (b *runBuilder) answer(id int, t time.Duration, failed bool) {
	c := &b.r.Calls[id-1]
	c.End, c.Failed, c.seqEnd = t, failed, b.next()
	if failed {
		c.Err = "connection refused"
	}
}

func (b *runBuilder) end(op int, t time.Duration, after State, err string) {
	o := &b.r.Ops[op-1]
	o.End, o.After, o.Err, o.seqEnd = t, after, err, b.next()
}

// simple is one op with one call answered at once.
func (b *runBuilder) simple(op int, t time.Duration, failed bool, after State) {
	b.op(op, t, Unknown)
	c := b.call(op, t)
	b.answer(c, t+bms, failed)
	err := ""
	if failed {
		err = "connection refused"
	}
	b.end(op, t+bms, after, err)
}

func (b *runBuilder) rejected(op int, t time.Duration, state State) {
	b.op(op, t, state)
	b.end(op, t, state, "circuit breaker open")
}

func (b *runBuilder) judge() *Iteration {
	b.r.seqs = b.seq
	for _, o := range b.r.Ops {
		b.r.Duration = max(b.r.Duration, o.End)
	}
	judge(b.r)
	return b.r
}

var spec3 = Spec{FailureThreshold: 3, OpenFor: 100 * bms, CallTimeout: 50 * bms}

func TestJudgeFollowsTheSpec(t *testing.T) {
	b := newRunBuilder(spec3)
	b.simple(1, 10*bms, true, Closed)
	b.simple(2, 20*bms, true, Closed)
	b.simple(3, 30*bms, true, Open) // opens at 31ms until 131ms
	b.rejected(4, 40*bms, Open)
	b.rejected(5, 130*bms, Open)
	b.simple(6, 140*bms, false, Closed) // the probe closes it
	b.simple(7, 150*bms, true, Closed)
	r := b.judge()
	require.Empty(t, r.Violations)
	require.Equal(t, [3]int{1, 1, 1}, [3]int{r.Opened, r.HalfOpened, r.Reclosed})
}

func TestJudgeCatches(t *testing.T) {
	tests := []struct {
		name  string
		spec  Spec
		build func(b *runBuilder)
		want  string // in the first violation's invariant
	}{
		{"a call after the threshold", spec3, func(b *runBuilder) {
			b.simple(1, 10*bms, true, Closed)
			b.simple(2, 20*bms, true, Closed)
			b.simple(3, 30*bms, true, Unknown)
			b.simple(4, 40*bms, true, Unknown)
		}, "opens after 3 consecutive failures; no call reaches the dependency while open"},
		{"reports closed after the threshold", spec3, func(b *runBuilder) {
			b.simple(1, 10*bms, true, Closed)
			b.simple(2, 20*bms, true, Closed)
			b.simple(3, 30*bms, true, Closed)
		}, "opens after 3 consecutive failures"},
		{"opens too early", spec3, func(b *runBuilder) {
			b.simple(1, 10*bms, true, Closed)
			b.rejected(2, 20*bms, Open)
		}, "opens after 3 consecutive failures, not before"},
		{"a retry while open", spec3, func(b *runBuilder) {
			b.simple(1, 10*bms, true, Closed)
			b.simple(2, 20*bms, true, Closed)
			b.op(3, 30*bms, Closed)
			c := b.call(3, 30*bms)
			b.answer(c, 31*bms, true)
			c = b.call(3, 35*bms)
			b.answer(c, 36*bms, true)
			b.end(3, 36*bms, Unknown, "refused")
		}, "retries never bypass an open breaker"},
		{"stays open too long", spec3, func(b *runBuilder) {
			b.simple(1, 10*bms, true, Closed)
			b.simple(2, 20*bms, true, Closed)
			b.simple(3, 30*bms, true, Open)
			b.rejected(4, 140*bms, Open)
		}, "half-opens 100ms after opening"},
		{"too many probes", spec3, func(b *runBuilder) {
			b.simple(1, 10*bms, true, Closed)
			b.simple(2, 20*bms, true, Closed)
			b.simple(3, 30*bms, true, Open)
			b.op(4, 140*bms, Unknown)
			c4 := b.call(4, 140*bms)
			b.op(5, 145*bms, Unknown)
			b.call(5, 145*bms)
			b.answer(c4, 150*bms, false)
		}, "half-open lets at most 1 probe through"},
		{"a failed probe does not reopen", spec3, func(b *runBuilder) {
			b.simple(1, 10*bms, true, Closed)
			b.simple(2, 20*bms, true, Closed)
			b.simple(3, 30*bms, true, Open)
			b.simple(4, 140*bms, true, Unknown)
			b.simple(5, 150*bms, false, Unknown)
		}, "no call reaches the dependency while open"},
		{"closes too early", Spec{FailureThreshold: 1, OpenFor: 100 * bms, CallTimeout: 50 * bms, HalfOpenProbes: 2, SuccessesToClose: 2}, func(b *runBuilder) {
			b.simple(1, 10*bms, true, Open)
			b.simple(2, 120*bms, false, Closed)
		}, "closes after 2 successful probes, not before"},
		{"a call without its timeout", spec3, func(b *runBuilder) {
			b.op(1, 10*bms, Closed)
			c := b.call(1, 10*bms)
			b.answer(c, 70*bms, true)
			b.end(1, 70*bms, Closed, "context canceled")
		}, "every call ends within 50ms"},
		{"a slow refusal", spec3, func(b *runBuilder) {
			b.simple(1, 10*bms, true, Closed)
			b.simple(2, 20*bms, true, Closed)
			b.simple(3, 30*bms, true, Open)
			b.op(4, 40*bms, Open)
			b.end(4, 45*bms, Open, "circuit breaker open")
		}, "calls turned away fail fast"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newRunBuilder(tt.spec)
			tt.build(b)
			r := b.judge()
			require.NotEmpty(t, r.Violations, "timeline:\n%s", r.Timeline())
			require.Equal(t, tt.want, r.Violations[0].Invariant, "%s\ntimeline:\n%s", r.Violations, r.Timeline())
			require.Contains(t, r.Timeline(), "✗")
		})
	}
}

// Events at one instant may have reached the breaker in any order: the
// judge finds the order that explains what it did.
func TestJudgeTriesEveryOrderAtOneInstant(t *testing.T) {
	b := newRunBuilder(spec3)
	b.simple(1, 10*bms, true, Closed)
	b.simple(2, 20*bms, true, Closed)
	// Op 3's call fails at 40ms; at that very instant op 4 starts and is
	// let through, recorded after the failure: the breaker saw op 4 first.
	b.op(3, 30*bms, Closed)
	c3 := b.call(3, 30*bms)
	b.answer(c3, 40*bms, true)
	b.op(4, 40*bms, Unknown)
	c4 := b.call(4, 40*bms)
	b.end(3, 40*bms, Open, "refused")
	b.answer(c4, 41*bms, true)
	b.end(4, 41*bms, Open, "refused")
	r := b.judge()
	require.Empty(t, r.Violations, "timeline:\n%s", r.Timeline())

	// One instant later, the same call is a violation.
	b = newRunBuilder(spec3)
	b.simple(1, 10*bms, true, Closed)
	b.simple(2, 20*bms, true, Closed)
	b.simple(3, 30*bms, true, Open)
	b.op(4, 31*bms+1, Unknown)
	b.call(4, 31*bms+1)
	r = b.judge()
	require.NotEmpty(t, r.Violations)
}

// A slow call let through while closed that fails after the breaker opened
// and half-opened may count (failsafe-go) or not (gobreaker).
func TestJudgeLateResults(t *testing.T) {
	for _, counted := range []bool{false, true} {
		b := newRunBuilder(Spec{FailureThreshold: 2, OpenFor: 100 * bms, CallTimeout: time.Second})
		b.op(1, 5*bms, Closed)
		slow := b.call(1, 5*bms)
		b.simple(2, 10*bms, true, Closed)
		b.simple(3, 20*bms, true, Open) // opens at 21ms until 121ms
		b.op(4, 130*bms, Unknown)
		probe := b.call(4, 130*bms) // half-open, probe 1/1
		b.answer(slow, 140*bms, true)
		after := HalfOpen
		if counted {
			after = Open
		}
		b.end(1, 140*bms, after, "timeout")
		b.answer(probe, 150*bms, false)
		b.end(4, 150*bms, map[bool]State{false: Closed, true: Open}[counted], "")
		r := b.judge()
		require.Empty(t, r.Violations, "counted %v:\n%s", counted, r.Timeline())
	}
}

// A call answered at the very instant its caller gave up may have counted
// as either.
func TestJudgeAmbiguousAnswer(t *testing.T) {
	b := newRunBuilder(Spec{FailureThreshold: 1, OpenFor: 100 * bms, CallTimeout: time.Second})
	b.op(1, 10*bms, Closed)
	c := b.call(1, 10*bms)
	b.answer(c, 20*bms, false)
	b.r.Calls[c-1].Ambiguous = true
	b.end(1, 20*bms, Open, "timeout") // the breaker saw a failure
	r := b.judge()
	require.Empty(t, r.Violations, "timeline:\n%s", r.Timeline())
}

func TestTimelineFolds(t *testing.T) {
	b := newRunBuilder(spec3)
	for i := 1; i <= 20; i++ {
		b.simple(i, time.Duration(i)*10*bms, false, Closed)
	}
	r := b.judge()
	tl := r.Timeline()
	require.Equal(t, 1, strings.Count(tl, "\n"), tl)
	require.Contains(t, tl, "ops 1..20 (20 calls, to 201ms) ok in 1ms")
}
