// Package connstate is the state of the faults that act where connections
// come in ([toxics.ConnectHang] and [toxics.ConnLimit]), shared by
// harness.Link and the simulated network's endpoints, which each add what
// they do with it (a listener's backlog, held connections).
package connstate

import (
	"slices"

	"github.com/shakedown/shakedown/toxics"
)

// Gate counts the active connect-time faults and connection limits, and
// wakes waiters when they change. It is not safe for concurrent use: its
// owner guards it with a lock of its own. The zero value has no fault.
type Gate struct {
	Handshakes int // active ConnectHang{}
	Holds      int // active ConnectHang{Accepted: true}

	limits     []int         // Max of each active ConnLimit, Hold or not
	holdLimits int           // how many of limits hold rather than reset
	changed    chan struct{} // closed and replaced when the gate changes
}

// Broadcast wakes everything waiting on the gate.
func (g *Gate) Broadcast() {
	if g.changed != nil {
		close(g.changed)
		g.changed = nil
	}
}

// Wait returns a channel closed at the next Broadcast.
func (g *Gate) Wait() <-chan struct{} {
	if g.changed == nil {
		g.changed = make(chan struct{})
	}
	return g.changed
}

// Limit returns the lowest active connection limit, whether one is
// active, and whether one of them holds new connections rather than
// resetting them.
func (g *Gate) Limit() (maxConns int, limited, hold bool) {
	if len(g.limits) == 0 {
		return 0, false, false
	}
	return slices.Min(g.limits), true, g.holdLimits > 0
}

// Apply counts f, a ConnectHang or a ConnLimit (other faults are ignored),
// and wakes the waiters.
func (g *Gate) Apply(f toxics.Fault) {
	switch f := f.(type) {
	case toxics.ConnectHang:
		if f.Accepted {
			g.Holds++
		} else {
			g.Handshakes++
		}
	case toxics.ConnLimit:
		g.limits = append(g.limits, f.Max)
		if f.Hold {
			g.holdLimits++
		}
	}
	g.Broadcast()
}

// Revert forgets f, applied before with Apply, and wakes the waiters.
func (g *Gate) Revert(f toxics.Fault) {
	switch f := f.(type) {
	case toxics.ConnectHang:
		if f.Accepted {
			g.Holds--
		} else {
			g.Handshakes--
		}
	case toxics.ConnLimit:
		if i := slices.Index(g.limits, f.Max); i >= 0 {
			g.limits = slices.Delete(g.limits, i, i+1)
		}
		if f.Hold {
			g.holdLimits--
		}
	}
	g.Broadcast()
}
