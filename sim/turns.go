package sim

import (
	"cmp"
	"container/heap"
	"context"
	"sync"
	"testing/synctest"
	"time"
)

// How a simulated run stays deterministic
//
// In a testing/synctest bubble, goroutines woken at the same virtual
// instant run in an order the Go scheduler picks. Two ops that start at
// the same instant race for a client's pool; two connections whose data
// arrives at the same instant race for the server. So a Run in a bubble
// hands out turns: every event the framework schedules (a step of the
// schedule, an op's start, data or a deadline arriving on a simulated
// connection, a timeout fault closing one) waits for its turn, and turns
// at the same instant are given one at a time in a fixed order, each once
// everything the previous one set off has come to rest
// (synctest.Wait). The order is by instant, then by a key made of stable
// identities: steps first, then connections (by endpoint, the order they
// were dialed, direction), then ops by ID. The order of dials is itself
// fixed by the turns, so every connection has the same number, and the
// same random stream, in every run.
//
// What the framework does not schedule is not ordered: timers of the
// code under test (a handler's time.Sleep, a client's own retry timer,
// an op's context deadline) that fire at the same instant run together,
// as they would without turns, but never at the same time as a turn.

// turnKey orders turns at the same instant: by class, then a, b, c.
type turnKey struct {
	class   uint8
	a, b, c uint64
}

// Classes of turns, in the order they go at one instant.
const (
	turnStep uint8 = iota // the runner: apply, revert, end of the load
	turnConn              // a simulated connection: data, deadline, timeout fault
	turnOp                // an op's start
)

func (k turnKey) compare(o turnKey) int {
	return cmp.Or(cmp.Compare(k.class, o.class), cmp.Compare(k.a, o.a), cmp.Compare(k.b, o.b), cmp.Compare(k.c, o.c))
}

// turn is one waiter's place in the queue.
type turn struct {
	at    time.Time
	key   turnKey
	seq   uint64        // ties: the order the turns were asked for
	ready chan struct{} // closed when the turn is given
	index int           // in turns.q; -1 once given or withdrawn
}

// turns gives out turns in a bubble; see above. A nil *turns gives none:
// waiting falls back to timers.
type turns struct {
	mu   sync.Mutex
	q    turnQueue
	seq  uint64
	kick chan struct{} // capacity 1: the queue has a turn the keeper must wake for
	// asleep: the keeper waits for a kick, or for its timer at wakeAt
	// (zero: no timer). A turn asked at or after wakeAt needs no kick:
	// the keeper wakes by then and reads the queue again.
	asleep bool
	wakeAt time.Time
	stop   chan struct{}
	done   chan struct{}
}

