package breaker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// Iteration is one schedule of outages run against a breaker in virtual
// time: every call made through the breaker, every call that reached the
// dependency, and what the spec says of them.
type Iteration struct {
	Schedule sim.Schedule
	Spec     Spec
	// Rate and Latency are the load and the healthy dependency's answer
	// time of the run.
	Rate    float64
	Latency time.Duration
	// Duration runs from the start to the end of the last call.
	Duration time.Duration
	// Ops are the calls made through the breaker, by ID (from 1).
	Ops []Op
	// Calls are the calls that reached the dependency, by ID (from 1).
	Calls []Call
	// Violations are the ways the breaker broke its spec, in timeline
	// order; none if it held. Only the first departure from the spec's
	// state machine is reported: what follows it would be judged against
	// a state the breaker is not in.
	Violations properties.Violations
	// Opened counts the times the breaker opened (by the spec, from its
	// calls), HalfOpened its half-open spells, Reclosed the times it
	// closed again after opening.
	Opened, HalfOpened, Reclosed int

	recovery time.Duration  // the bound within which it closes after the last heal
	seqs     int            // events recorded
	notes    map[int]string // op → where the spec's machine moved, for the timeline
}

// Broken reports whether the breaker broke its spec.
func (r *Iteration) Broken() bool { return r != nil && len(r.Violations) > 0 }

// Op is one call made through the breaker.
type Op struct {
	ID int
	// Start is when the call was made, End when the breaker returned.
	Start, End time.Duration
	// Err is the error the breaker returned ("" for none).
	Err string
	// Calls are the IDs of the calls it made to the dependency: more
	// than one with retries, none when the breaker turned it away.
	Calls []int
	// Before and After are the states the breaker reported just before
	// and just after the call.
	Before, After State

	seqStart, seqEnd int
	panicked         bool
}

// TurnedAway reports whether the breaker answered the call without
// reaching the dependency.
func (o Op) TurnedAway() bool { return len(o.Calls) == 0 }

// Call is one call that reached the dependency.
type Call struct {
	ID, Op int
	// Attempt is 1 for the first call of its op, 2 for its first retry,
	// and so on.
	Attempt    int
	Start, End time.Duration
	Failed     bool
	// Ambiguous is true when the answer came at the very instant the
	// caller gave up: the breaker may have counted it either way.
	Ambiguous bool
	Err       string

	seqStart, seqEnd int
}

