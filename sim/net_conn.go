package sim

import (
	"io"
	"math"
	"math/bits"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shakedown/shakedown/toxics"
)

// pipeCap is how many unread bytes one direction of a connection holds
// (the sender's and receiver's kernel buffers and the proxy, together)
// before a writer waits.
const pipeCap = 256 << 10

// chunk is a run of bytes on its way through a pipe, or its end.
type chunk struct {
	data  []byte    // bytes not read yet
	taken int       // bytes of the chunk already read
	start time.Time // when the first byte arrives
	// rate, when positive, paces the chunk: its bytes arrive at rate
	// bytes per second from start. Zero: all arrive at start.
	rate     int64
	held     bool // stalled (bandwidth 0) until the fault is reverted
	boundary bool // a read stops at the end of this chunk (slicer)
	eof      bool // the writer's end of the stream: no data
	// buf, if not nil, is the start of the array data was taken from,
	// which no other chunk uses: once the chunk is read, the pipe
	// writes the next bytes into it.
	buf []byte
}

func (c *chunk) plain() bool { return !c.held && !c.eof && !c.boundary && c.rate == 0 }

// readable is how many of the unread bytes have arrived at now.
func (c *chunk) readable(now time.Time) int {
	if c.held || now.Before(c.start) {
		return 0
	}
	if c.rate == 0 {
		return len(c.data)
	}
	arrived := mulDiv(uint64(now.Sub(c.start)), uint64(c.rate), uint64(time.Second))
	if arrived >= uint64(c.taken+len(c.data)) {
		return len(c.data)
	}
	return int(arrived) - c.taken
}

// next is when the next unread byte arrives.
func (c *chunk) next() time.Time {
	if c.rate == 0 {
		return c.start
	}
	return c.start.Add(durationOf(ceilMulDiv(uint64(c.taken+1), uint64(time.Second), uint64(c.rate))))
}

// end is when the last byte arrives.
func (c *chunk) end() time.Time {
	if c.rate == 0 {
		return c.start
	}
	return c.start.Add(durationOf(ceilMulDiv(uint64(c.taken+len(c.data)), uint64(time.Second), uint64(c.rate))))
}

func mulDiv(a, b, d uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi >= d {
		return math.MaxUint64
	}
	q, _ := bits.Div64(hi, lo, d)
	return q
}

func ceilMulDiv(a, b, d uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi >= d {
		return math.MaxUint64
	}
	q, r := bits.Div64(hi, lo, d)
	if r != 0 {
		q++
	}
	return q
}

