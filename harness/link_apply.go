package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shakedown/shakedown/toxics"
)

// appliedFault is one successful Apply.
type appliedFault struct {
	id    uint64
	fault toxics.LinkFault
	slots []*slot                // the slots it arms, for faults carried by the pipeline
	pick  func(conn uint64) bool // a Targeted fault's selector; nil: every connection

	mu       sync.Mutex // held while reverting
	reverted bool
}

// faultSeed is the seed of the draws of one fault in one direction: from
// the Link's seed and the fault's place in the order of Apply calls.
func faultSeed(linkSeed int64, faultID uint64, dir toxics.Direction) uint64 {
	return seedMix(seedMix(uint64(linkSeed), faultID), uint64(dir))
}

// Apply validates f and starts it on live and new connections. The returned
// revert stops exactly that fault, at once, on live connections too; it is
// idempotent, and after the Link has closed it does nothing. Several faults
// may be active at once.
//
// A nil fault, a node fault or an invalid one returns an error naming the
// link and the fault (and, for an invalid one, the field), and nothing of it
// reaches Toxiproxy.
//
// Apply and revert do not wait for connections: a fault carried by the
// pipeline is a configuration its stubs switch to as soon as they are
// woken. Only reverting Down may wait, for the Link's port (see ctx).
func (l *Link) Apply(ctx context.Context, f toxics.Fault) (revert func(context.Context) error, err error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if f == nil {
		return nil, fmt.Errorf("harness: link %q: apply: the fault is nil", l.name)
	}
	lf, ok := f.(toxics.LinkFault)
	if !ok {
		return nil, fmt.Errorf("harness: link %q: apply %s: %s is a node fault; a link takes only link faults (%s)",
			l.name, f, f.Kind(), linkKindList(toxics.LinkKinds()))
	}
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("harness: link %q: apply %s: %w", l.name, f, err)
	}
	if err := l.checkProtoFault(f); err != nil {
		return nil, err
	}
	if err := l.checkHTTPFault(f); err != nil {
		return nil, fmt.Errorf("harness: link %q: apply %s: %w", l.name, f, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("harness: link %q: apply %s: %w", l.name, f, err)
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, fmt.Errorf("harness: link %q: apply %s: the link is closed", l.name, f)
	}
	a := &appliedFault{id: l.nextFault, fault: lf}
	l.nextFault++
	a.pick = l.pickerLocked(a)
	l.mu.Unlock()

	switch lf.(type) {
	case toxics.Reset:
		err = l.startReset(a)
	case toxics.Down:
		err = l.startDown(a)
	case toxics.ConnectHang, toxics.ConnLimit:
		err = l.startGate(a)
	case toxics.Targeted:
		if isTargetedReset(lf) {
			err = l.startTargetedReset(a)
		} else if err = l.arm(a); err == nil {
			l.handOver(toxics.DirectionOf(lf))
		}
	default:
		if err = l.arm(a); err == nil {
			l.handOver(toxics.DirectionOf(lf))
			if lf.Kind().Protocol() != "" {
				l.startProto(a)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("harness: link %q: apply %s: %w", l.name, f, err)
	}
	l.log.Info("fault applied", "fault", f.String(), "fault_id", a.id)
	return func(ctx context.Context) error { return l.revert(ctx, a) }, nil
}

func linkKindList(ks []toxics.Kind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

var errLinkClosed = errors.New("the link is closed")

// startReset aborts every live connection and makes the accept loop reset
// new ones until the fault is reverted.
func (l *Link) startReset(a *appliedFault) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return errLinkClosed
	}
	l.resets++
	l.faults = append(l.faults, a)
	conns := l.connList()
	l.mu.Unlock()
	for _, c := range conns {
		c.close(true)
	}
	return nil
}

// startDown closes the listener (new dials are refused by the kernel) and
// every live connection.
func (l *Link) startDown(a *appliedFault) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return errLinkClosed
	}
	l.downs++
	ln := l.ln
	l.ln = nil
	l.faults = append(l.faults, a)
	conns := l.connList()
	l.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	for _, c := range conns {
		c.close(false)
	}
	return nil
}

// connList returns the live connections; l.mu must be held.
func (l *Link) connList() []*linkConn {
	out := make([]*linkConn, 0, len(l.conns))
	for c := range l.conns {
		out = append(out, c)
	}
	return out
}

// arm arms one slot per direction of a's fault.
func (l *Link) arm(a *appliedFault) error {
	l.faultMu.Lock()
	defer l.faultMu.Unlock()
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return errLinkClosed
	}
	var slots []*slot
	for _, d := range []toxics.Direction{toxics.Upstream, toxics.Downstream} {
		if !toxics.DirectionOf(a.fault).Has(d) {
			continue
		}
		s, err := l.freeSlot(d)
		if err != nil {
			return err
		}
		s.owner = a // taken, so the other direction cannot pick it
		slots = append(slots, s)
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		for _, s := range slots {
			s.owner = nil
		}
		return errLinkClosed
	}
	a.slots = slots
	l.faults = append(l.faults, a)
	l.mu.Unlock()
	l.http.add(l, a)
	began := time.Now()
	for _, s := range slots {
		s.set(slotConfigOf(a, slotConfig{fault: a.fault, seed: faultSeed(l.seed, a.id, s.dir), armedAt: began}))
		l.armed[s.dir].Add(1)
	}
	return nil
}

