package harness

import (
	"context"
	"errors"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/Shopify/toxiproxy/v2/stream"
	tpx "github.com/Shopify/toxiproxy/v2/toxics"

	"github.com/shakedown/shakedown/internal/connstate"
	"github.com/shakedown/shakedown/toxics"
)

// Connection-level faults: ConnectHang, ConnLimit, and Targeted
//
// ConnectHang and ConnLimit act where connections come in, never on the
// bytes, so they cost nothing on the data path. Their state is the Link's
// connGate:
//   - ConnectHang{} (handshake): the listener's backlog is set to 0 with a
//     second listen(2) and the accept loop stops accepting (a read deadline
//     in the past wakes it), so the kernel's accept queue fills (Linux takes
//     one connection into a queue of length 0) and later SYNs are dropped:
//     dials hang in the handshake. The revert restores the backlog and
//     accepts again; the clients' next SYN retransmission completes them.
//   - ConnectHang{Accepted: true}, and ConnLimit{Hold: true} past its
//     limit: the Link accepts the client and waits before it dials the
//     upstream, first come first served. The client's dial completed and
//     its bytes wait in the socket, as in a full backlog.
//   - ConnLimit past its limit without Hold: the client is reset at once.
//
// Targeted faults act on the connections their selector picks. A Reset
// resets the picked live connections and, while it lasts, each new one it
// picks (in serve, once the connection has its number). A fault carried by
// the slots arms the slots as usual, and each slot's stub passes the data
// of a connection the selector does not pick straight on; for that a stub
// must know its connection. Toxiproxy tells a toxic nothing of the
// connection, so the Link tells it: a pipeline is started (StartLink, which
// makes the stubs' states at once) under Link.startMu with its stint
// published in startingStint, where NewState finds it; each stub then
// registers its output channel. A slot added later to a live pipeline (by
// AddToxicJson, under startMu too, so no stint is published) is the new
// last stub, whose output is the pipeline's own output channel, which the
// former last stub registered: it finds its stint there.

// stint is one run of a connection's direction on a pipeline.
type stint struct {
	conn uint64 // the connection's number

	mu    sync.Mutex
	chans []chan<- *stream.StreamChunk // registered in stintWires
}

var (
	startingStint sync.Map // Link id → *stint whose pipeline is being started
	stintWires    sync.Map // a stub's output channel → *stint
)

// startStint starts a pipeline for d with start, publishing its stint for
// the slots' NewState; the returned function forgets it once the pipeline
// has ended.
func (l *Link) startStint(d *linkDir, start func()) (end func()) {
	s := &stint{conn: d.conn.id}
	l.startMu.Lock()
	startingStint.Store(l.id, s)
	start()
	startingStint.Delete(l.id)
	l.startMu.Unlock()
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, ch := range s.chans {
			stintWires.CompareAndDelete(ch, s)
		}
		s.chans = nil
	}
}

// newStintOf returns the stint whose pipeline is being started on the
// Link with the given id, or nil (a slot being added to live pipelines).
func newStintOf(link uint64) *stint {
	if s, ok := startingStint.Load(link); ok {
		return s.(*stint)
	}
	return nil
}

// bindStint ties a stub's state to its connection: a stub made with its
// pipeline registers its output channel; one added later finds the stint
// that registered its output (see above). Without a stint (which would be
// a bug) connID stays 0, which no selector picks.
func (st *slotState) bindStint(stub *tpx.ToxicStub) {
	if st.stint == nil {
		if s, ok := stintWires.Load(stub.Output); ok {
			st.stint = s.(*stint)
		}
	} else {
		s := st.stint
		s.mu.Lock()
		if _, loaded := stintWires.LoadOrStore(stub.Output, s); !loaded {
			s.chans = append(s.chans, stub.Output)
		}
		s.mu.Unlock()
	}
	if st.stint != nil {
		st.connID = st.stint.conn
	}
}

// picks reports whether the slot's fault acts on the stub's connection.
func (st *slotState) picks() bool {
	return st.cfg == nil || st.cfg.pick == nil || st.cfg.pick(st.connID)
}

// pickerLocked returns what says whether a's fault acts on a connection,
// by its number, or nil for a fault that is not targeted. l.mu must be
// held: connections numbered from here on opened after the fault began.
func (l *Link) pickerLocked(a *appliedFault) func(uint64) bool {
	t, ok := a.fault.(toxics.Targeted)
	if !ok {
		return nil
	}
	first := l.nextConn + 1
	seed := faultSeed(l.seed, a.id, toxics.Both)
	return func(id uint64) bool {
		if id == 0 {
			return false
		}
		before := id < first
		var nth uint64
		if !before {
			nth = id - first + 1
		}
		u := float64(seedMix(seed, id)>>11) / (1 << 53)
		return t.Conns.Picks(before, nth, u)
	}
}

// slotConfigOf is a's fault as the slots of direction dir carry it out:
// a Targeted fault's inner fault, acting on the connections it picks.
func slotConfigOf(a *appliedFault, cfg slotConfig) *slotConfig {
	inner, _ := toxics.Untarget(a.fault)
	cfg.fault = inner.(toxics.LinkFault)
	cfg.pick = a.pick
	return &cfg
}

// isTargetedReset reports whether f is a Reset aimed by a selector.
func isTargetedReset(f toxics.Fault) bool {
	t, ok := f.(toxics.Targeted)
	if !ok {
		return false
	}
	_, ok = t.Fault.(toxics.Reset)
	return ok
}

