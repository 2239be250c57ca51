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

	toxiproxy "github.com/Shopify/toxiproxy/v2"

	"github.com/shakedown/shakedown/toxics"
)

// appliedFault is one successful Apply.
type appliedFault struct {
	id    uint64
	fault toxics.LinkFault
	names []string // its toxics in the collection, for toxic-backed faults

	mu        sync.Mutex
	reverted  bool
	revertRun *revertRun // the revert in flight, if any
}

// revertRun is one run of a revert; err is set before done is closed.
type revertRun struct {
	done chan struct{}
	err  error
}

// linkRelistenFor bounds how long reverting a Down fault keeps trying to listen
// on the Link's address again (another socket may hold the port briefly).
const linkRelistenFor = 5 * time.Second

// Apply validates f and starts it on live and new connections. The returned
// revert stops exactly that fault, at once, on live connections too; it is
// idempotent, and after the Link has closed it does nothing. Several faults
// may be active at once.
//
// A nil fault, a node fault or an invalid one returns an error naming the
// link and the fault (and, for an invalid one, the field), and nothing of it
// reaches Toxiproxy. If ctx ends before the fault is in place, Apply returns
// an error and the fault is undone as soon as it lands.
func (l *Link) Apply(ctx context.Context, f toxics.Fault) (revert func(context.Context) error, err error) {
	if l == nil {
		return nil, errors.New("harness: Apply on a nil *Link")
	}
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
	l.mu.Unlock()

	switch lf.(type) {
	case toxics.Reset:
		err = l.startReset(a)
	case toxics.Down:
		err = l.startDown(a)
	default:
		err = l.startToxics(ctx, a)
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

// connList returns the live connections; l.mu must be heldChunk.
func (l *Link) connList() []*linkConn {
	out := make([]*linkConn, 0, len(l.conns))
	for c := range l.conns {
		out = append(out, c)
	}
	return out
}

// goOp runs fn in the background unless the Link is closed; Close waits for
// it before tearing the pipelines down.
func (l *Link) goOp(fn func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.ops.Add(1)
	go func() {
		defer l.ops.Done()
		fn()
	}()
	return true
}

// startToxics adds the fault's toxics. Adding a toxic waits for every live
// pipeline of its direction to take it, which can take as long as a blocked
// client write; so it runs in the background and Apply stops waiting when
// ctx ends, in which case the toxics are removed as soon as they are added.
func (l *Link) startToxics(ctx context.Context, a *appliedFault) error {
	specs, err := toxicsFor(a.fault, l.id, a.id, seedMix(uint64(l.seed), a.id))
	if err != nil {
		return err
	}
	bodies := make([][]byte, len(specs))
	names := make([]string, len(specs))
	for i, s := range specs {
		if bodies[i], err = s.encode(); err != nil {
			return err
		}
		names[i] = s.Name
	}

	var (
		mu        sync.Mutex
		abandoned bool
		finished  bool
		res       = make(chan error, 1)
	)
	ok := l.goOp(func() {
		err := l.addToxics(bodies, names)
		mu.Lock()
		if abandoned {
			mu.Unlock()
			if err == nil {
				if err := l.removeToxics(names); err != nil {
					l.log.Warn("removing the toxics of an abandoned apply failed", "fault", a.fault.String(), "err", err)
				}
			}
			return
		}
		finished = true
		if err == nil {
			a.names = names
			l.mu.Lock()
			l.faults = append(l.faults, a)
			l.mu.Unlock()
		}
		mu.Unlock()
		res <- err
	})
	if !ok {
		return errLinkClosed
	}
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		mu.Lock()
		if finished {
			mu.Unlock()
			return <-res
		}
		abandoned = true
		mu.Unlock()
		return fmt.Errorf("gave up waiting for live connections to take the fault (it is undone once they do): %w", ctx.Err())
	}
}

// addToxics adds the toxics in order; on failure it removes those it added.
func (l *Link) addToxics(bodies [][]byte, names []string) error {
	for i, b := range bodies {
		if _, err := l.proxy.Toxics.AddToxicJson(bytes.NewReader(b)); err != nil {
			if rerr := l.removeToxics(names[:i]); rerr != nil {
				return errors.Join(fmt.Errorf("add toxic %s: %w", names[i], err), rerr)
			}
			return fmt.Errorf("add toxic %s: %w", names[i], err)
		}
	}
	return nil
}

// removeToxics removes the named toxics; one that is gone already is fine.
func (l *Link) removeToxics(names []string) error {
	var errs []error
	for _, n := range names {
		err := l.proxy.Toxics.RemoveToxic(toxiproxyCtx(context.Background()), n)
		if err != nil && !errors.Is(err, toxiproxy.ErrToxicNotFound) {
			errs = append(errs, fmt.Errorf("remove toxic %s: %w", n, err))
		}
	}
	return errors.Join(errs...)
}

// revert undoes a; see Apply. A revert that ctx gave up on keeps running,
// and the next call waits for the same run.
func (l *Link) revert(ctx context.Context, a *appliedFault) error {
	if ctx == nil {
		ctx = context.Background()
	}
	a.mu.Lock()
	if a.reverted {
		a.mu.Unlock()
		return nil
	}
	at := a.revertRun
	if at == nil {
		at = &revertRun{done: make(chan struct{})}
		ok := l.goOp(func() {
			err := l.undo(a)
			a.mu.Lock()
			at.err = err
			a.reverted = err == nil
			a.revertRun = nil
			a.mu.Unlock()
			close(at.done)
		})
		if !ok {
			// Closing the Link removed every fault.
			a.reverted = true
			a.mu.Unlock()
			return nil
		}
		a.revertRun = at
	}
	a.mu.Unlock()

	select {
	case <-at.done:
		if at.err != nil {
			return fmt.Errorf("harness: link %q: revert %s: %w", l.name, a.fault, at.err)
		}
		l.log.Info("fault reverted", "fault", a.fault.String(), "fault_id", a.id)
		return nil
	case <-ctx.Done():
		return fmt.Errorf("harness: link %q: revert %s: still in progress: %w", l.name, a.fault, ctx.Err())
	}
}

// undo does the work of a revert.
func (l *Link) undo(a *appliedFault) error {
	switch a.fault.(type) {
	case toxics.Reset:
		l.mu.Lock()
		l.resets--
		l.dropFault(a)
		l.mu.Unlock()
		return nil
	case toxics.Down:
		return l.undoDown(a)
	}
	if err := l.removeToxics(a.names); err != nil {
		return err
	}
	l.mu.Lock()
	l.dropFault(a)
	l.mu.Unlock()
	return nil
}

// undoDown listens again on the Link's address once no Down fault is left.
func (l *Link) undoDown(a *appliedFault) error {
	deadline := time.Now().Add(linkRelistenFor)
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
		if time.Now().After(deadline) {
			return fmt.Errorf("listen again on %s: %w", l.addr, err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-l.ctx.Done():
			t.Stop()
		}
		backoff = min(2*backoff, 50*time.Millisecond)
	}
}

// dropFault removes a from the active list; l.mu must be heldChunk.
func (l *Link) dropFault(a *appliedFault) {
	if i := slices.Index(l.faults, a); i >= 0 {
		l.faults = slices.Delete(l.faults, i, i+1)
	}
}

// Clear reverts every active fault, newest first, and returns every error
// it met.
func (l *Link) Clear(ctx context.Context) error {
	if l == nil {
		return errors.New("harness: Clear on a nil *Link")
	}
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