// Errors the fake dependency answers with.
var (
	errDepRefused = &net.OpError{Op: "dial", Net: "tcp", Addr: depAddr{}, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	errDepReset   = &net.OpError{Op: "read", Net: "tcp", Addr: depAddr{}, Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	errDepClosed  = fmt.Errorf("dependency closed the connection: %w", io.ErrUnexpectedEOF)
)

type depAddr struct{}

func (depAddr) Network() string { return "tcp" }
func (depAddr) String() string  { return TargetName }

// fakeDep is the dependency of a breaker run: it answers every call as the
// schedule says, in virtual time. Its state is a function of the time, so
// no goroutine applies the faults.
type fakeDep struct {
	steps   []sim.Step // by At
	latency time.Duration
}

// answer is what the dependency does with a call made at s.
type answer struct {
	at   time.Duration // when it answers
	err  error         // with this error, or nil
	hang bool          // never: only the caller's giving up ends it
}

// answer is what the dependency does with call id, made at s. Answers
// are staggered by 1 to 997 nanoseconds by call, so that no two calls end
// at the same instant (an outage that fails every call in flight fails
// them one after the other) and none on the round instant a timeout set
// in microseconds fires: events at one instant reach the breaker in an
// order left to the scheduler, and the breaker might see a timeout where
// the dependency saw an answer.
func (d *fakeDep) answer(id int, s time.Duration) answer {
	a := d.plan(s)
	a.at += time.Duration(1 + id%997)
	return a
}

func (d *fakeDep) plan(s time.Duration) answer {
	a := answer{at: s + d.latency}
	// The faults that hold when the call is made.
	for _, st := range d.steps {
		if st.At > s {
			break
		}
		if s >= st.End() {
			continue
		}
		switch f := st.Fault.(type) {
		case toxics.Down, toxics.Stop, toxics.Crash:
			return answer{at: s + d.latency, err: errDepRefused}
		case toxics.Reset:
			return answer{at: s + d.latency, err: errDepReset}
		case toxics.Blackhole:
			a.hang = true
		case toxics.Pause:
			a.at = max(a.at, st.End()+d.latency)
		case toxics.Latency:
			delay := f.Delay
			if f.Direction == toxics.Both {
				delay *= 2
			}
			// Reverting a latency delivers what it holds at once.
			a.at = max(s+d.latency, min(a.at+delay, st.End()))
		}
	}
	// The faults that begin while the call waits for its answer.
	for _, st := range d.steps {
		if st.At <= s {
			continue
		}
		if !a.hang && st.At >= a.at {
			break
		}
		switch st.Fault.(type) {
		case toxics.Reset, toxics.Crash:
			return answer{at: st.At, err: errDepReset}
		case toxics.Down, toxics.Stop, toxics.Restart:
			return answer{at: st.At, err: errDepClosed}
		case toxics.Blackhole:
			a.hang = true // the answer is lost
		case toxics.Pause:
			if !a.hang {
				a.at = max(a.at, st.End())
			}
		}
	}
	return a
}

// opKey carries the op of a call through the breaker's context.
type opKey struct{}

// recorder records a run; safe for concurrent use.
type recorder struct {
	start   time.Time
	dep     *fakeDep
	openFor time.Duration // the spec's
	lead    time.Duration // of a change, for the pacer

	mu      sync.Mutex
	seq     int
	ops     []Op
	calls   []Call
	cancels []context.CancelFunc // of the ops in flight, by ID-1
	pace    *pacer
}

// changed notes that the breaker may have changed state at t, and may
// open, so half-open OpenFor later if opened. Called with mu held.
func (r *recorder) changed(t time.Duration, opened bool) {
	r.pace.add(t, r.lead)
	if opened {
		r.pace.add(t+r.openFor, r.lead)
	}
}

func (r *recorder) now() time.Duration { return time.Since(r.start) }

func (r *recorder) nextSeq() int {
	r.seq++
	return r.seq
}

// call is the dependency's side of one call, made with the context the
// breaker passed on.
func (r *recorder) call(ctx context.Context) error {
	s := r.now()
	op, _ := ctx.Value(opKey{}).(int)
	r.mu.Lock()
	id := len(r.calls) + 1
	attempt := 0
	if op > 0 {
		o := &r.ops[op-1]
		o.Calls = append(o.Calls, id)
		attempt = len(o.Calls)
		if attempt == 1 && o.Before != Closed {
			r.changed(s, false) // a probe: how many more go through?
		}
		// With retries inside the breaker, it may open at the end of any
		// attempt, not only at the op's.
		if attempt > 1 {
			if prev := r.calls[o.Calls[attempt-2]-1]; prev.Failed {
				r.changed(prev.End, true)
			}
		}
	}
	r.calls = append(r.calls, Call{ID: id, Op: op, Attempt: attempt, Start: s, seqStart: r.nextSeq()})
	r.mu.Unlock()

	a := r.dep.answer(id, s)
	var err error
	ambiguous := false
	if a.hang {
		<-ctx.Done()
		err = ctx.Err()
	} else {
		if dl, ok := ctx.Deadline(); ok && dl.Equal(r.start.Add(a.at)) {
			ambiguous = true
		}
		t := time.NewTimer(a.at - s)
		select {
		case <-t.C:
			err = a.err
		case <-ctx.Done():
			t.Stop()
			err = ctx.Err()
		}
	}
	end := r.now()
	r.mu.Lock()
	c := &r.calls[id-1]
	c.End, c.Failed, c.Ambiguous, c.seqEnd = end, err != nil, ambiguous, r.nextSeq()
	if err != nil {
		c.Err = err.Error()
		r.changed(end, attempt > 1) // a failure may open the breaker: see above and op
	}
	r.mu.Unlock()
	return err
}

// op makes call number id through b.
func (r *recorder) op(ctx context.Context, b Breaker, id int) {
	before := safeState(b)
	r.mu.Lock()
	o := &r.ops[id-1]
	o.ID, o.Start, o.Before, o.seqStart = id, r.now(), before, r.nextSeq()
	r.mu.Unlock()

	ctx, cancel := context.WithCancel(context.WithValue(ctx, opKey{}, id))
	r.mu.Lock()
	r.cancels[id-1] = cancel
	r.mu.Unlock()
	err := safeExecute(b, ctx, r.call)
	cancel()

	end := r.now()
	after := safeState(b)
	r.mu.Lock()
	r.cancels[id-1] = nil
	o = &r.ops[id-1]
	o.End, o.After, o.seqEnd = end, after, r.nextSeq()
	if err != nil {
		o.Err = err.Error()
		o.panicked = errors.Is(err, sim.ErrPanic)
	}
	// A failure let through, a probe's end or a change of the state
	// the breaker reports: its behaviour may change now.
	if through := len(o.Calls) > 0; (through && (err != nil || before != Closed)) || after != before {
		// It half-opens OpenFor after it opened: by the state it reports,
		// or after a failure when it does not say.
		failed := through && err != nil
		r.changed(end, (failed && (after == Open || after == Unknown)) || (after == Open && before != Open))
	}
	r.mu.Unlock()
}

func safeExecute(b Breaker, ctx context.Context, call func(context.Context) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: the breaker's Execute: %v", sim.ErrPanic, p)
		}
	}()
	return b.Execute(ctx, call)
}

