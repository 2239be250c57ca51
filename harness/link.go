package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"

	"github.com/shakedown/shakedown/toxics"
)

// LinkStats counts what went through a Link since it started.
type LinkStats struct {
	// Accepted counts connections accepted from clients, including those
	// the Link turned away at once.
	Accepted int64
	// Active counts client connections open now.
	Active int64
	// Refused counts accepted connections the Link closed at once: reset
	// by a Reset fault, or the upstream could not be dialled. Dials that
	// a Down fault refuses never reach the Link and are not counted.
	Refused int64
	// BytesUp counts bytes delivered to the upstream.
	BytesUp int64
	// BytesDown counts bytes delivered to clients.
	BytesDown int64
	// Exchanges counts the requests answered so far: on each connection,
	// bytes the Link has to deliver to the upstream, then the first bytes
	// of its reply it has to deliver to the client (one exchange however
	// many requests a client pipelines before reading). A request whose
	// connection closed before any reply counts too, as answered at the
	// close: a client that gave up waiting waited all the same.
	Exchanges int64
	// AnswerTime sums, over the Exchanges, the time from a request's
	// first bytes ready for the upstream (past the Link's faults) to its
	// reply's first bytes ready for the client (before them), or to the
	// close: how long the dependency kept its clients waiting.
	AnswerTime time.Duration
	// Waiting counts the connections with a request waiting for its
	// answer now.
	Waiting int64
}

// linkDialTimeout bounds the Link's dial of the upstream for one client.
const linkDialTimeout = 10 * time.Second