func durationOf(ns uint64) time.Duration {
	if ns > math.MaxInt64/2 {
		return math.MaxInt64 / 2
	}
	return time.Duration(ns)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// pipe is one direction of a connection: what one side writes and the
// other reads, with the link faults of that direction applied on the way.
type pipe struct {
	ep   *Endpoint
	dir  toxics.Direction // Upstream or Downstream
	seq  uint64           // the connection's number on its endpoint
	seed [2]uint64

	mu       sync.Mutex
	q        []chunk
	head     int
	buffered int       // unread data bytes queued
	tail     time.Time // when the last queued byte arrives
	eof      bool      // an end of stream is queued
	discard  bool      // the reader is gone or the path is cut: writes vanish
	gone     bool      // ...and the far end answers data with an RST
	rdl, wdl time.Time // the reader's read deadline, the writer's write deadline
	rq, wq   waitq     // the reader and the writers waiting
	rng      *rand.Rand
	spare    []byte           // the array of a chunk read, reused by the next write
	limits   map[uint64]int64 // bytes passed per data_limit fault
	lossBad  map[uint64]bool  // per loss fault: its Gilbert–Elliott state is bad
}

func (p *pipe) notifyReaders() { p.rq.wake() }
func (p *pipe) notifyWriters() { p.wq.wake() }

// Roles in the turn keys of a connection (see turns.go).
const (
	roleUpReader uint64 = iota
	roleUpWriter
	roleDownReader
	roleDownWriter
	roleTimeout
	roleFault // a fault acting on the connection (see Endpoint.sever)
	roleUpRelease
	roleDownRelease
	roleAccept // the server accepting it
	roleThaw   // its server side going on after a pause
)

// turnKey is the key of the turns of the pipe's reader (or writer).
func (p *pipe) turnKey(writer bool) turnKey {
	role := roleUpReader
	if p.dir == toxics.Downstream {
		role = roleDownReader
	}
	if writer {
		role++
	}
	return turnKey{class: turnConn, a: p.ep.nameHash, b: p.seq, c: role}
}

// sleep waits as waitq.sleep does, for the reader (or a writer), by turns
// when a Run orders the network's events.
func (p *pipe) sleep(writer bool, at time.Time) {
	q := &p.rq
	if writer {
		q = &p.wq
	}
	var ts *turns
	if !at.IsZero() {
		ts = p.ep.n.turns.Load()
	}
	q.sleep(&p.mu, at, ts, p.turnKey(writer))
}

// waitq is where goroutines wait for a change of a pipe, guarded by the
// pipe's mutex. The usual case, one waiter, reuses a channel and a timer;
// others wait on a channel closed at the next change.
type waitq struct {
	kick      chan struct{} // capacity 1: wakes the waiter on the fast path
	kicking   bool          // a waiter is on the fast path
	bcast     chan struct{} // closed to wake the other waiters
	timer     *time.Timer
	timerBusy bool
	spare     *turn // withdrawn before it was given: asked again by the next wait
}

func (q *waitq) wake() {
	if q.kicking {
		select {
		case q.kick <- struct{}{}:
		default:
		}
	}
	if q.bcast != nil {
		close(q.bcast)
		q.bcast = nil
	}
}

// sleep waits, with mu held, for a wake or until at (if not zero), and
// returns with mu held. Wakes may be spurious: callers check again. With
// turns, the wait for at is a turn with key instead of a timer.
func (q *waitq) sleep(mu *sync.Mutex, at time.Time, ts *turns, key turnKey) {
	var timeout <-chan time.Time
	var t *time.Timer
	var tn *turn
	var turn <-chan struct{}
	if !at.IsZero() {
		d := time.Until(at)
		if d <= 0 {
			return
		}
		switch {
		case ts != nil:
			tn = ts.askAgain(at, key, q.spare)
			q.spare = nil
			turn = tn.ready
		case q.timerBusy:
			t = time.NewTimer(d)
		case q.timer == nil:
			q.timer = time.NewTimer(d)
			t, q.timerBusy = q.timer, true
		default:
			q.timer.Reset(d)
			t, q.timerBusy = q.timer, true
		}
		if t != nil {
			timeout = t.C
		}
	}
	fast := !q.kicking
	var ch <-chan struct{}
	if fast {
		if q.kick == nil {
			q.kick = make(chan struct{}, 1)
		}
		q.kicking, ch = true, q.kick
	} else {
		if q.bcast == nil {
			q.bcast = make(chan struct{})
		}
		ch = q.bcast
	}
	mu.Unlock()
	select {
	case <-ch:
	case <-timeout:
	case <-turn:
	}
	reuse := tn != nil && ts.withdraw(tn)
	mu.Lock()
	if reuse {
		q.spare = tn
	}
	if fast {
		q.kicking = false
		select {
		case <-q.kick: // a wake that came while we woke up anyway
		default:
		}
	}
	if t != nil {
		t.Stop()
		if t == q.timer {
			q.timerBusy = false
		}
	}
}

func (p *pipe) rand() *rand.Rand {
	if p.rng == nil {
		p.rng = rand.New(rand.NewPCG(p.seed[0], p.seed[1]))
	}
	return p.rng
}

// spareMax is the largest array a pipe keeps for reuse once read.
const spareMax = 64 << 10

func (p *pipe) pop() {
	if b := p.q[p.head].buf; b != nil && cap(b) <= spareMax {
		p.spare = b[:0]
	}
	p.q[p.head] = chunk{}
	p.head++
	switch {
	case p.head == len(p.q):
		p.q, p.head = p.q[:0], 0
	case p.head >= 32 && 2*p.head >= len(p.q):
		n := copy(p.q, p.q[p.head:])
		clear(p.q[n:])
		p.q, p.head = p.q[:n], 0
	}
}

// take copies into b what has arrived by now. It returns io.EOF's cue
// when the stream ended and nothing else is left, and otherwise, when it
// copied nothing, the time at which more arrives (zero: unknown, wait for
// a change).
func (p *pipe) take(b []byte, now time.Time) (n int, eof bool, wake time.Time) {
	for p.head < len(p.q) && n < len(b) {
		ch := &p.q[p.head]
		if ch.held {
			return n, false, time.Time{}
		}
		if ch.eof {
			if now.Before(ch.start) {
				return n, false, ch.start
			}
			return n, n == 0, time.Time{}
		}
		r := ch.readable(now)
		if r == 0 {
			return n, false, ch.next()
		}
		k := copy(b[n:], ch.data[:r])
		n += k
		ch.data = ch.data[k:]
		ch.taken += k
		p.buffered -= k
		if len(ch.data) > 0 {
			return n, false, time.Time{}
		}
		boundary := ch.boundary
		p.pop()
		if boundary {
			break
		}
	}
	return n, false, time.Time{}
}

// push queues b, written at now, through the faults of pol. It reports
// whether a data limit was reached, after which the connection closes.
func (p *pipe) push(b []byte, pol *policy, now time.Time) (limitHit bool) {
	if pol == nil {
		if p.head < len(p.q) {
			last := &p.q[len(p.q)-1]
			if last.plain() && !now.Before(last.start) {
				last.data = append(last.data, b...)
				p.buffered += len(b)
				return false
			}
		}
		data := append(p.spare, b...)
		p.spare = nil
		p.enqueue(chunk{data: data, buf: data[:0]}, now, -1)
		return false
	}
	if len(pol.limits) > 0 {
		b, limitHit = p.limit(b, pol.limits)
		if len(b) == 0 {
			return limitHit
		}
	}
	data := append([]byte(nil), b...)
	for _, prob := range pol.corrupt {
		p.corrupt(data, prob)
	}
	at := now
	for _, l := range pol.latency {
		at = at.Add(p.delay(l))
	}
	if s := pol.slicer; s != nil {
		for i := 0; len(data) > 0; i++ {
			size := s.AverageSize
			if s.SizeVariation > 0 {
				size += p.rand().IntN(2*s.SizeVariation+1) - s.SizeVariation
			}
			size = min(size, len(data))
			p.enqueue(chunk{data: data[:size:size], boundary: true}, at.Add(time.Duration(i)*s.Delay+p.lossDelay(pol)), pol.rate)
			data = data[size:]
		}
		return limitHit
	}
	p.enqueueLossy(data, at, pol)
	return limitHit
}

// enqueue appends ch, arriving from at (but after everything queued),
// paced at rate bytes per second (0: held; negative: unpaced).
func (p *pipe) enqueue(ch chunk, at time.Time, rate int64) {
	ch.start = later(at, p.tail)
	switch {
	case rate == 0:
		ch.held = true
	case rate > 0:
		ch.rate = rate
	}
	if !ch.held {
		p.tail = ch.end()
	}
	p.q = append(p.q, ch)
	p.buffered += len(ch.data)
}

func (p *pipe) limit(b []byte, limits []limitRule) ([]byte, bool) {
	if p.limits == nil {
		p.limits = map[uint64]int64{}
	}
	for _, l := range limits {
		left := l.bytes - p.limits[l.id]
		if left <= 0 {
			return nil, true
		}
		if int64(len(b)) > left {
			b = b[:left]
		}
	}
	hit := false
	for _, l := range limits {
		p.limits[l.id] += int64(len(b))
		if p.limits[l.id] >= l.bytes {
			hit = true
		}
	}
	return b, hit
}

func (p *pipe) corrupt(b []byte, prob float64) {
	r := p.rand()
	for i := range b {
		if prob >= 1 || r.Float64() < prob {
			b[i] ^= 1 << r.IntN(8)
		}
	}
}

func (p *pipe) delay(l toxics.Latency) time.Duration {
	d := l.Delay
	if l.Jitter > 0 {
		d += time.Duration(p.rand().Int64N(2*int64(l.Jitter)+1)) - l.Jitter
	}
	return d
}

// closeWrite queues the end of the stream (late by a slow_close fault).
func (p *pipe) closeWrite(now time.Time) {
	pol := p.effective(p.ep.policy(p.dir))
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.eof {
		at := now
		if pol != nil {
			at = at.Add(pol.slowClose)
		}
		p.eof = true
		p.q = append(p.q, chunk{eof: true, start: later(at, p.tail)})
	}
	p.notifyReaders()
	p.notifyWriters()
}

// closeRead drops what is queued and makes later writes vanish: the
// reader is gone. If its socket is closed for good (not just shut for
// reading), data that comes later is answered with an RST.
func (p *pipe) closeRead(gone bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.discard = true
	p.gone = p.gone || gone
	p.dropLocked()
	p.notifyReaders()
	p.notifyWriters()
}

func (p *pipe) dropLocked() {
	clear(p.q)
	p.q, p.head, p.buffered = p.q[:0], 0, 0
	if p.eof {
		p.q = append(p.q, chunk{eof: true})
	}
}

// cut ends the pipe as when the path closes: what has arrived by now can
// still be read, then EOF; what has not is lost, and so is whatever is
// written later. wake says whether to wake the reader and writers now.
func (p *pipe) cut(now time.Time, wake bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	keep := p.head
	for ; keep < len(p.q); keep++ {
		ch := &p.q[keep]
		if ch.eof || ch.held || now.Before(ch.start) {
			break
		}
		if r := ch.readable(now); r < len(ch.data) {
			if r == 0 {
				break // none of the rest has arrived: all of it is lost
			}
			p.buffered -= len(ch.data) - r
			ch.data = ch.data[:r]
			ch.rate = 0
			keep++
			break
		}
	}
	for i := keep; i < len(p.q); i++ {
		p.buffered -= len(p.q[i].data)
	}
	clear(p.q[keep:])
	p.q = append(p.q[:keep], chunk{eof: true, start: now})
	p.eof, p.discard, p.gone = true, true, true
	if wake {
		p.notifyReaders()
		p.notifyWriters()
	}
}

// drop empties the pipe and makes later writes vanish (a reset).
func (p *pipe) drop(wake bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.eof, p.discard, p.gone = true, true, true
	p.dropLocked()
	if wake {
		p.notifyReaders()
		p.notifyWriters()
	}
}

// wake wakes the pipe's reader and writers to look again.
func (p *pipe) wake() {
	p.mu.Lock()
	p.notifyReaders()
	p.notifyWriters()
	p.mu.Unlock()
}

// release delivers at once what delay faults hold (their revert); wake
// says whether to wake the reader now.
func (p *pipe) release(now time.Time, wake bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := p.head; i < len(p.q); i++ {
		ch := &p.q[i]
		ch.held = false
		ch.rate = 0
		if ch.start.After(now) {
			ch.start = now
		}
	}
	if p.tail.After(now) {
		p.tail = now
	}
	if wake {
		p.notifyReaders()
	}
}

func (p *pipe) setReadDeadline(t time.Time) {
	p.mu.Lock()
	p.rdl = t
	p.notifyReaders()
	p.mu.Unlock()
}

func (p *pipe) setWriteDeadline(t time.Time) {
	p.mu.Lock()
	p.wdl = t
	p.notifyWriters()
	p.mu.Unlock()
}

func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero():
		return a
	case b.Before(a):
		return b
	}
	return a
}