// startTargetedReset resets the live connections a picks, and makes serve
// reset each new one it picks until it is reverted.
func (l *Link) startTargetedReset(a *appliedFault) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return errLinkClosed
	}
	l.gate.resets = append(l.gate.resets, a)
	l.faults = append(l.faults, a)
	var hit []*linkConn
	for c := range l.conns {
		if a.pick(c.id) {
			hit = append(hit, c)
		}
	}
	l.mu.Unlock()
	for _, c := range hit {
		c.close(true)
	}
	return nil
}

// resetPickedLocked reports whether an active targeted Reset picks the
// connection numbered id; if so the caller resets it. l.mu must be held.
func (l *Link) resetPickedLocked(id uint64) bool {
	for _, a := range l.gate.resets {
		if a.pick(id) {
			return true
		}
	}
	return false
}

// connGate is the state of the faults that act where connections come in;
// its fields other than resets are guarded by mu, resets by Link.mu.
type connGate struct {
	resets []*appliedFault // targeted resets

	mu             sync.Mutex
	connstate.Gate                 // active ConnectHang and ConnLimit faults
	pending        int             // connections admitted, upstream not dialled yet
	queue          []chan struct{} // connections waiting, first come first served
	backlogLn      net.Listener    // the listener whose backlog was set to 0
}

// startGate applies a ConnectHang or a ConnLimit.
func (l *Link) startGate(a *appliedFault) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return errLinkClosed
	}
	l.faults = append(l.faults, a)
	ln := l.ln
	l.mu.Unlock()

	g := &l.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	if f, ok := a.fault.(toxics.ConnectHang); ok && !f.Accepted && g.Handshakes == 0 && ln != nil {
		// Stop accepting: the accept loop wakes, sees the hang and
		// waits in holdAccept; the backlog is 0 from now on.
		_ = setBacklog(ln, 0)
		g.backlogLn = ln
		_ = ln.(*net.TCPListener).SetDeadline(aLongTimeAgo)
	}
	g.Apply(a.fault)
	return nil
}

// stopGate reverts a ConnectHang or a ConnLimit.
func (l *Link) stopGate(a *appliedFault) {
	g := &l.gate
	g.mu.Lock()
	g.Revert(a.fault)
	g.mu.Unlock()
	l.mu.Lock()
	l.dropFault(a)
	l.mu.Unlock()
}

// acceptHeld reports whether an accept error is the gate's doing (the
// deadline startGate set): then the loop goes on, and holdAccept waits.
func (l *Link) acceptHeld(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// holdAccept waits, before each accept, while a handshake hang is active,
// then restores the listener's backlog. It reports false once the Link is
// closing.
func (l *Link) holdAccept(ln net.Listener) bool {
	g := &l.gate
	g.mu.Lock()
	held := false
	for g.Handshakes > 0 {
		if !held && g.backlogLn != ln {
			// A listener made while the hang lasts (after Down).
			_ = setBacklog(ln, 0)
			g.backlogLn = ln
		}
		held = true
		wait := g.Wait()
		g.mu.Unlock()
		select {
		case <-wait:
		case <-l.ctx.Done():
			return false
		}
		g.mu.Lock()
	}
	if g.backlogLn == ln {
		_ = setBacklog(ln, -1)
		g.backlogLn = nil
		held = true
	}
	if held {
		// Under g.mu, so that a hang applied again meanwhile keeps its
		// deadline.
		_ = ln.(*net.TCPListener).SetDeadline(noDeadline)
	}
	g.mu.Unlock()
	return true
}

// admit waits until the gate lets a new client through to the upstream.
// It reports false if the client was turned away (reset: a ConnLimit
// without Hold is full) or the Link is closing; done must be called once
// the connection is in the table or has failed.
func (l *Link) admit(ctx context.Context, client *net.TCPConn) (done func(), ok bool) {
	g := &l.gate
	g.mu.Lock()
	if _, limited, _ := g.Limit(); g.Holds == 0 && !limited && len(g.queue) == 0 {
		// Nothing at the gate: no queueing.
		g.pending++
		g.mu.Unlock()
		return l.admitted, true
	}
	me := make(chan struct{})
	g.queue = append(g.queue, me)
	defer func() {
		if i := slices.Index(g.queue, me); i >= 0 {
			g.queue = slices.Delete(g.queue, i, i+1)
			g.Broadcast()
		}
		g.mu.Unlock()
	}()
	for {
		maxConns, limited, hold := g.Limit()
		open := int(l.active.Load()) + g.pending
		switch {
		case g.queue[0] != me || g.Holds > 0:
		case limited && open >= maxConns && !hold:
			l.refused.Add(1)
			resetTCP(client)
			l.log.Debug("connection reset: connection limit", "client", client.RemoteAddr().String(), "max", maxConns)
			return nil, false
		case limited && open >= maxConns:
		default:
			g.pending++
			return l.admitted, true
		}
		wait := g.Wait()
		g.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			g.mu.Lock()
			_ = client.Close()
			return nil, false
		}
		g.mu.Lock()
	}
}

// admitted ends the admission of a connection: it is in the table (and
// counted as active) or has failed.
func (l *Link) admitted() {
	g := &l.gate
	g.mu.Lock()
	g.pending--
	if len(g.queue) > 0 {
		g.Broadcast()
	}
	g.mu.Unlock()
}

// noDeadline clears a deadline.
var noDeadline time.Time

// connGone wakes the connections the gate holds: one has closed.
func (l *Link) connGone() {
	g := &l.gate
	g.mu.Lock()
	if len(g.queue) > 0 {
		g.Broadcast()
	}
	g.mu.Unlock()
}