// Link is a TCP proxy on 127.0.0.1 in front of one upstream (a container,
// a process, any TCP server), through which faults from package toxics
// reach the connections between a client and that upstream.
//
// The Link runs its own accept loop and connection table. While no fault
// is armed in a direction, the bytes of that direction move kernel to
// kernel (splice(2) on Linux, a plain copy elsewhere) and cost about as much
// as the socket itself; while one is, they flow through an embedded
// Toxiproxy toxic pipeline. Apply moves live connections onto the pipeline
// and the revert of the last fault moves them back, without losing,
// repeating or reordering a byte; a connection opened while a fault is
// armed starts on the pipeline. A fault applied with [Link.Apply] acts on
// live connections at once and on every connection opened while it is
// active: a byte the client or the upstream writes after Apply returned is
// subject to it (the Link reads it on the pipeline). The
// function Apply returns reverts the fault, also at once; data the fault
// held back (delayed, throttled, sliced) is then delivered in order, and no
// byte is lost or reordered except by faults whose job that is (blackhole,
// timeout, data limit, corrupt, reset, down). Neither Apply nor revert
// waits for a connection, not even for a client that has stopped reading
// (Apply waits only for the Link's own goroutines to move a connection
// that is idle or reading onto the pipeline: tens of µs; what a fault counts
// on a live connection, a timeout's After or a data limit's bytes, it
// counts from then).
// Several faults may be active together; they act one after the other,
// each in a slot of the pipeline: a new fault takes the first free slot,
// so faults act in the order they were applied unless an earlier one was
// reverted meanwhile. Order only matters for the few pairs that do not
// commute, such as a slicer and a latency.
//
// Upstream means client to upstream, Downstream the way back; a fault with
// direction Both acts on both. What each fault does, as a client sees it:
//
//   - [toxics.Latency]: every chunk is delayed by Delay ± Jitter (drawn
//     from the seed, see [WithSeed]) from the moment the Link read it;
//     order is kept; stacked latencies add. With Both, a round trip grows by
//     twice the delay.
//   - [toxics.Bandwidth]: at most Rate bytes per second pass, in pieces
//     of about 50 ms worth. Rate 0 holds all data back (the Link reads up
//     to 1 MiB ahead, as kernel buffers would; then the sender blocks);
//     reverting delivers it, and connections survive.
//   - [toxics.Slicer]: data arrives in slices of AverageSize ±
//     SizeVariation bytes (sizes drawn from the seed), Delay apart.
//   - [toxics.SlowClose]: when one side closes, the Link passes the close
//     on Delay later (at once, if the fault is reverted meanwhile).
//   - [toxics.Corrupt]: each byte has one random bit flipped with the given
//     probability (draws from the seed).
//   - [toxics.DataLimit]: once Bytes bytes have passed since the fault began
//     (or since the connection opened, if later), the connection is closed.
//   - [toxics.Timeout]: data is dropped and the connection closed After
//     the fault began (or After the connection opened, if later), whether
//     or not data flows. Reverted before that, the connection stays open.
//     After 0 closes live connections at once, and each new one as soon as
//     it is accepted.
//
// A connection a fault closes (timeout, data limit, down) ends with a FIN
// to each side: the client reads what had arrived, then EOF, whatever it
// sent meanwhile, however fast. The Link shuts its writing side down
// before it closes the socket, because closing a socket that holds bytes
// the Link has not read yet makes the kernel send an RST instead of the
// FIN, and the client would read ECONNRESET or EOF depending on timing.
// (The RST still follows the FIN then: a client that writes again gets
// an error on a later write.)
//   - [toxics.Blackhole]: data is dropped; connections stay open and carry
//     data again after the revert (what was sent meanwhile is lost).
//   - [toxics.Reset]: live connections are aborted with a TCP RST (the
//     client reads ECONNRESET), and so is every new connection while the
//     fault lasts. The upstream side is reset as well.
//   - [toxics.Down]: the listener closes, so new dials are refused, and
//     live connections are closed (FIN). Reverting listens again on the
//     same address.
//   - The HTTP faults (toxics.HTTPKinds), on a Link started with
//     [WithProtocol]("http"): see link_http.go.
//   - [toxics.Loss]: an emulation of TCP over a lossy path (the kernel
//     here cannot drop packets): each chunk the Link reads is cut into
//     segments of [toxics.SegmentSize] bytes, a lost one (seeded
//     Gilbert–Elliott draws) arrives a retransmission timeout late (200 ms,
//     doubling), and what follows waits behind it; nothing is lost or
//     reordered. Reverting delivers what it holds at once.
//   - [toxics.ConnectHang]: new connections hang at connect time, live ones
//     are untouched. Handshake: the Link stops accepting and sets its
//     listen backlog to 0, so (after at most one dial that completes into
//     the backlog) dials hang in the TCP handshake until the client's
//     connect timeout. Accepted: dials complete, and the Link accepts
//     them but dials the upstream only when the fault is reverted.
//   - [toxics.ConnLimit]: at most Max connections at once; past that a new
//     one is reset at accept, or with Hold waits (accepted, the upstream
//     not dialled) until one closes, first come first served.
//   - [toxics.Targeted]: its fault acts only on the connections its
//     selector picks (a seeded share, the Nth new one, those opened before
//     or after it began); the others pass untouched.
//
// Faults that act where connections come in (ConnectHang, ConnLimit) cost
// nothing on the bytes; with none of them active, a connection pays one
// uncontended lock at accept and one at close (see link_conn.go).
//
// When a client half-closes (shutdown of its write side) the Link
// half-closes towards the upstream after delivering what it holds, and the
// other way round; a connection is torn down when both directions are
// done, when a write fails, or when a fault closes it.
//
// A Link made by [NewLink] is closed by t.Cleanup; one made by [StartLink]
// must be closed by the caller. [Link.Close] closes the listener and every
// connection and returns when all of the Link's goroutines have ended.
type Link struct {
	id   uint64 // key of the Link in linkDones and slotRegistry
	name string
	addr string
	seed int64
	log  logger
	done chan struct{} // closed by Close: every toxic lets go

	http linkHTTP // the armed HTTP faults, see link_http.go

	server *toxiproxy.ApiServer
	proxy  *toxiproxy.Proxy

	ctx    context.Context // cancelled by Close: stops dials in flight
	cancel context.CancelFunc
	wg     sync.WaitGroup // accept loops, connection set-up, live connections

	accepted, refused, active, bytesUp, bytesDown atomic.Int64
	exchanges, answerTime, waiting                atomic.Int64 // see LinkStats
	epoch                                         time.Time    // the clock of linkConn.asked

	// armed counts the armed slots of each direction (indexed by
	// toxics.Upstream and toxics.Downstream): a direction of a connection
	// is relayed directly while its count is 0 and through the pipeline
	// otherwise (see link_fast.go).
	armed [3]atomic.Int32
	// tap, when set, is called with the traceparent of every request
	// delivered upstream (see link_trace.go).
	tap atomic.Pointer[func(string)]

	// Lock order: an appliedFault's mu (held while reverting it), then
	// faultMu, then mu. arm and the revert of a slot fault take faultMu
	// and, inside it, mu; nothing takes faultMu while holding mu (Close
	// lets go of mu before forget takes faultMu). A connection's goroutines
	// take mu (dirDone) and Toxiproxy's chain lock (StartLink), never
	// faultMu. A linkDir's mu is taken last, with nothing inside it.

	// faultMu serialises arming and disarming slots, and guards slots,
	// nextSlot and every slot's owner and set. Toxiproxy's chain lock is
	// taken inside it (AddToxicJson in addSlot).
	faultMu  sync.Mutex
	slots    map[toxics.Direction][]*slot // per direction, in chain order
	nextSlot int

	// mu guards the rest: the listener, the connection table and the
	// applied faults.
	mu        sync.Mutex
	upstream  string
	ln        net.Listener // nil while a Down fault is active or after Close
	conns     map[*linkConn]struct{}
	faults    []*appliedFault // in the order they were applied
	nextFault uint64
	nextConn  uint64
	resets    int // active Reset faults
	downs     int // active Down faults
	closed    bool
	closeDone chan struct{}

	// protocol faults (link_resp.go): protoMu serialises changes of
	// protoFaults, which connections read without a lock.
	protocol    atomic.Pointer[string]
	protoMu     sync.Mutex
	protoFaults atomic.Pointer[[]*protoFault]
	startMu     sync.Mutex // held while a pipeline starts, and while a slot is added (see link_conn.go)
	gate        connGate   // connection-level faults (see link_conn.go)
}