// Reset states of a conn.
const (
	rstNone          int32 = iota
	rstInFlight            // writes still succeed; the next read returns ECONNRESET
	rstPending             // the next read or write returns ECONNRESET
	rstReported            // reads return EOF, writes EPIPE
	rstWritePending        // reads go on; the next write returns ECONNRESET
	rstWriteReported       // reads go on; writes return EPIPE
	rstInFlightRead        // a read met the RST in flight: reads EOF; writes at its instant succeed, later ones EPIPE
)

// conn is one side of a simulated connection.
type conn struct {
	pair          *pair
	server        bool
	rd, wr        *pipe
	local, remote addr
	done          chan struct{} // closed by Close
	closed        atomic.Bool
	rshut, wshut  atomic.Bool
	rst           atomic.Int32
	rstAt         atomic.Int64 // UnixNano of an RST in flight: writes at that instant beat it
}

func (c *conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.local, Addr: c.remote, Err: err}
}

// frozen waits while the server side's node is paused: a paused process
// neither reads nor writes. When a Run orders the network's events, each
// connection goes on in its own turn once the pause ends.
func (c *conn) frozen() {
	if !c.server {
		return
	}
	for {
		g := c.pair.ep.pauseGate()
		if g == nil {
			return
		}
		select {
		case <-g:
		case <-c.done:
			return
		}
		if ts := c.pair.ep.n.turns.Load(); ts != nil {
			ts.wait(time.Now(), turnKey{class: turnConn, a: c.pair.ep.nameHash, b: c.pair.seq, c: roleThaw}, c.done)
		}
	}
}