// freeSlot returns the first disarmed slot of direction d, adding a slot
// to the chain if every slot is armed. So a chain is only as long as the
// most faults ever active at once in its direction; the price is that
// faults act in slot order, not always in the order they were applied,
// which only matters for the rare pairs that do not commute (a slicer and
// a latency, say). l.faultMu must be held.
func (l *Link) freeSlot(d toxics.Direction) (*slot, error) {
	for _, s := range l.slots[d] {
		if s.owner == nil {
			return s, nil
		}
	}
	return l.addSlot(d)
}

// addSlot appends a slot to the chain of direction d. Toxiproxy adds it to
// every live pipeline by interrupting the pipeline's last stub, which is a
// slot and listens for interrupts, so this does not wait for connections.
// l.faultMu must be held.
func (l *Link) addSlot(d toxics.Direction) (*slot, error) {
	l.startMu.Lock()
	defer l.startMu.Unlock()
	key := slotKey{link: l.id, slot: l.nextSlot}
	body, err := slotJSON(key, d)
	if err != nil {
		return nil, err
	}
	s := newSlot(key, d)
	slotRegistry.Store(key, s)
	if _, err := l.proxy.Toxics.AddToxicJson(bytes.NewReader(body)); err != nil {
		slotRegistry.Delete(key)
		return nil, fmt.Errorf("add slot %d (%s) to the toxic pipeline: %w", key.slot, d, err)
	}
	l.nextSlot++
	l.slots[d] = append(l.slots[d], s)
	return s, nil
}

// revert undoes a; see Apply. Only reverting Down can fail (the port stays
// taken until ctx ends), and then the fault stays active and revert may be
// called again.
func (l *Link) revert(ctx context.Context, a *appliedFault) error {
	if ctx == nil {
		ctx = context.Background()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.reverted {
		return nil
	}
	var err error
	switch a.fault.(type) {
	case toxics.Reset:
		l.mu.Lock()
		if !l.closed {
			l.resets--
		}
		l.dropFault(a)
		l.mu.Unlock()
	case toxics.Down:
		err = l.undoDown(ctx, a)
	case toxics.ConnectHang, toxics.ConnLimit:
		l.stopGate(a)
	default:
		if isTargetedReset(a.fault) {
			l.mu.Lock()
			l.gate.resets = slices.DeleteFunc(l.gate.resets, func(x *appliedFault) bool { return x == a })
			l.dropFault(a)
			l.mu.Unlock()
			break
		}
		if a.fault.Kind().Protocol() != "" {
			l.stopProto(a)
		}
		l.http.remove(a)
		l.faultMu.Lock()
		for _, s := range a.slots {
			if s.owner == a {
				s.set(nil)
				s.owner = nil
				if l.armed[s.dir].Add(-1) == 0 {
					l.handBack(s.dir)
				}
			}
		}
		l.faultMu.Unlock()
		l.mu.Lock()
		l.dropFault(a)
		l.mu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("harness: link %q: revert %s: %w", l.name, a.fault, err)
	}
	a.reverted = true
	l.log.InfoContext(ctx, "fault reverted", "fault", a.fault.String(), "fault_id", a.id)
	return nil
}

// undoDown listens again on the Link's address once no Down fault is left.
// Another socket may hold the port for a moment, so it retries until ctx
// ends.
func (l *Link) undoDown(ctx context.Context, a *appliedFault) error {
	backoff := time.Millisecond
	for {
		l.mu.Lock()
		if l.closed {
			l.dropFault(a)
			l.mu.Unlock()
			return nil
		}
		if l.downs > 1 {
			l.downs--
			l.dropFault(a)
			l.mu.Unlock()
			return nil
		}
		ln, err := net.Listen("tcp", l.addr)
		if err == nil {
			l.downs--
			l.ln = ln
			l.dropFault(a)
			l.wg.Add(1)
			go l.accept(ln)
			l.mu.Unlock()
			return nil
		}
		l.mu.Unlock()
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-l.ctx.Done(): // closed: the next round returns
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("listen again on %s: %w (gave up: %w)", l.addr, err, ctx.Err())
		}
		backoff = min(2*backoff, 50*time.Millisecond)
	}
}

// dropFault removes a from the active list; l.mu must be held.
func (l *Link) dropFault(a *appliedFault) {
	if i := slices.Index(l.faults, a); i >= 0 {
		l.faults = slices.Delete(l.faults, i, i+1)
	}
}

// Clear reverts every active fault, newest first, and returns every error
// it met.
func (l *Link) Clear(ctx context.Context) error {
	l.mu.Lock()
	fs := slices.Clone(l.faults)
	l.mu.Unlock()
	var errs []error
	for i := len(fs) - 1; i >= 0; i-- {
		if err := l.revert(ctx, fs[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