// NewLink starts a Link on 127.0.0.1:0 in front of upstream ("host:port")
// and returns once it listens. t.Cleanup closes it. A bad name or upstream,
// or a failure to listen, fails the test with t.Fatalf.
func NewLink(t testing.TB, name, upstream string, opts ...LinkOption) *Link {
	t.Helper()
	l, err := StartLink(name, upstream, opts...)
	if err != nil {
		t.Fatalf("%v", err)
		return nil
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("%v", err)
		}
	})
	return l
}

// StartLink is [NewLink] without a testing.TB: it returns an error instead
// of failing a test, and the caller must Close the Link.
func StartLink(name, upstream string, opts ...LinkOption) (*Link, error) {
	if name == "" {
		return nil, errors.New("harness: StartLink: the link name is empty")
	}
	if err := checkHostPort(upstream); err != nil {
		return nil, fmt.Errorf("harness: link %q: upstream %w", name, err)
	}
	cfg := linkConfig{logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		if o != nil {
			o.applyLink(&cfg)
		}
	}
	if err := checkProtocol(cfg.protocol); err != nil {
		return nil, fmt.Errorf("harness: link %q: %w", name, err)
	}
	registerLinkToxics()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("harness: link %q: listen on 127.0.0.1:0: %w", name, err)
	}
	// A Toxiproxy server and proxy of our own, never started: the Link
	// accepts connections itself and only borrows the toxic pipeline. The
	// HTTP API is never started either.
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	proxy := toxiproxy.NewProxy(server, name, ln.Addr().String(), upstream)

	ctx, cancel := context.WithCancel(context.Background())
	l := &Link{
		id:        linkIDs.Add(1),
		done:      make(chan struct{}),
		name:      name,
		addr:      ln.Addr().String(),
		seed:      cfg.seed,
		log:       logger{cfg.logger.With("link", name)},
		server:    server,
		proxy:     proxy,
		ctx:       ctx,
		cancel:    cancel,
		upstream:  upstream,
		ln:        ln,
		conns:     make(map[*linkConn]struct{}),
		closeDone: make(chan struct{}),
		slots:     make(map[toxics.Direction][]*slot),
		epoch:     time.Now(),
	}
	l.protocol.Store(&cfg.protocol)
	linkDones.Store(l.id, l.done)
	// One slot per direction before any connection exists: from then on
	// the last stub of every pipeline is a slot (see link_slot_toxic.go).
	for _, d := range []toxics.Direction{toxics.Upstream, toxics.Downstream} {
		if _, err := l.addSlot(d); err != nil {
			l.forget()
			cancel()
			_ = ln.Close()
			return nil, fmt.Errorf("harness: link %q: set up the toxic pipeline: %w", name, err)
		}
	}
	l.wg.Add(1)
	go l.accept(ln)
	l.log.Debug("link listening", "addr", l.addr, "upstream", upstream)
	return l, nil
}

