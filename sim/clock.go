package sim

import (
	"errors"
	"fmt"
	"time"

	"github.com/shakedown/shakedown/toxics"
)

// Clock faults ([toxics.ClockSkew], [toxics.ClockJump]) on an endpoint:
// see the package doc, "Clock faults".

// errClockSimOnly is why a target that is not simulated refuses a clock
// fault.
var errClockSimOnly = errors.New("clock faults are simulation-only (a simulated endpoint's clock, sim.Endpoint.Now): a real dependency's clock is not the test's to set")

// clockState is an endpoint's clock faults, guarded by the endpoint's mu;
// the offset they make is also in Endpoint.clockOff for Now.
type clockState struct {
	active  []*activeFault // clock faults applied and not reverted
	stepped time.Duration  // jumps reverted without Back
}

// Now returns the time on the endpoint's clock: the client's clock
// (time.Now, the bubble's under testing/synctest) plus the offset of its
// clock faults ([toxics.ClockSkew], [toxics.ClockJump]). It carries no
// monotonic reading. Only code that reads Now sees the faults: see the
// package doc, "Clock faults".
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
