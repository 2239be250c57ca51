package sim

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shakedown/shakedown/toxics"
)

// Endpoint is one name on a [Network]: the server listening there, and the
// path clients take to it. It is a [Target] that takes every fault of
// package toxics, so a schedule names it like a harness dependency: link
// faults act on the path, node faults on the server.
//
// Link faults, with the client-visible behaviour of harness.Link on real
// TCP (Upstream is client to server, Downstream server to client):
//
//   - [toxics.Latency]: each write arrives Delay later, plus or minus a
//     seeded uniform Jitter; order is kept.
//   - [toxics.Bandwidth]: bytes arrive at Rate bytes per second; Rate 0
//     holds them (writers block once the buffer is full) until the fault
//     is reverted, which delivers them; connections survive.
//   - [toxics.Slicer]: each write arrives in pieces of about AverageSize
//     bytes (seeded), Delay apart; a read never spans two pieces.
//   - [toxics.SlowClose]: the end of the stream (the peer's Close or
//     CloseWrite) arrives Delay late.
//   - [toxics.Corrupt]: each byte has one seeded bit flipped with
//     Probability.
//   - [toxics.DataLimit]: once Bytes bytes have passed in a direction since
//     the fault began (or the connection opened), the connection closes:
//     both sides read what arrived, then EOF.
//   - [toxics.Timeout]: data is dropped, and each connection closes (EOF on
//     both sides) After the fault began, or After it opened for one opened
//     during the fault, whether or not data flows. With After 0 a new
//     connection is dialed, takes what the client writes at once (and
//     drops it), then closes: the client reads EOF, as from harness.Link.
//   - [toxics.Blackhole]: data is dropped; connections stay open and carry
//     data again once it is reverted (what was sent meanwhile is lost).
//   - [toxics.Reset]: live connections are reset on both sides: the next
//     read or write fails with an error matching syscall.ECONNRESET (then
//     reads give EOF and writes EPIPE, as on Linux). New connections are
//     accepted and reset at once, before the server sees them; the
//     client's first writes at that instant beat the RST, which its next
//     read meets.
//   - [toxics.Down]: dials are refused (syscall.ECONNREFUSED) and live
//     connections close (EOF on both sides).
//   - [toxics.Loss]: each write is cut into segments of
//     [toxics.SegmentSize] bytes; a lost one (seeded Gilbert–Elliott
//     draws) arrives a retransmission timeout late (200 ms, doubling), and
//     what follows waits behind it; nothing is lost or reordered.
//   - [toxics.ConnectHang]: handshake: the first dial completes into a
//     backlog of 0, later ones wait until the revert or their context's
//     end (a timeout); accepted: dials complete. Either way the server
//     sees none of them until the revert. Unlike a real handshake, which
//     completes at the client's next SYN retransmission (1 s, 3 s, ...
//     after the dial began), a waiting dial completes at the revert.
//   - [toxics.ConnLimit]: at most Max connections at once; past that a new
//     one is reset as under Reset, or with Hold waits unseen by the
//     server until one closes, first come first served.
//   - [toxics.Targeted]: its fault acts only on the connections its
//     selector picks, numbered in dial order.
//
// Clock faults ([toxics.ClockSkew], [toxics.ClockJump]) move the
// endpoint's own clock, [Endpoint.Now]; see the package doc, "Clock
// faults", for what they can and cannot do under testing/synctest.
//
// Reverting a fault ends it at once on live connections; reverting a delay
// (latency, bandwidth, slicer, slow_close) delivers what it holds at once.
//
// Node faults, acting on whatever serves the name (a fake, or the user's
// server behind [Network.Listen]):
//
//   - [toxics.Crash]: dials are refused; live connections are reset on both
//     sides; a [FakeKV] loses its data. Revert: dials are accepted again.
//   - [toxics.Stop]: dials are refused; live connections close (EOF on both
//     sides); data is kept. Grace is not modelled (the fakes have nothing
//     to drain). Revert: dials are accepted again.
//   - [toxics.Pause]: dials succeed but wait in the backlog; the server
//     accepts, reads and writes nothing, so clients hang until a deadline
//     or the revert, after which everything proceeds.
//   - [toxics.Restart]: as Stop then its revert, at once. Reverting it does
//     nothing.
//
// One node fault holds at a time; several link faults may, including two
// of a kind (their effects add up, and reverting either releases what
// delays hold).
type Endpoint struct {
	n        *Network
	name     string
	nameHash uint64

	mu        sync.Mutex
	ln        *listener
	pairs     map[*pair]struct{}
	seq       uint64
	nextID    uint64
	faults    []*activeFault // link faults, in the order applied
	down      int
	reset     int
	stopped   bool
	nodeFault *activeFault
	watchers  []func(nodeEvent)
	closed    bool

	pol      [2]atomic.Pointer[policy] // Upstream, Downstream
	gate     atomic.Pointer[chan struct{}]
	accepted atomic.Int64
	refused  atomic.Int64
	up, dn   atomic.Int64

	connGate simGate // connect-time faults and connection limits, guarded by mu (see net_gate.go)

	clock    clockState   // clock faults, guarded by mu (see clock.go)
	clockOff atomic.Int64 // the clock's offset now, for Now
}