// checkHostPort checks that addr is "host:port" with a host and a port in
// 1..65535: an upstream of a Link, an address for [Env.Address].
func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q: port %q is not a number in 1..65535", addr, port)
	}
	if host == "" {
		return fmt.Errorf("%q has no host (use 127.0.0.1:%s)", addr, port)
	}
	return nil
}

// Name returns the name the Link was started with.
func (l *Link) Name() string {
	return l.name
}

// Addr returns the address clients dial, "127.0.0.1:port". It stays the
// same for the Link's life, also across a Down fault and its revert.
func (l *Link) Addr() string {
	return l.addr
}

// Upstream returns the address new connections are forwarded to.
func (l *Link) Upstream() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.upstream
}

// SetUpstream re-points new connections to addr, for instance after a
// container restarted on a new port. Live connections keep their upstream
// and Addr does not change.
func (l *Link) SetUpstream(addr string) error {
	if err := checkHostPort(addr); err != nil {
		return fmt.Errorf("harness: link %q: set upstream %w", l.name, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("harness: link %q: set upstream: the link is closed", l.name)
	}
	l.upstream = addr
	l.log.Debug("upstream set", "upstream", addr)
	return nil
}

// Supports reports whether the Link can apply faults of kind k: the link
// kinds, protocol kinds only of the protocol it speaks ([WithProtocol]),
// and the HTTP kinds if it speaks "http".
func (l *Link) Supports(k toxics.Kind) bool {
	if k.IsHTTP() {
		return l.Protocol() == toxics.ProtocolHTTP
	}
	return k.IsLink() && (k.Protocol() == "" || k.Protocol() == l.Protocol())
}

// Stats returns the Link's counters.
func (l *Link) Stats() LinkStats {
	return LinkStats{
		Accepted:   l.accepted.Load(),
		Active:     l.active.Load(),
		Refused:    l.refused.Load(),
		BytesUp:    l.bytesUp.Load(),
		BytesDown:  l.bytesDown.Load(),
		Exchanges:  l.exchanges.Load(),
		AnswerTime: time.Duration(l.answerTime.Load()),
		Waiting:    l.waiting.Load(),
	}
}

// now is the time since the Link began, on the monotonic clock, and never
// 0 (which linkConn.asked keeps for "nothing asked").
func (l *Link) now() int64 {
	return int64(time.Since(l.epoch)) + 1
}

// answered counts an exchange that began at asked (Link.now), if one did
// (asked > 0).
func (l *Link) answered(asked, now int64) {
	if asked > 0 {
		l.waiting.Add(-1)
		l.exchanges.Add(1)
		l.answerTime.Add(max(now-asked, 0))
	}
}

// Active returns the faults currently applied, in the order they were
// applied.
func (l *Link) Active() []toxics.Fault {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]toxics.Fault, 0, len(l.faults))
	for _, a := range l.faults {
		out = append(out, a.fault)
	}
	return out
}

// accept runs the accept loop of one listener until it is closed.
func (l *Link) accept(ln net.Listener) {
	defer l.wg.Done()
	var backoff time.Duration
	for {
		if !l.holdAccept(ln) {
			return
		}
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if l.acceptHeld(err) {
				continue
			}
			// Out of file descriptors or similar: wait a little, but
			// stop at once when the link closes.
			backoff = min(max(2*backoff, time.Millisecond), 100*time.Millisecond)
			l.log.Warn("accept failed", "err", err, "retry_in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-l.ctx.Done():
				t.Stop()
				return
			}
			continue
		}
		backoff = 0
		l.accepted.Add(1)
		tc := c.(*net.TCPConn)
		l.mu.Lock()
		switch {
		case l.closed:
			l.mu.Unlock()
			_ = tc.Close()
			continue
		}
		// Connections are numbered in the order they are accepted (what
		// toxics.Conns.Nth counts), not in the order their upstream dials
		// end, which the scheduler decides.
		l.nextConn++
		id := l.nextConn
		if l.resets > 0 {
			l.mu.Unlock()
			l.refused.Add(1)
			resetTCP(tc)
			l.log.Debug("connection reset on accept", "client", tc.RemoteAddr().String())
			continue
		}
		l.wg.Add(1)
		l.mu.Unlock()
		go l.serve(tc, id)
	}
}

// resetConn aborts c with a TCP RST.
func resetTCP(c *net.TCPConn) {
	_ = c.SetLinger(0)
	_ = c.Close()
}