// resetErr returns the error of a reset connection for op ("read" or
// "write"), or nil: ECONNRESET once, then EOF for reads and EPIPE for
// writes, as on Linux. While the RST is in flight, writes succeed (those
// of its instant even after a read met it); an RST that answers data sent
// after the peer's FIN fails only writes (the reader has the FIN already).
func (c *conn) resetErr(op string) error {
	for {
		st := c.rst.Load()
		next := st
		switch {
		case st == rstNone:
			return nil
		case st == rstInFlight && op == "write", st == rstWritePending && op == "read", st == rstWriteReported && op == "read":
			return nil
		case st == rstInFlightRead && op == "write" && time.Now().UnixNano() == c.rstAt.Load():
			// The read that met the RST ran first, but writes of the
			// reset's instant still beat it, whichever goroutine runs
			// first in that instant.
			return nil
		case st == rstInFlight && op == "read":
			next = rstInFlightRead
		case st == rstInFlight, st == rstPending:
			next = rstReported
		case st == rstWritePending:
			next = rstWriteReported
		case op == "read":
			return io.EOF
		default:
			return c.opErr(op, errPipe())
		}
		if c.rst.CompareAndSwap(st, next) {
			return c.opErr(op, errReset(op))
		}
	}
}

// Read reads what has arrived, waiting for data, the end of the stream,
// the read deadline, a reset or Close.
func (c *conn) Read(b []byte) (int, error) {
	p := c.rd
	for {
		c.frozen()
		// The flags are read with p.mu held: whoever sets one then wakes
		// the waiters under p.mu, so no wake is lost.
		p.mu.Lock()
		if c.closed.Load() {
			p.mu.Unlock()
			return 0, c.opErr("read", net.ErrClosed)
		}
		if err := c.resetErr("read"); err != nil {
			p.mu.Unlock()
			return 0, err
		}
		if c.rshut.Load() {
			p.mu.Unlock()
			return 0, io.EOF
		}
		now := time.Now()
		if !p.rdl.IsZero() && !now.Before(p.rdl) {
			p.mu.Unlock()
			return 0, c.opErr("read", os.ErrDeadlineExceeded)
		}
		if len(b) == 0 {
			p.mu.Unlock()
			return 0, nil
		}
		n, eof, wake := p.take(b, now)
		if n > 0 {
			p.notifyWriters()
			p.mu.Unlock()
			p.ep.countBytes(p.dir, n)
			return n, nil
		}
		if eof {
			p.mu.Unlock()
			return 0, io.EOF
		}
		p.sleep(false, earliest(wake, p.rdl))
		p.mu.Unlock()
	}
}