// nodeEvent tells a fake what happened to its node.
type nodeEvent uint8

const (
	nodeCrashed nodeEvent = iota
	nodeStopped
	nodeStarted
)

type activeFault struct {
	id       uint64
	fault    toxics.Fault
	timers   map[*pair]stopper // timeout: when each connection closes
	pause    chan struct{}     // pause: closed at revert
	reverted bool
	first    uint64 // targeted: the number of the first connection opened after it began
}

// policy is what the link faults of one direction do to the bytes
// written now. A nil policy does nothing.
type policy struct {
	drop      bool
	corrupt   []float64
	latency   []toxics.Latency
	rate      int64 // bytes per second; negative: unlimited
	slicer    *toxics.Slicer
	slowClose time.Duration
	limits    []limitRule
	loss      []lossRule
	targeted  []*activeFault // resolved per connection (see net_loss.go)
}

type limitRule struct {
	id    uint64
	bytes int64
}

var (
	_ Target       = (*Endpoint)(nil)
	_ net.Listener = (*listener)(nil)
	_ net.Conn     = (*conn)(nil)
)

func newEndpoint(n *Network, name string) *Endpoint {
	h := fnv.New64a()
	h.Write([]byte(name))
	return &Endpoint{n: n, name: name, nameHash: h.Sum64(), pairs: map[*pair]struct{}{}}
}

// Name returns the endpoint's name, the one schedules use.
func (ep *Endpoint) Name() string { return ep.name }

// Addr returns the address clients dial: the name itself.
func (ep *Endpoint) Addr() string { return ep.name }

// Supports reports whether the endpoint takes faults of kind k: every link,
// node and clock kind of package toxics but the protocol kinds, which
// fakes of that protocol take (FakeKV: Redis).
func (ep *Endpoint) Supports(k toxics.Kind) bool {
	return (k.IsLink() || k.IsNode() || k.IsClock()) && k.Protocol() == ""
}

func (ep *Endpoint) policy(d toxics.Direction) *policy {
	if d == toxics.Downstream {
		return ep.pol[1].Load()
	}
	return ep.pol[0].Load()
}

func (ep *Endpoint) pauseGate() <-chan struct{} {
	if g := ep.gate.Load(); g != nil {
		return *g
	}
	return nil
}

func (ep *Endpoint) countBytes(d toxics.Direction, n int) {
	if d == toxics.Downstream {
		ep.dn.Add(int64(n))
	} else {
		ep.up.Add(int64(n))
	}
}