// serve dials the upstream for one accepted client and starts the two
// directions between them (see link_fast.go).
func (l *Link) serve(client *net.TCPConn, id uint64) {
	defer l.wg.Done()
	admitted, ok := l.admit(l.ctx, client)
	if !ok {
		return
	}
	defer admitted()
	up := l.Upstream()
	d := net.Dialer{Timeout: linkDialTimeout}
	uc, err := d.DialContext(l.ctx, "tcp", up)
	if err != nil {
		l.refused.Add(1)
		resetTCP(client)
		l.log.Debug("upstream dial failed", "client", client.RemoteAddr().String(), "upstream", up, "err", err)
		return
	}
	upstream := uc.(*net.TCPConn)

	l.mu.Lock()
	switch {
	case l.closed || l.downs > 0:
		l.mu.Unlock()
		_ = client.Close()
		_ = upstream.Close()
		return
	case l.resets > 0, l.resetPickedLocked(id):
		l.mu.Unlock()
		l.refused.Add(1)
		resetTCP(client)
		resetTCP(upstream)
		return
	}
	c := &linkConn{l: l, id: id, client: client, upstream: upstream}
	c.dirs = [2]*linkDir{
		{conn: c, dir: toxics.Upstream, src: client, dst: upstream, n: &l.bytesUp},
		{conn: c, dir: toxics.Downstream, src: upstream, dst: client, n: &l.bytesDown},
	}
	c.running.Store(2)
	l.conns[c] = struct{}{}
	l.active.Add(1)
	l.wg.Add(1) // done when both directions have finished
	l.mu.Unlock()

	l.log.Debug("connection open", "conn", c.id, "client", client.RemoteAddr().String(), "upstream", up)
	for _, dir := range c.dirs {
		go dir.run()
	}
}

// linkConn is one client connection and its upstream connection.
type linkConn struct {
	l                *Link
	id               uint64
	client, upstream *net.TCPConn
	dirs             [2]*linkDir // upstream, downstream
	closeOnce        sync.Once
	running          atomic.Int32 // directions not finished yet
	proto            atomic.Pointer[protoConn]
	http             httpConn // shared by the directions' HTTP stages, see link_http.go
	// asked is when (Link.now) the first bytes of a request not answered
	// yet were ready for the upstream; 0 when none is waiting, -1 once the
	// connection is closed.
	asked atomic.Int64
}

// close closes both connections, with an RST if reset is true. A clean
// close shuts down the writing side first, so each peer gets a FIN before
// anything else: closing a socket with bytes the Link has not read yet
// makes the kernel send an RST instead of the FIN, and the client would
// read ECONNRESET or EOF depending on what had arrived (see toxics.Timeout).
func (c *linkConn) close(reset bool) {
	c.closeOnce.Do(func() {
		if reset {
			_ = c.client.SetLinger(0)
			_ = c.upstream.SetLinger(0)
		} else {
			_ = c.client.CloseWrite()
			_ = c.upstream.CloseWrite()
		}
		_ = c.client.Close()
		_ = c.upstream.Close()
		// Unanswered: it waited until now. -1 for good: a direction still
		// delivering its last bytes starts no exchange on a closed
		// connection, which would wait for ever.
		c.l.answered(c.asked.Swap(-1), c.l.now())
		c.l.active.Add(-1)
		c.http.close()
		c.l.connGone()
	})
}

// dirDone is called when a direction has finished, as the last thing its
// goroutine does: after both, the connection is closed and forgotten.
func (c *linkConn) dirDone() {
	if c.running.Add(-1) != 0 {
		return
	}
	c.close(false)
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	c.l.log.Debug("connection closed", "conn", c.id)
	c.l.wg.Done()
}

// linkSource is the read end of a pipeline. It remembers how its input
// ended: at the connection's EOF (a half-close), or because no fault is
// armed any more (switched: the direction goes back to the fast path).
type linkSource struct {
	d        *linkDir
	parts    *sync.WaitGroup
	eof      atomic.Bool
	switched atomic.Bool
}

// Read is there for io.Reader; Toxiproxy's pipeline reads with WriteTo.
func (s *linkSource) Read(p []byte) (int, error) {
	return s.d.src.Read(p)
}