// Write queues b for the peer, waiting while the buffer is full.
func (c *conn) Write(b []byte) (int, error) {
	p := c.wr
	total := 0
	for {
		c.frozen()
		p.mu.Lock()
		if c.closed.Load() {
			p.mu.Unlock()
			return total, c.opErr("write", net.ErrClosed)
		}
		if err := c.resetErr("write"); err != nil {
			p.mu.Unlock()
			return total, err
		}
		if c.wshut.Load() {
			p.mu.Unlock()
			return total, c.opErr("write", errPipe())
		}
		now := time.Now()
		if !p.wdl.IsZero() && !now.Before(p.wdl) {
			p.mu.Unlock()
			return total, c.opErr("write", os.ErrDeadlineExceeded)
		}
		if len(b) == 0 {
			p.mu.Unlock()
			return total, nil
		}
		pol := p.effective(p.ep.policy(p.dir))
		if p.discard || (pol != nil && pol.drop) {
			if p.gone {
				// The far end's socket is closed: it answers with an
				// RST, which fails this side's next write.
				c.rst.CompareAndSwap(rstNone, rstWritePending)
			}
			p.mu.Unlock()
			return total + len(b), nil
		}
		space := pipeCap - p.buffered
		if space <= 0 {
			p.sleep(true, p.wdl)
			p.mu.Unlock()
			continue
		}
		k := min(space, len(b))
		hit := p.push(b[:k], pol, now)
		p.notifyReaders()
		p.mu.Unlock()
		total += k
		b = b[k:]
		if hit {
			// The proxy closes the connection; what is left is lost.
			c.pair.sever(severFin)
			return total + len(b), nil
		}
		if len(b) == 0 {
			return total, nil
		}
	}
}