// EndpointStats counts what happened on an endpoint since it was created.
// The fields are those of harness.LinkStats; Refused differs, as noted.
type EndpointStats struct {
	// Accepted counts dials that got a connection, including those a
	// Reset fault reset at once.
	Accepted int64
	// Active counts connections open now (not yet closed by both sides
	// or cut by a fault).
	Active int64
	// Refused counts dials refused (no listener, Down, a stopped or
	// crashed node). A real Link never sees the dials that the kernel
	// refuses, and counts instead the connections it closes at once.
	Refused int64
	// BytesUp counts bytes the server read; BytesDown bytes clients read.
	BytesUp   int64
	BytesDown int64
}

// Stats returns the endpoint's counters.
func (ep *Endpoint) Stats() EndpointStats {
	ep.mu.Lock()
	active := int64(len(ep.pairs))
	ep.mu.Unlock()
	return EndpointStats{Accepted: ep.accepted.Load(), Active: active, Refused: ep.refused.Load(), BytesUp: ep.up.Load(), BytesDown: ep.dn.Load()}
}

// Active returns the faults applied and not reverted: link faults in the
// order applied, then the node fault, if any, then clock faults.
func (ep *Endpoint) Active() []toxics.Fault {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	out := make([]toxics.Fault, 0, len(ep.faults)+1+len(ep.clock.active))
	for _, af := range ep.faults {
		out = append(out, af.fault)
	}
	if ep.nodeFault != nil {
		out = append(out, ep.nodeFault.fault)
	}
	for _, af := range ep.clock.active {
		out = append(out, af.fault)
	}
	return out
}

// Clear reverts every active fault (a crashed or stopped node starts
// again, a paused one resumes) and sets the endpoint's clock back to the
// client's.
func (ep *Endpoint) Clear(ctx context.Context) error {
	ep.mu.Lock()
	afs := append([]*activeFault(nil), ep.faults...)
	node := ep.nodeFault
	ep.mu.Unlock()
	for i := len(afs) - 1; i >= 0; i-- {
		ep.revertLink(afs[i])
	}
	if node != nil {
		ep.revertNode(node)
	}
	ep.clearClock()
	return nil
}

// Apply starts f on the endpoint and returns the function that reverts
// exactly f; the function is idempotent. Neither waits: a fault takes
// effect on live connections at once. An invalid or nil fault, a node
// fault while another holds, a done ctx or a closed network is an error
// naming the endpoint, and changes nothing.
func (ep *Endpoint) Apply(ctx context.Context, f toxics.Fault) (revert func(context.Context) error, err error) {
	if ep == nil {
		return nil, errors.New("sim: Apply on a nil *Endpoint")
	}
	if err := toxics.Validate(f); err != nil {
		return nil, fmt.Errorf("sim: endpoint %q: %w", ep.name, err)
	}
	if ctx != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("sim: endpoint %q: apply %s: %w", ep.name, f, ctx.Err())
	}
	if p := f.Kind().Protocol(); p != "" {
		return nil, fmt.Errorf("sim: endpoint %q: apply %s: the endpoint speaks no %s (a fake of that protocol takes it)", ep.name, f, p)
	}
	if f.Kind().IsHTTP() { // a FakeHTTP takes them, see fake_http_faults.go
		return nil, fmt.Errorf("sim: endpoint %q: apply %s: %s is an HTTP fault and only a FakeHTTP takes those", ep.name, f, f.Kind())
	}
	if f.Kind().IsClock() { // see clock.go
		revert, err := ep.applyClock(f)
		if err != nil {
			return nil, err
		}
		return func(context.Context) error { revert(); return nil }, nil
	}
	switch f := f.(type) {
	case toxics.LinkFault:
		return ep.applyLink(f)
	case toxics.NodeFault:
		return ep.applyNode(f)
	}
	return nil, fmt.Errorf("sim: endpoint %q: unsupported fault %s", ep.name, f)
}

