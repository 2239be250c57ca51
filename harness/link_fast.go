package harness

import (
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Shopify/toxiproxy/v2/stream"

	"github.com/shakedown/shakedown/toxics"
)

// The fast path and the hand-over
//
// Each direction of a connection has one goroutine, linkDir.run. While no
// fault is armed in its direction it relays bytes itself, kernel to kernel
// (see spliceRelay): no Toxiproxy stage, no channel, no copy. While one is,
// it runs the direction on a Toxiproxy pipeline (a ToxicLink started for
// this stint, whose source reads the socket and whose sink writes it) and
// waits for that pipeline to end.
//
// Onto the pipeline: Apply arms the slots, counts them in Link.armed, then
// interrupts every fast read of an affected direction (a read deadline in
// the past) and waits until that direction reads again, on its pipeline.
// Bytes a read took before that are written straight on, first; every later
// read sees the armed count and leaves the socket to the pipeline, which
// starts reading where the fast path stopped. A direction whose relay is
// blocked writing (its receiver does not read) is not waited for: it reads
// nothing before its write ends, and then reads on the pipeline. So a byte
// written after Apply returned meets the fault, and Apply waits for no
// peer, only for goroutines to be scheduled.
//
// Back: once revert has disarmed the last slot of a direction, it
// interrupts the pipeline's reads there. The pipeline's source then ends
// its input as if at EOF; everything before flows through the (disarmed)
// slots in order, and when the sink has written the last of it, the
// direction goes back to the fast path. A slot that closes the stream on
// its own (a data limit or timeout that fired) sends a cut marker first,
// which the sink sees, so that ending is not taken for the end of a stint.

// relay moves the bytes of one direction while no fault is armed on it.
type relay interface {
	// fill reads what the source has, waiting for it (until the source's
	// read deadline), and holds it; 0 bytes and no error at EOF.
	fill() (int, error)
	// flush writes all it holds to the destination.
	flush() error
	close()
}

// copyRelay is a relay through a buffer, where splice is not available.
type copyRelay struct {
	src, dst *net.TCPConn
	buf      []byte
	n        int
}

func newCopyRelay(src, dst *net.TCPConn) *copyRelay {
	return &copyRelay{src: src, dst: dst, buf: make([]byte, linkChunk)}
}

func (r *copyRelay) fill() (int, error) {
	n, err := r.src.Read(r.buf)
	r.n = n
	if err == io.EOF {
		err = nil
	}
	return n, err
}

func (r *copyRelay) flush() error {
	_, err := r.dst.Write(r.buf[:r.n])
	r.n = 0
	return err
}

func (r *copyRelay) close() {}

// readMode is what a direction's reader is doing.
type readMode uint8

const (
	notReading readMode = iota
	fastRead            // the relay reads the socket
	pipeRead            // the pipeline's source reads the socket
)

// aLongTimeAgo is a read deadline that interrupts a read at once.
var aLongTimeAgo = time.Unix(1, 0)

// linkDir is one direction of a connection: bytes read from src are
// written to dst.
type linkDir struct {
	conn     *linkConn
	dir      toxics.Direction
	src, dst *net.TCPConn
	n        *atomic.Int64 // the Link's byte count for this direction
	stints   int           // pipelines run so far; only run touches it
	heads    headScanner   // request heads delivered so far (upstream, while tapped)

	// mu guards what the reader is doing, for Apply and revert to
	// interrupt it.
	mu      sync.Mutex
	reading readMode
	kicked  bool          // the read deadline was moved to interrupt the read
	next    chan struct{} // closed when the next read starts; made by a waiter
}

// arrived times the exchanges of the connection (LinkStats.Exchanges) as
// bytes arrive to be delivered, before they are: bytes for the upstream
// start one unless one is waiting, bytes for the client end the one
// waiting. Before, not after: once delivered, a request can be answered,
// and an answer followed by the next request, before the goroutine that
// delivered them gets a CPU again.
func (d *linkDir) arrived() {
	l := d.conn.l
	if d.dir == toxics.Upstream {
		if d.conn.asked.Load() == 0 && d.conn.asked.CompareAndSwap(0, l.now()) {
			l.waiting.Add(1)
		}
		return
	}
	if a := d.conn.asked.Load(); a > 0 && d.conn.asked.CompareAndSwap(a, 0) {
		l.answered(a, l.now())
	}
}

// armed reports whether a fault is armed in d's direction.
func (d *linkDir) armed() bool {
	return d.conn.l.armed[d.dir].Load() > 0 || d.dir == toxics.Downstream && d.conn.protoBusy()
}

// startRead marks the start of a read in mode m, or reports false if the
// read belongs to the other mode: to the pipeline (fastRead while a fault
// is armed) or to the fast path (pipeRead while none is). A read that
// starts wakes the Apply waiting for it.
func (d *linkDir) startRead(m readMode) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.armed() != (m == pipeRead) {
		return false
	}
	d.reading = m
	d.wake()
	return true
}

// release wakes the Apply waiting for the next read, before something else
// that may block (a write), or when the direction has finished.
func (d *linkDir) release() {
	d.mu.Lock()
	d.wake()
	d.mu.Unlock()
}