// Close closes the connection: the peer reads what was sent, then EOF.
func (c *conn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return c.opErr("close", net.ErrClosed)
	}
	close(c.done)
	if !c.wshut.Load() {
		c.wr.closeWrite(time.Now())
	} else {
		c.wr.mu.Lock()
		c.wr.notifyWriters()
		c.wr.mu.Unlock()
	}
	c.rd.closeRead(true)
	c.pair.sideClosed()
	return nil
}

// CloseWrite shuts down the writing side: the peer reads EOF after what
// was sent; later writes fail with EPIPE.
func (c *conn) CloseWrite() error {
	if c.closed.Load() {
		return c.opErr("close", net.ErrClosed)
	}
	if c.wshut.CompareAndSwap(false, true) {
		c.wr.closeWrite(time.Now())
	}
	return nil
}

// CloseRead shuts down the reading side: reads return EOF and what the
// peer sends is dropped.
func (c *conn) CloseRead() error {
	if c.closed.Load() {
		return c.opErr("close", net.ErrClosed)
	}
	if c.rshut.CompareAndSwap(false, true) {
		c.rd.closeRead(false)
	}
	return nil
}

func (c *conn) LocalAddr() net.Addr  { return c.local }
func (c *conn) RemoteAddr() net.Addr { return c.remote }

func (c *conn) SetDeadline(t time.Time) error {
	if c.closed.Load() {
		return c.opErr("set", net.ErrClosed)
	}
	c.rd.setReadDeadline(t)
	c.wr.setWriteDeadline(t)
	return nil
}

func (c *conn) SetReadDeadline(t time.Time) error {
	if c.closed.Load() {
		return c.opErr("set", net.ErrClosed)
	}
	c.rd.setReadDeadline(t)
	return nil
}

func (c *conn) SetWriteDeadline(t time.Time) error {
	if c.closed.Load() {
		return c.opErr("set", net.ErrClosed)
	}
	c.wr.setWriteDeadline(t)
	return nil
}

// How a path ends.
const (
	severFin         = iota // both sides read what arrived, then EOF
	severResetClient        // the client gets ECONNRESET, the server EOF
	severResetBoth          // both get ECONNRESET
	severResetNew           // a new connection reset at once: the client's first write beats the RST
)

// pair is one connection: its client side, its server side and the two
// pipes between them.
type pair struct {
	ep             *Endpoint
	seq            uint64
	client, server *conn
	up, down       *pipe // up: client to server
	severed        atomic.Bool
	open           atomic.Int32 // sides not closed yet
}

func (pr *pair) sideClosed() {
	if pr.open.Add(-1) == 0 {
		pr.ep.removePair(pr)
	}
}

// sever ends the connection from the path between the two sides (a
// proxy closing it, a fault, a crash). It acts once.
func (pr *pair) sever(mode int) { pr.severWake(mode, true) }

// severWake is sever; wake says whether to wake what waits on the
// connection now (or later, with pr.wake).
func (pr *pair) severWake(mode int, wake bool) {
	if !pr.severed.CompareAndSwap(false, true) {
		return
	}
	now := time.Now()
	switch mode {
	case severFin:
		pr.up.cut(now, wake)
		pr.down.cut(now, wake)
	case severResetClient:
		pr.client.rst.CompareAndSwap(rstNone, rstPending)
		pr.down.drop(wake)
		pr.up.cut(now, wake)
	case severResetBoth:
		pr.client.rst.CompareAndSwap(rstNone, rstPending)
		pr.server.rst.CompareAndSwap(rstNone, rstPending)
		pr.down.drop(wake)
		pr.up.drop(wake)
	case severResetNew:
		pr.client.rstAt.Store(now.UnixNano())
		pr.client.rst.CompareAndSwap(rstNone, rstInFlight)
		pr.server.rst.CompareAndSwap(rstNone, rstPending)
		pr.down.drop(wake)
		pr.up.drop(wake)
	}
	pr.ep.removePair(pr)
}

// wake wakes whatever waits on either direction of the connection.
func (pr *pair) wake() {
	pr.up.wake()
	pr.down.wake()
}