func safeState(b Breaker) (s State) {
	defer func() {
		if recover() != nil {
			s = Unknown
		}
	}()
	return b.State()
}

// drainFor is how long calls still in flight at the end of a run may
// go on before their context is cancelled: virtual time, so it costs
// nothing, and long enough that a call without a timeout stands out.
func drainFor(c Config) time.Duration {
	return max(10*time.Second, 10*c.Spec.CallTimeout)
}

// runOnce runs schedule s against a breaker built by c.New. It must
// run inside a testing/synctest bubble, where its seconds take no time. c
// is normalized.
func runOnce(c Config, s sim.Schedule) (*Iteration, error) {
	b, err := build(c)
	if err != nil {
		return nil, err
	}
	steps := slices.Clone(s.Steps)
	slices.SortStableFunc(steps, func(a, b sim.Step) int { return int(a.At - b.At) })
	end := s.Horizon() + c.Cooldown
	p := c.period()
	n := int((end - 1) / p) // the last grid point
	pace := newPacer(c)
	edge := c.leadOf(leadEdge)
	for _, st := range steps {
		pace.add(st.At, edge)
		pace.add(st.End(), edge)
	}
	pace.add(s.Horizon()+c.recoveryBound(), edge) // closed again from then on
	pace.add(end, edge)
	rec := &recorder{start: time.Now(), dep: &fakeDep{steps: steps, latency: c.Latency}, pace: pace,
		openFor: c.Spec.OpenFor, lead: c.leadOf(leadChange)}
	ctx := context.Background()
	// Calls are made by workers that live as long as the run, so that
	// their stacks grow once: a new worker only when all are busy.
	var wg sync.WaitGroup
	work := make(chan int)
	worker := func(id int) {
		defer wg.Done()
		for ; id > 0; id = <-work {
			rec.op(ctx, b, id)
		}
	}
	for k, id := 1, 1; k <= n; id++ {
		time.Sleep(time.Duration(k)*p - rec.now())
		// Every call before this one has told the pacer what it knows by
		// now, and this one cannot yet: the next point is a function of
		// the schedule and the seed alone.
		rec.mu.Lock()
		rec.ops = append(rec.ops, Op{})
		rec.cancels = append(rec.cancels, nil)
		k = pace.next(k)
		rec.mu.Unlock()
		select {
		case work <- id:
		default:
			wg.Add(1)
			go worker(id)
		}
	}
	close(work)
	// Calls still in flight after the drain are cancelled one by one, a
	// nanosecond apart, so that their ends do not pile up on one instant.
	drained, drainer := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(drainer)
		t := time.NewTimer(drainFor(c))
		defer t.Stop()
		select {
		case <-drained:
			return
		case <-t.C:
		}
		rec.mu.Lock()
		n := len(rec.cancels)
		rec.mu.Unlock()
		for i := range n {
			rec.mu.Lock()
			cancel := rec.cancels[i]
			rec.mu.Unlock()
			if cancel == nil {
				continue
			}
			cancel()
			select {
			case <-drained:
				return
			case <-time.After(time.Nanosecond):
			}
		}
	}()
	wg.Wait()
	close(drained)
	<-drainer

	run := &Iteration{Schedule: s, Spec: c.Spec, Rate: c.Rate, Latency: c.Latency, Ops: rec.ops, Calls: rec.calls,
		recovery: c.recoveryBound(), seqs: rec.seq}
	for _, o := range run.Ops {
		run.Duration = max(run.Duration, o.End)
	}
	judge(run)
	return run, nil
}

func build(c Config) (b Breaker, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("breaker: Config.New panicked: %v", p)
		}
	}()
	b = c.New()
	if b == nil {
		return nil, errors.New("breaker: Config.New returned a nil Breaker")
	}
	return b, nil
}