// wake closes next, if an Apply waits on it; d.mu must be held.
func (d *linkDir) wake() {
	if d.next != nil {
		close(d.next)
		d.next = nil
	}
}

// endRead marks the end of a read and undoes the deadline that interrupted
// it, if one did (reported).
func (d *linkDir) endRead() (kicked bool) {
	d.mu.Lock()
	d.reading = notReading
	kicked, d.kicked = d.kicked, false
	d.mu.Unlock()
	if kicked {
		_ = d.src.SetReadDeadline(time.Time{})
	}
	return kicked
}

// interrupt interrupts a read in mode m, if one is under way; with wait, it
// returns a channel closed when the direction reads again, or starts a
// write, or has finished (nil if no read is under way).
func (d *linkDir) interrupt(m readMode, wait bool) <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.reading != m {
		return nil
	}
	if !d.kicked {
		_ = d.src.SetReadDeadline(aLongTimeAgo)
		d.kicked = true
	}
	if !wait {
		return nil
	}
	if d.next == nil {
		d.next = make(chan struct{})
	}
	return d.next
}

// interrupted reports whether err is what a read interrupted by interrupt
// returns.
func interrupted(kicked bool, err error) bool {
	return kicked && errors.Is(err, os.ErrDeadlineExceeded)
}

// run carries the direction until it is finished: its source reached EOF
// (then dst is half-closed), or the connection closed.
func (d *linkDir) run() {
	defer d.conn.dirDone()
	defer d.release()
	var r relay
	rTapped := false // r was chosen for a tapped direction (a copy)
	defer func() {
		if r != nil {
			r.close()
		}
	}()
	for {
		if d.armed() {
			if !d.pipeline() {
				return
			}
			continue
		}
		if tapped := d.tapping(); r == nil || tapped != rTapped {
			if r != nil {
				r.close()
			}
			if rTapped = tapped; tapped {
				r = newCopyRelay(d.src, d.dst) // the tap reads the bytes
			} else {
				r = newRelay(d.src, d.dst)
			}
		}
		if !d.fast(r, rTapped) {
			return
		}
	}
}

// fast relays bytes until a fault is armed in the direction, or the Link's
// tap is set or cleared (true), or the direction is finished (false).
func (d *linkDir) fast(r relay, tapped bool) bool {
	for {
		if d.tapping() != tapped {
			return true // another relay: see run
		}
		if !d.startRead(fastRead) {
			return true
		}
		n, err := r.fill()
		kicked := d.endRead()
		if n > 0 {
			// Read before any hand-over: written on first, in order.
			d.release()
			if cr, ok := r.(*copyRelay); ok && tapped {
				d.delivered(cr.buf[:cr.n])
			}
			d.arrived()
			if err := r.flush(); err != nil {
				d.conn.close(false)
				return false
			}
			d.n.Add(int64(n))
		}
		switch {
		case err == nil && n == 0: // EOF
			_ = d.dst.CloseWrite()
			return false
		case err == nil, interrupted(kicked, err):
		default:
			d.conn.close(false)
			return false
		}
	}
}

// pipeline runs the direction on a Toxiproxy pipeline until that ends. It
// reports whether the direction goes on (on the fast path, or on a new
// pipeline if a fault was armed again meanwhile).
func (d *linkDir) pipeline() bool {
	d.stints++
	var parts sync.WaitGroup // the source and the sink
	parts.Add(2)
	src := &linkSource{d: d, parts: &parts}
	sink := &linkSink{d: d, src: src, parts: &parts}
	name := "c" + strconv.FormatUint(d.conn.id, 10) + "_" + d.dir.String() + "_" + strconv.Itoa(d.stints)
	dir := stream.Upstream
	if d.dir == toxics.Downstream {
		dir = stream.Downstream
	}
	l := d.conn.l
	end := l.startStint(d, func() { l.proxy.Toxics.StartLink(l.server, name, src, sink, dir) })
	parts.Wait()
	end()
	return sink.resume
}

// handOver moves the live connections' directions in dir onto the pipeline:
// it interrupts their fast reads and returns once each of those directions
// reads on its pipeline (or writes, or has finished). A fault must be
// counted in l.armed first.
func (l *Link) handOver(dir toxics.Direction) {
	var waits []<-chan struct{}
	for _, d := range l.liveDirs(dir) {
		if next := d.interrupt(fastRead, true); next != nil {
			waits = append(waits, next)
		}
	}
	for _, next := range waits {
		<-next
	}
}

// handBack interrupts the pipeline reads of the live connections'
// directions in dir, so that their pipelines end if no fault is armed
// there any more. It does not wait.
func (l *Link) handBack(dir toxics.Direction) {
	for _, d := range l.liveDirs(dir) {
		d.interrupt(pipeRead, false)
	}
}

// liveDirs returns the directions in dir of the live connections.
func (l *Link) liveDirs(dir toxics.Direction) []*linkDir {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*linkDir, 0, 2*len(l.conns))
	for c := range l.conns {
		for _, d := range c.dirs {
			if dir.Has(d.dir) {
				out = append(out, d)
			}
		}
	}
	return out
}