func (ep *Endpoint) applyLink(f toxics.LinkFault) (func(context.Context) error, error) {
	ep.mu.Lock()
	if ep.closed {
		ep.mu.Unlock()
		return nil, fmt.Errorf("sim: endpoint %q: apply %s: %w", ep.name, f, ErrNetworkClosed)
	}
	ep.nextID++
	af := &activeFault{id: ep.nextID, fault: f}
	af.first = ep.seq + 1
	ep.faults = append(ep.faults, af)
	var cut []*pair
	mode := severFin
	switch f := f.(type) {
	case toxics.Targeted:
		cut, mode = ep.applyTargetedLocked(af, f)
	case toxics.ConnectHang, toxics.ConnLimit:
		ep.applyGateLocked(f)
	case toxics.Down:
		ep.down++
		cut = ep.pairsLocked()
	case toxics.Reset:
		ep.reset++
		cut, mode = ep.pairsLocked(), severResetBoth
	case toxics.Timeout:
		if f.After == 0 {
			cut = ep.pairsLocked()
		} else {
			af.timers = map[*pair]stopper{}
			for pr := range ep.pairs {
				af.timers[pr] = closeAfter(pr, af.id, f.After)
			}
		}
	}
	ep.rebuildLocked()
	ep.mu.Unlock()
	ep.sever(cut, mode)
	return func(context.Context) error { ep.revertLink(af); return nil }, nil
}

// sever severs the connections prs, at once. When a Run orders the
// network's events, what waits on each connection wakes up in that
// connection's turn at this instant, so that the clients and servers go
// on one connection at a time, in the same order in every run.
func (ep *Endpoint) sever(prs []*pair, mode int) {
	ts := ep.n.turns.Load()
	for _, pr := range prs {
		pr.severWake(mode, ts == nil)
		if ts != nil {
			ts.afterFunc(0, turnKey{class: turnConn, a: ep.nameHash, b: pr.seq, c: roleFault}, pr.wake)
		}
	}
}

// severNew severs pr, a connection being dialed: when a Run orders the
// network's events, in its turn at this instant, once what the dialing
// client does at once (its first write, say) has come to rest; else now.
func (ep *Endpoint) severNew(pr *pair, mode int) {
	ts := ep.n.turns.Load()
	if ts == nil {
		pr.sever(mode)
		return
	}
	ts.afterFunc(0, turnKey{class: turnConn, a: ep.nameHash, b: pr.seq, c: roleFault}, func() { pr.sever(mode) })
}

// closeAfter closes pr d from now, for the timeout fault with the given id.
func closeAfter(pr *pair, id uint64, d time.Duration) stopper {
	key := turnKey{class: turnConn, a: pr.ep.nameHash, b: pr.seq, c: id<<3 | roleTimeout}
	return pr.ep.n.turns.Load().afterFunc(d, key, func() { pr.sever(severFin) })
}

// simNetwork returns the network of the endpoint (and of the fakes that
// embed it), for Run to attach its turns to.
func (ep *Endpoint) simNetwork() *Network { return ep.n }

func (ep *Endpoint) revertLink(af *activeFault) {
	ep.mu.Lock()
	if af.reverted {
		ep.mu.Unlock()
		return
	}
	af.reverted = true
	for i, x := range ep.faults {
		if x == af {
			ep.faults = append(ep.faults[:i], ep.faults[i+1:]...)
			break
		}
	}
	var release []*pipe
	switch af.fault.(type) {
	case toxics.Down:
		ep.down--
	case toxics.Reset:
		ep.reset--
	case toxics.Timeout:
		for _, t := range af.timers {
			t.Stop()
		}
		af.timers = nil
	case toxics.ConnectHang, toxics.ConnLimit:
		ep.revertGateLocked(af.fault)
	case toxics.Latency, toxics.Bandwidth, toxics.Slicer, toxics.SlowClose, toxics.Loss, toxics.Targeted:
		for _, t := range af.timers { // a targeted timeout
			t.Stop()
		}
		af.timers = nil
		d := toxics.DirectionOf(af.fault)
		for pr := range ep.pairs {
			if d.Has(toxics.Upstream) {
				release = append(release, pr.up)
			}
			if d.Has(toxics.Downstream) {
				release = append(release, pr.down)
			}
		}
	}
	ep.rebuildLocked()
	ep.mu.Unlock()
	now := time.Now()
	ts := ep.n.turns.Load()
	for _, p := range release {
		p.release(now, ts == nil)
		if ts != nil {
			// As in sever: the reader wakes in its turn.
			role := roleUpRelease
			if p.dir == toxics.Downstream {
				role = roleDownRelease
			}
			ts.afterFunc(0, turnKey{class: turnConn, a: ep.nameHash, b: p.seq, c: role}, p.wake)
		}
	}
}