// startTurns returns a running turn keeper if the calling goroutine is in
// a synctest bubble, and nil otherwise (or if another goroutine of the
// bubble is in synctest.Wait, which only one goroutine may call at a
// time).
func startTurns() *turns {
	if !quiesce() {
		return nil
	}
	ts := &turns{kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go ts.loop()
	return ts
}

// quiesce waits until every other goroutine of the bubble is durably
// blocked; it reports false, at once, outside a bubble or when another
// goroutine is waiting so.
func quiesce() (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	synctest.Wait()
	return true
}

// close stops giving turns: every turn still queued is given at once (a
// timed wait then wakes early and finds its own timer), and close returns
// once the keeper's goroutine has ended. Detach the turns from everything
// that asks for them first.
func (ts *turns) close() {
	if ts == nil {
		return
	}
	close(ts.stop)
	<-ts.done
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, tn := range ts.q {
		tn.index = -1
		close(tn.ready)
	}
	ts.q = nil
}

func (ts *turns) loop() {
	defer close(ts.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	ordered := true
	// rested: everything the last turn set off, and everything woken at
	// this instant, has come to rest since. Only a turn that is due
	// needs that wait (synctest.Wait is the keeper's main cost), so a
	// turn asked for later, or a turn given with no other due, does not
	// cost one.
	rested := false
	for {
		ts.mu.Lock()
		ts.asleep = false
		// The first turn and its instant, read under ts.mu: once it is
		// unlocked, the turn may be withdrawn and asked again.
		var next *turn
		var at time.Time
		if len(ts.q) > 0 {
			next, at = ts.q[0], ts.q[0].at
		}
		now := time.Now()
		due := next != nil && !at.After(now)
		if due && rested {
			heap.Pop(&ts.q)
			close(next.ready)
			rested = false
			ts.mu.Unlock()
			continue
		}
		if !due {
			ts.asleep, ts.wakeAt = true, at
		}
		ts.mu.Unlock()
		if due {
			if ordered && !quiesce() {
				// Someone else called synctest.Wait: go on without
				// letting each turn come to rest (still in order).
				ordered = false
			}
			rested = true // the head is read again: the wait may have queued an earlier one
			continue
		}
		var wake <-chan time.Time
		if next != nil {
			timer.Reset(at.Sub(now))
			wake = timer.C
		}
		select {
		case <-ts.kick:
		case <-wake:
		case <-ts.stop:
			timer.Stop()
			return
		}
		timer.Stop()
		rested = false
	}
}

// ask queues a turn at at (now, if at is past).
func (ts *turns) ask(at time.Time, key turnKey) *turn { return ts.askAgain(at, key, nil) }

// askAgain is ask, reusing spare if it is not nil: a turn that
// [turns.withdraw] took out of the queue before it was given.
func (ts *turns) askAgain(at time.Time, key turnKey, spare *turn) *turn {
	tn := spare
	if tn == nil {
		tn = &turn{ready: make(chan struct{})}
	}
	ts.mu.Lock()
	ts.seq++
	tn.at, tn.key, tn.seq = at, key, ts.seq
	select {
	case <-ts.stop:
		tn.index = -1
		close(tn.ready)
	default:
		heap.Push(&ts.q, tn)
	}
	// Only a turn before the keeper's next wake needs it woken: the
	// keeper, awake, reads the queue again before it sleeps, and a turn
	// at or after its timer is found when the timer fires.
	kick := ts.asleep && (ts.wakeAt.IsZero() || at.Before(ts.wakeAt))
	ts.mu.Unlock()
	if kick {
		select {
		case ts.kick <- struct{}{}:
		default:
		}
	}
	return tn
}

// withdraw takes tn out of the queue if it has not been given, and then
// reports true: tn may be asked again.
func (ts *turns) withdraw(tn *turn) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if tn.index < 0 {
		return false
	}
	heap.Remove(&ts.q, tn.index)
	return true
}

// wait blocks until the turn at at with key is given, or cancel closes
// (then it reports false).
func (ts *turns) wait(at time.Time, key turnKey, cancel <-chan struct{}) bool {
	tn := ts.ask(at, key)
	select {
	case <-tn.ready:
		return true
	case <-cancel:
		ts.withdraw(tn)
		return false
	}
}

// afterFunc calls f in a goroutine of its own at its turn d from now
// (with key), or, with no turns, when a timer fires, like time.AfterFunc.
func (ts *turns) afterFunc(d time.Duration, key turnKey, f func()) stopper {
	if ts == nil {
		return time.AfterFunc(d, f)
	}
	s := &turnTimer{cancel: make(chan struct{})}
	at := time.Now().Add(d)
	go func() {
		if !ts.wait(at, key, s.cancel) {
			return
		}
		if early := time.Until(at); early > 0 {
			// The turns closed before the instant came: wait for it
			// on a timer.
			t := time.NewTimer(early)
			defer t.Stop()
			select {
			case <-t.C:
			case <-s.cancel:
				return
			}
		}
		f()
	}()
	return s
}

// withTimeout is context.WithTimeout(parent, d) for op id, except that
// the deadline comes in the op's turn at its instant, after the timers of
// the code under test that fire at the same instant (a client's own
// timeout, a retry) have run: which of the two ends the op is then the
// same in every run. The context is a real one: Deadline, Err
// (context.DeadlineExceeded), Cause and the contexts derived from it
// behave as those of context.WithTimeout.
func (ts *turns) withTimeout(parent context.Context, d time.Duration, id uint64) (context.Context, context.CancelFunc) {
	dl := &turnDeadline{Context: parent, at: time.Now().Add(d), done: make(chan struct{}), stop: make(chan struct{})}
	tn := ts.ask(dl.at, turnKey{class: turnOp, a: id, b: 1})
	go func() {
		select {
		case <-tn.ready:
			dl.end(context.DeadlineExceeded)
		case <-parent.Done():
			ts.withdraw(tn)
			dl.end(parent.Err())
		case <-dl.stop:
			ts.withdraw(tn)
		}
	}()
	// The op's context is a cancelCtx below the deadline: Err and Cause
	// of everything derived from it are the standard ones.
	ctx, cancel := context.WithCancel(dl)
	var once sync.Once
	return ctx, func() {
		cancel()
		once.Do(func() { close(dl.stop) })
	}
}

// turnDeadline is the parent of an op's context under turns: done at its
// deadline's turn, or when its parent is done. Value (the op's identity,
// and the cause of a cancellation) comes from the parent.
type turnDeadline struct {
	context.Context
	at   time.Time
	done chan struct{}
	stop chan struct{}
	mu   sync.Mutex
	err  error
}

func (c *turnDeadline) Deadline() (time.Time, bool) { return c.at, true }
func (c *turnDeadline) Done() <-chan struct{}       { return c.done }
func (c *turnDeadline) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *turnDeadline) end(err error) {
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
	close(c.done)
}

// stopper is a timer that can be stopped: a *time.Timer or a turnTimer.
type stopper interface{ Stop() bool }

type turnTimer struct {
	once   sync.Once
	cancel chan struct{}
}

func (s *turnTimer) Stop() bool {
	stopped := false
	s.once.Do(func() { close(s.cancel); stopped = true })
	return stopped
}

// turnQueue is a heap of turns by instant, key and then request order.
type turnQueue []*turn

func (q turnQueue) Len() int { return len(q) }
func (q turnQueue) Less(i, j int) bool {
	a, b := q[i], q[j]
	if c := a.at.Compare(b.at); c != 0 {
		return c < 0
	}
	if c := a.key.compare(b.key); c != 0 {
		return c < 0
	}
	return a.seq < b.seq
}
func (q turnQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index = i
	q[j].index = j
}
func (q *turnQueue) Push(x any) {
	tn := x.(*turn)
	tn.index = len(*q)
	*q = append(*q, tn)
}
func (q *turnQueue) Pop() any {
	old := *q
	tn := old[len(old)-1]
	old[len(old)-1] = nil
	tn.index = -1
	*q = old[:len(old)-1]
	return tn
}
