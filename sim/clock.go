package sim

import (
	"errors"
	"fmt"
	"time"

	"github.com/shakedown/shakedown/toxics"
)

// Clock faults ([toxics.ClockSkew], [toxics.ClockJump]) on an endpoint.
//
// An endpoint has a clock of its own, read with [Endpoint.Now]: the
// client's clock (time.Now, the bubble's virtual clock under
// testing/synctest) plus an offset. A skew adds its Offset while it
// lasts; a jump adds its By from its start, and keeps it after its revert
// unless Back. [Endpoint.Clear] sets the offset back to 0. [FakeKV]
// computes expiry on this clock, and a [FakeHTTP] handler (or any server
// behind [Network.Listen], through [Network.Endpoint]) reads it with Now.
//
// What cannot be done, since synctest gives a bubble one clock:
//   - Code that calls time.Now, time.Since, time.After or a timer directly
//     reads the bubble's clock, whatever the faults: only code that asks
//     the endpoint (Now) sees the skew. A user's server must take its
//     clock from the endpoint to be skewed.
//   - The Go runtime's timers and deadlines (net.Conn deadlines, context
//     timeouts, time.Sleep) run on the bubble's clock; a skew never fires
//     a timer early or late, and a server's own timers cannot be skewed.
//   - Monotonic readings cannot jump: Now returns a wall-clock reading
//     (no monotonic part), so comparisons of its results see the steps,
//     as a program that compares wall times does.
//   - Clock rates: an offset is a step, not a drift; the endpoint's clock
//     runs at the client's rate.
//
// The kinds are simulation-only: a harness target (a real dependency)
// does not support them, and [Schedule.Validate] refuses a step that aims
// one at it, saying so.

// errClockSimOnly is why a target that is not simulated refuses a clock
// fault.
var errClockSimOnly = errors.New("clock faults are simulation-only (a simulated endpoint's clock, sim.Endpoint.Now): a real dependency's clock is not the test's to set")

// clockState is an endpoint's clock faults, guarded by the endpoint's mu;
// the offset they make is also in Endpoint.clockOff for Now.
type clockState struct {
	active  []*activeFault // clock faults applied and not reverted
	stepped time.Duration  // jumps reverted without Back
}

// Now returns the time on the endpoint's clock: the client's clock plus
// the offset of its clock faults (see [toxics.ClockSkew] and
// [toxics.ClockJump]). It carries no monotonic reading.
func (ep *Endpoint) Now() time.Time {
	return time.Now().Add(time.Duration(ep.clockOff.Load())).Round(0)
}

// setClockLocked publishes the offset of the active clock faults. ep.mu
// must be held.
func (ep *Endpoint) setClockLocked() {
	off := ep.clock.stepped
	for _, af := range ep.clock.active {
		d, _ := toxics.ClockOffset(af.fault)
		off += d
	}
	ep.clockOff.Store(int64(off))
}

func (ep *Endpoint) applyClock(f toxics.Fault) (func(), error) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.closed {
		return nil, fmt.Errorf("sim: endpoint %q: apply %s: %w", ep.name, f, ErrNetworkClosed)
	}
	ep.nextID++
	af := &activeFault{id: ep.nextID, fault: f}
	ep.clock.active = append(ep.clock.active, af)
	ep.setClockLocked()
	return func() { ep.revertClock(af) }, nil
}

func (ep *Endpoint) revertClock(af *activeFault) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if af.reverted {
		return
	}
	af.reverted = true
	for i, x := range ep.clock.active {
		if x == af {
			ep.clock.active = append(ep.clock.active[:i:i], ep.clock.active[i+1:]...)
			break
		}
	}
	if j, ok := af.fault.(toxics.ClockJump); ok && !j.Back {
		ep.clock.stepped += j.By
	}
	ep.setClockLocked()
}

// clearClock reverts every clock fault and sets the clock back to the
// client's.
func (ep *Endpoint) clearClock() {
	ep.mu.Lock()
	afs := append([]*activeFault(nil), ep.clock.active...)
	ep.mu.Unlock()
	for _, af := range afs {
		ep.revertClock(af)
	}
	ep.mu.Lock()
	ep.clock.stepped = 0
	ep.setClockLocked()
	ep.mu.Unlock()
}