// rebuildLocked recomputes the policy of each direction from the active
// link faults.
func (ep *Endpoint) rebuildLocked() {
	for i, dir := range []toxics.Direction{toxics.Upstream, toxics.Downstream} {
		pol := &policy{rate: -1}
		some := false
		for _, af := range ep.faults {
			if !toxics.DirectionOf(af.fault).Has(dir) {
				continue
			}
			switch f := af.fault.(type) {
			case toxics.Latency:
				pol.latency = append(pol.latency, f)
			case toxics.Bandwidth:
				if pol.rate < 0 || f.Rate < pol.rate {
					pol.rate = f.Rate
				}
			case toxics.Slicer:
				if pol.slicer == nil {
					pol.slicer = &f
				}
			case toxics.SlowClose:
				pol.slowClose += f.Delay
			case toxics.Corrupt:
				pol.corrupt = append(pol.corrupt, f.Probability)
			case toxics.DataLimit:
				pol.limits = append(pol.limits, limitRule{id: af.id, bytes: f.Bytes})
			case toxics.Timeout, toxics.Blackhole:
				pol.drop = true
			case toxics.Loss:
				pol.loss = append(pol.loss, lossRule{id: af.id, f: f})
			case toxics.Targeted:
				pol.targeted = append(pol.targeted, af)
			default:
				continue
			}
			some = true
		}
		if !some {
			pol = nil
		}
		ep.pol[i].Store(pol)
	}
}

func (ep *Endpoint) applyNode(f toxics.NodeFault) (func(context.Context) error, error) {
	ep.mu.Lock()
	if ep.closed {
		ep.mu.Unlock()
		return nil, fmt.Errorf("sim: endpoint %q: apply %s: %w", ep.name, f, ErrNetworkClosed)
	}
	if ep.nodeFault != nil {
		held := ep.nodeFault.fault
		ep.mu.Unlock()
		return nil, fmt.Errorf("sim: endpoint %q: cannot apply %s while %s holds (one node fault at a time)", ep.name, f, held)
	}
	ep.nextID++
	af := &activeFault{id: ep.nextID, fault: f}
	var cut []*pair
	mode := severFin
	var events []nodeEvent
	switch f.(type) {
	case toxics.Pause:
		af.pause = make(chan struct{})
		ep.gate.Store(&af.pause)
		ep.nodeFault = af
	case toxics.Stop:
		ep.stopped, ep.nodeFault = true, af
		cut, events = ep.pairsLocked(), []nodeEvent{nodeStopped}
	case toxics.Crash:
		ep.stopped, ep.nodeFault = true, af
		cut, mode, events = ep.pairsLocked(), severResetBoth, []nodeEvent{nodeCrashed}
	case toxics.Restart:
		af.reverted = true
		cut, events = ep.pairsLocked(), []nodeEvent{nodeStopped, nodeStarted}
	}
	watchers := append([]func(nodeEvent){}, ep.watchers...)
	ep.mu.Unlock()
	ep.sever(cut, mode)
	for _, ev := range events {
		for _, w := range watchers {
			w(ev)
		}
	}
	return func(context.Context) error { ep.revertNode(af); return nil }, nil
}