// linkChunk is the most a pipeline reads at once, and so the largest chunk
// that travels through the toxics; a sink reads with a buffer that large,
// so that every read takes exactly one chunk and none of the markers (empty
// chunks, see link_slot_toxic.go) is merged into the bytes before it.
const linkChunk = 64 << 10

// WriteTo feeds the pipeline until the connection ends, or until no fault
// is armed in its direction; when the connection fails (rather than ending
// cleanly), it sends the abort marker (an empty chunk) so that the toxics
// drop what they hold for it; see link_slot_toxic.go.
func (s *linkSource) WriteTo(w io.Writer) (int64, error) {
	defer s.parts.Done()
	d := s.d
	hs := newHTTPStage(d, w) // parses HTTP only while an HTTP fault is armed
	defer func() { hs.flush(s.eof.Load()) }()
	w = hs
	buf := make([]byte, linkChunk)
	var total int64
	for {
		if !d.startRead(pipeRead) {
			s.switched.Store(true)
			return total, nil
		}
		n, err := d.src.Read(buf)
		kicked := d.endRead()
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr == errHTTPCut {
				return total, nil // the sink closes the connection
			}
			if werr != nil {
				return total, werr
			}
		}
		switch {
		case err == io.EOF:
			s.eof.Store(true)
			return total, nil
		case err == nil, interrupted(kicked, err):
		default:
			_, _ = w.Write([]byte{})
			return total, err
		}
	}
}

// linkSink is the write end of a pipeline. A failed write aborts the whole
// connection and from then on the sink swallows what arrives, so the
// pipeline in front of it always drains and its goroutines end.
type linkSink struct {
	d      *linkDir
	src    *linkSource // the other end of this pipeline
	parts  *sync.WaitGroup
	failed bool // a write failed; only the pipeline's writer goroutine touches failed, cut and resume
	cut    bool // a marker arrived: a fault closed the stream, or the connection failed
	resume bool // the pipeline ended because no fault is armed: back to the fast path
}

func (s *linkSink) Write(p []byte) (int, error) {
	if s.failed {
		return len(p), nil
	}
	if len(p) > 0 {
		s.d.arrived()
	}
	n, err := s.d.write(p)
	s.d.n.Add(int64(n))
	if err != nil {
		s.failed = true
		s.d.conn.close(false)
	}
	return len(p), nil
}

// ReadFrom copies from the pipeline, one chunk per read (see linkChunk),
// and notes the markers: a read of no bytes.
func (s *linkSink) ReadFrom(r io.Reader) (int64, error) {
	buf := make([]byte, linkChunk)
	var total int64
	for {
		n, err := r.Read(buf)
		switch {
		case n > 0:
			_, _ = s.Write(buf[:n])
			total += int64(n)
		case err == nil:
			s.cut = true
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Close ends the pipeline: a half-close if its source ended cleanly, back
// to the fast path if the source ended because no fault is armed, and
// otherwise (a fault closed the stream, or a write failed) the whole
// connection closes.
func (s *linkSink) Close() error {
	defer s.parts.Done()
	switch {
	case s.failed || s.cut:
		s.d.conn.close(false)
	case s.src.eof.Load():
		_ = s.d.dst.CloseWrite()
	case s.src.switched.Load():
		s.resume = true
	default:
		s.d.conn.close(false)
	}
	return nil
}

// Close closes the listener and every connection, removes all faults, and
// returns when every goroutine of the Link has ended. It is safe to call
// more than once; later calls wait for the first to finish.
func (l *Link) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.closeDone
		return nil
	}
	l.closed = true
	ln := l.ln
	l.ln = nil
	conns := make([]*linkConn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()

	l.cancel()
	if ln != nil {
		_ = ln.Close()
	}
	// Every slot drops what it holds (a stalled bandwidth, a pending
	// delay) and closed connections make every sink swallow, so the
	// pipelines drain.
	close(l.done)
	for _, c := range conns {
		c.close(false)
	}
	l.wg.Wait()
	l.forget()

	l.mu.Lock()
	l.faults = nil
	l.mu.Unlock()
	close(l.closeDone)
	l.log.Debug("link closed")
	return nil
}

// forget removes the Link's entries from the registries the slots read.
func (l *Link) forget() {
	linkDones.Delete(l.id)
	l.faultMu.Lock()
	defer l.faultMu.Unlock()
	for _, list := range l.slots {
		for _, s := range list {
			slotRegistry.Delete(s.key)
		}
	}
}
