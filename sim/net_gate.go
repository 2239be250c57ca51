package sim

import (
	"context"
	"slices"
	"time"

	"github.com/shakedown/shakedown/internal/connstate"
	"github.com/shakedown/shakedown/toxics"
)

// Connect-time faults and the connection limit on the simulated network,
// with the behaviour of harness.Link (see toxics.ConnectHang and
// toxics.ConnLimit): a connection the gate holds has completed its dial
// but waits outside the listener's backlog, so the server does not see it
// until the gate lets it through.

// simGate is an endpoint's state of those faults, guarded by the
// endpoint's mu.
type simGate struct {
	connstate.Gate         // active ConnectHang and ConnLimit faults
	held           []*conn // server sides waiting, first come first served
	tickets        uint64  // dials that have waited for a handshake hang
}

// waitHandshake holds a dial while a handshake hang lasts: the first dial
// goes into the backlog (of length 0, which takes one connection, as on
// Linux) and completes; the others wait for the revert, ctx or the
// network's close. When a Run orders the network's events, dials woken
// together go on one at a time, in the order they began to wait (dials
// themselves come in a fixed order).
func (ep *Endpoint) waitHandshake(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ep.mu.Lock()
	var ticket uint64
	for ep.connGate.Handshakes > 0 && len(ep.connGate.held) > 0 && !ep.closed {
		if ticket == 0 {
			ep.connGate.tickets++
			ticket = ep.connGate.tickets
		}
		wait := ep.connGate.Wait()
		ep.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
		if ts := ep.n.turns.Load(); ts != nil {
			// b 0 is no connection's (they count from 1).
			if !ts.wait(time.Now(), turnKey{class: turnConn, a: ep.nameHash, b: 0, c: ticket}, ctx.Done()) {
				return ctx.Err()
			}
		}
		ep.mu.Lock()
	}
	ep.mu.Unlock()
	return nil
}

// openLocked counts the connections through the endpoint: those not held.
func (ep *Endpoint) openLocked() int { return len(ep.pairs) - len(ep.connGate.held) }

// limitResetsLocked reports whether a connection limit without Hold is
// full, so that a new connection is reset. ep.mu must be held.
func (ep *Endpoint) limitResetsLocked() bool {
	maxConns, limited, hold := ep.connGate.Limit()
	return limited && !hold && ep.openLocked() >= maxConns
}

// holdLocked holds the new connection whose server side is c if the gate
// says so, and reports whether it did. ep.mu must be held, and c's pair
// must be in ep.pairs already.
func (ep *Endpoint) holdLocked(c *conn) bool {
	g := &ep.connGate
	maxConns, limited, _ := g.Limit()
	if g.Handshakes == 0 && g.Holds == 0 && len(g.held) == 0 && (!limited || ep.openLocked()-1 < maxConns) {
		return false
	}
	g.held = append(g.held, c)
	ep.admitHeldLocked()
	return true
}

// admitHeldLocked moves held connections into the listener's backlog, in
// order, while the gate lets them through. ep.mu must be held.
func (ep *Endpoint) admitHeldLocked() {
	g := &ep.connGate
	for len(g.held) > 0 && g.Handshakes == 0 && g.Holds == 0 && ep.ln != nil {
		maxConns, limited, _ := g.Limit()
		if limited && ep.openLocked() >= maxConns {
			break
		}
		c := g.held[0]
		g.held[0] = nil
		g.held = g.held[1:]
		ep.ln.backlog = append(ep.ln.backlog, c)
		ep.ln.notifyLocked()
	}
	g.Broadcast()
}

// dropHeldLocked forgets the held connection of pr, if any. ep.mu must be
// held.
func (ep *Endpoint) dropHeldLocked(pr *pair) {
	g := &ep.connGate
	g.held = slices.DeleteFunc(g.held, func(c *conn) bool { return c.pair == pr })
	ep.admitHeldLocked()
}

// applyGateLocked starts a ConnectHang or a ConnLimit. ep.mu must be held.
func (ep *Endpoint) applyGateLocked(f toxics.Fault) { ep.connGate.Apply(f) }

// revertGateLocked ends a ConnectHang or a ConnLimit and lets held
// connections through. ep.mu must be held.
func (ep *Endpoint) revertGateLocked(f toxics.Fault) {
	ep.connGate.Revert(f)
	ep.admitHeldLocked()
}