func (ep *Endpoint) revertNode(af *activeFault) {
	ep.mu.Lock()
	if af.reverted {
		ep.mu.Unlock()
		return
	}
	af.reverted = true
	if ep.nodeFault == af {
		ep.nodeFault = nil
	}
	var events []nodeEvent
	switch af.fault.(type) {
	case toxics.Pause:
		ep.gate.Store(nil)
		close(af.pause)
	case toxics.Stop, toxics.Crash:
		ep.stopped = false
		events = []nodeEvent{nodeStarted}
	}
	watchers := append([]func(nodeEvent){}, ep.watchers...)
	ep.mu.Unlock()
	for _, ev := range events {
		for _, w := range watchers {
			w(ev)
		}
	}
}

// watch registers f to be told of node events (fakes that keep state).
func (ep *Endpoint) watch(f func(nodeEvent)) {
	ep.mu.Lock()
	ep.watchers = append(ep.watchers, f)
	ep.mu.Unlock()
}

// pairsLocked returns every live connection, including those waiting in
// the backlog.
func (ep *Endpoint) pairsLocked() []*pair {
	out := make([]*pair, 0, len(ep.pairs))
	for pr := range ep.pairs {
		out = append(out, pr)
	}
	return out
}

func (ep *Endpoint) removePair(pr *pair) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if _, ok := ep.pairs[pr]; !ok {
		return
	}
	delete(ep.pairs, pr)
	for _, af := range ep.faults {
		if t, ok := af.timers[pr]; ok {
			t.Stop()
			delete(af.timers, pr)
		}
	}
	if ln := ep.ln; ln != nil {
		for i, c := range ln.backlog {
			if c.pair == pr {
				ln.backlog = append(ln.backlog[:i], ln.backlog[i+1:]...)
				break
			}
		}
	}
	ep.dropHeldLocked(pr)
}

func (ep *Endpoint) newPair(seq uint64, client, server addr) *pair {
	pr := &pair{ep: ep, seq: seq}
	seed := uint64(ep.n.seed)
	mix := ep.nameHash ^ splitmix(seq)
	pr.up = &pipe{ep: ep, dir: toxics.Upstream, seq: seq, seed: [2]uint64{seed, splitmix(mix ^ 1)}}
	pr.down = &pipe{ep: ep, dir: toxics.Downstream, seq: seq, seed: [2]uint64{seed, splitmix(mix ^ 2)}}
	pr.client = &conn{pair: pr, rd: pr.down, wr: pr.up, local: client, remote: server, done: make(chan struct{})}
	pr.server = &conn{pair: pr, server: true, rd: pr.up, wr: pr.down, local: server, remote: client, done: make(chan struct{})}
	pr.open.Store(2)
	return pr
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func (ep *Endpoint) dial(address string) (net.Conn, error) {
	local := ep.n.clientAddr()
	ep.mu.Lock()
	if ep.closed {
		ep.mu.Unlock()
		return nil, ErrNetworkClosed
	}
	if ep.down > 0 || ep.stopped || ep.ln == nil {
		ep.mu.Unlock()
		ep.refused.Add(1)
		return nil, errRefused()
	}
	ep.seq++
	pr := ep.newPair(ep.seq, local, addr(address))
	ep.accepted.Add(1)
	if ep.reset > 0 || ep.resetPickedLocked(pr) || ep.limitResetsLocked() {
		ep.mu.Unlock()
		ep.severNew(pr, severResetNew)
		return pr.client, nil
	}
	ep.pairs[pr] = struct{}{}
	closeNow := false
	for _, af := range ep.faults {
		if f, ok := af.fault.(toxics.Timeout); ok {
			if f.After == 0 {
				closeNow = true
			} else {
				af.timers[pr] = closeAfter(pr, af.id, f.After)
			}
		}
	}
	closeNow = ep.targetedTimeoutsLocked(pr) || closeNow
	if closeNow {
		ep.mu.Unlock()
		ep.severNew(pr, severFin)
		return pr.client, nil
	}
	if ep.holdLocked(pr.server) {
		ep.mu.Unlock()
		return pr.client, nil
	}
	ep.ln.backlog = append(ep.ln.backlog, pr.server)
	ep.ln.notifyLocked()
	ep.mu.Unlock()
	return pr.client, nil
}

func (ep *Endpoint) listen() (net.Listener, error) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.closed {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: addr(ep.name), Err: ErrNetworkClosed}
	}
	if ep.ln != nil {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: addr(ep.name), Err: errInUse()}
	}
	ep.ln = &listener{ep: ep, a: addr(ep.name), done: make(chan struct{})}
	return ep.ln, nil
}

// shutdown closes everything on the endpoint for Network.Close.
func (ep *Endpoint) shutdown() {
	ep.mu.Lock()
	ep.closed = true
	var backlog []*conn
	if ln := ep.ln; ln != nil {
		backlog = ln.closeLocked()
	}
	for _, af := range ep.faults {
		for _, t := range af.timers {
			t.Stop()
		}
		af.timers = nil
	}
	if af := ep.nodeFault; af != nil && af.pause != nil {
		ep.gate.Store(nil)
		close(af.pause)
		af.pause = nil
	}
	cut := ep.pairsLocked()
	ep.connGate.Broadcast()
	ep.mu.Unlock()
	for _, c := range backlog {
		c.pair.sever(severResetClient)
	}
	for _, pr := range cut {
		pr.sever(severFin)
	}
}

// listener is the net.Listener of an endpoint.
type listener struct {
	ep      *Endpoint
	a       addr
	backlog []*conn // guarded by ep.mu
	sig     chan struct{}
	done    chan struct{}
	closed  bool
}

func (l *listener) notifyLocked() {
	if l.sig != nil {
		close(l.sig)
		l.sig = nil
	}
}

// Accept waits for the next connection. While the endpoint's node is
// paused it accepts nothing. When a Run orders the network's events, each
// connection is accepted in its own turn, so that what the server does
// with one has come to rest before the next is accepted.
func (l *listener) Accept() (net.Conn, error) {
	var turned *conn
	for {
		if g := l.ep.pauseGate(); g != nil {
			select {
			case <-g:
			case <-l.done:
			}
		}
		l.ep.mu.Lock()
		if l.closed {
			l.ep.mu.Unlock()
			return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.a, Err: net.ErrClosed}
		}
		if l.ep.pauseGate() != nil {
			l.ep.mu.Unlock()
			continue
		}
		if len(l.backlog) > 0 {
			c := l.backlog[0]
			if ts := l.ep.n.turns.Load(); ts != nil && turned != c {
				l.ep.mu.Unlock()
				ts.wait(time.Now(), turnKey{class: turnConn, a: l.ep.nameHash, b: c.pair.seq, c: roleAccept}, l.done)
				turned = c
				continue
			}
			l.backlog[0] = nil
			l.backlog = l.backlog[1:]
			l.ep.mu.Unlock()
			return c, nil
		}
		if l.sig == nil {
			l.sig = make(chan struct{})
		}
		sig := l.sig
		l.ep.mu.Unlock()
		select {
		case <-sig:
		case <-l.done:
		}
	}
}

// Close stops listening: dials are refused, connections waiting in the
// backlog are reset; accepted connections stay open.
func (l *listener) Close() error {
	l.ep.mu.Lock()
	if l.closed {
		l.ep.mu.Unlock()
		return &net.OpError{Op: "close", Net: "tcp", Addr: l.a, Err: net.ErrClosed}
	}
	backlog := l.closeLocked()
	l.ep.mu.Unlock()
	for _, c := range backlog {
		c.pair.sever(severResetClient)
	}
	return nil
}

func (l *listener) closeLocked() []*conn {
	l.closed = true
	close(l.done)
	if l.ep.ln == l {
		l.ep.ln = nil
	}
	backlog := l.backlog
	l.backlog = nil
	return backlog
}

func (l *listener) Addr() net.Addr { return l.a }
