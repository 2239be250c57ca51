package harness

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shakedown/shakedown/toxics"
)

// defaultStartTimeout bounds the start of a dependency and the wait for
// it to be ready again after a node fault.
const defaultStartTimeout = 2 * time.Minute

// runtimeNode is a container or a local process: the thing node faults
// act on.
type runtimeNode interface {
	// start starts a stopped node and returns its new direct address.
	start(ctx context.Context) (addr string, err error)
	// stop stops it gracefully, killing it after grace (0: the default).
	stop(ctx context.Context, grace time.Duration) error
	// kill kills it at once and returns when it is gone.
	kill(ctx context.Context) error
	pause(ctx context.Context) error
	unpause(ctx context.Context) error
	// describe names the node in messages ("container 1a2b3c", "process 1234").
	describe() string
}

// nodeState is what the Env knows of a node. Reset consults it instead of
// asking Docker, which keeps Reset fast when nothing crashed.
type nodeState int

const (
	running nodeState = iota
	paused
	stopped
)

func (s nodeState) String() string {
	return [...]string{"running", "paused", "stopped"}[s]
}

// Node is a dependency that runs as a container or a local process, with
// a [Link] in front. [Postgres], [Redis] and [Container] embed it. Its
// node-fault methods are safe for concurrent use; they are serialised.
//
// After every start (Start, Restart, the revert of Crash or Stop) the
// Link is re-pointed at the node's new direct address, so Addr stays the
// same, and the method returns only when the node passes its readiness
// check on that address.
type Node struct {
	env          *Env
	name         string
	link         *Link
	rt           runtimeNode
	ready        func(ctx context.Context, addr string) error
	startTimeout time.Duration

	direct atomic.Value // string

	mu    sync.Mutex // serialises node operations
	state nodeState
}

func newNode(e *Env, name string, link *Link, rt runtimeNode, addr string, ready func(context.Context, string) error, startTimeout time.Duration) *Node {
	if startTimeout <= 0 {
		startTimeout = defaultStartTimeout
	}
	n := &Node{env: e, name: name, link: link, rt: rt, ready: ready, startTimeout: startTimeout}
	n.direct.Store(addr)
	return n
}

// Name is the dependency's name.
func (n *Node) Name() string { return n.name }

// Addr is the Link's address, 127.0.0.1:port, stable across restarts.
func (n *Node) Addr() string { return n.link.Addr() }

// DirectAddr is the node's current address, bypassing the Link. It
// changes when a container is started again.
func (n *Node) DirectAddr() string { return n.direct.Load().(string) }

// Link is the fault-injecting proxy in front of the node.
func (n *Node) Link() *Link { return n.link }

// Supports reports whether Apply accepts faults of kind k: every node
// fault but data steps (see [Postgres.Statements]), and the link faults
// the Link supports.
func (n *Node) Supports(k toxics.Kind) bool {
	if k.IsNode() && k.Protocol() == "" {
		return true
	}
	return n.link.Supports(k)
}

// Apply starts fault f. Link faults go to the Link. Node faults act on
// the node: Crash kills it and Stop stops it (revert: start it again),
// Pause freezes it (revert: unpause), Restart stops and starts it at once
// (revert: nothing). Apply returns once the fault is in force; for
// Restart, once the node is ready again.
func (n *Node) Apply(ctx context.Context, f toxics.Fault) (revert func(context.Context) error, err error) {
	if err := toxics.Validate(f); err != nil {
		return nil, fmt.Errorf("harness: %s: %w", n.name, err)
	}
	switch f := f.(type) {
	case toxics.LinkFault:
		return n.link.Apply(ctx, f)
	case toxics.Crash:
		revert, err = n.Start, n.Crash(ctx)
	case toxics.Stop:
		revert, err = n.Start, n.stopGrace(ctx, f.Grace)
	case toxics.Pause:
		revert, err = n.Unpause, n.Pause(ctx)
	case toxics.Restart:
		revert, err = func(context.Context) error { return nil }, n.Restart(ctx)
	case toxics.ClockSkew, toxics.ClockJump:
		return nil, fmt.Errorf("harness: %s: fault %v is simulation-only: a real dependency's clock is not the test's to set (a sim.Endpoint takes it)", n.name, f)
	default:
		return nil, fmt.Errorf("harness: %s: fault %v is not supported", n.name, f)
	}
	if err != nil {
		return nil, err
	}
	return revert, nil
}

// Ready returns nil once the node passes its readiness check on its
// direct address (a query for Postgres, PING for Redis, the spec's check
// for a Container), or an error when ctx ends first.
func (n *Node) Ready(ctx context.Context) error {
	return poll(ctx, func(ctx context.Context) error { return n.ready(ctx, n.DirectAddr()) })
}

// Crash kills the node without a clean shutdown (SIGKILL, docker kill).
// Clients see errors until it is started again. Crashing a node that is
// down does nothing.
func (n *Node) Crash(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.state == stopped {
		return nil
	}
	if n.state == paused {
		// A frozen process cannot run its exit; thaw it first.
		if err := n.rt.unpause(ctx); err != nil {
			return n.errorf("crash: unpause first: %w", err)
		}
		n.state = running
	}
	if err := n.rt.kill(ctx); err != nil {
		return n.errorf("crash: %w", err)
	}
	n.state = stopped
	n.env.log.Info("node crashed", "dependency", n.name)
	return nil
}

// Stop shuts the node down gracefully (docker stop; SIGINT for a
// Postgres process, SIGTERM otherwise), killing it if it has not exited
// after the runtime's default grace period of 10 s.
func (n *Node) Stop(ctx context.Context) error { return n.stopGrace(ctx, 0) }

func (n *Node) stopGrace(ctx context.Context, grace time.Duration) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stopLocked(ctx, grace)
}

func (n *Node) stopLocked(ctx context.Context, grace time.Duration) error {
	if n.state == stopped {
		return nil
	}
	if n.state == paused {
		if err := n.rt.unpause(ctx); err != nil {
			return n.errorf("stop: unpause first: %w", err)
		}
		n.state = running
	}
	if err := n.rt.stop(ctx, grace); err != nil {
		return n.errorf("stop: %w", err)
	}
	n.state = stopped
	n.env.log.Info("node stopped", "dependency", n.name)
	return nil
}

// Start starts the node if it is down (and unpauses it if it is paused),
// re-points the Link at its new address and waits until it is ready. A
// running node is left alone.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.startLocked(ctx)
}

func (n *Node) startLocked(ctx context.Context) error {
	switch n.state {
	case running:
		return nil
	case paused:
		return n.unpauseLocked(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, n.startTimeout)
	defer cancel()
	addr, err := n.rt.start(ctx)
	if err != nil {
		return n.errorf("start: %w", err)
	}
	n.state = running
	n.direct.Store(addr)
	if err := n.link.SetUpstream(addr); err != nil {
		return n.errorf("start: re-point link at %s: %w", addr, err)
	}
	if err := poll(ctx, func(ctx context.Context) error { return n.ready(ctx, addr) }); err != nil {
		return n.errorf("start: not ready on %s: %w", addr, err)
	}
	n.env.log.InfoContext(ctx, "node started", "dependency", n.name, "addr", addr)
	return nil
}

// Restart stops the node gracefully and starts it again, waiting until
// it is ready. Data the server persisted survives (same container or data
// directory).
func (n *Node) Restart(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.stopLocked(ctx, 0); err != nil {
		return err
	}
	return n.startLocked(ctx)
}

// Pause freezes the node (docker pause; SIGSTOP to the process tree).
// Connections stay open but nothing answers, so calls time out. Pausing
// a node that is down is an error.
func (n *Node) Pause(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch n.state {
	case paused:
		return nil
	case stopped:
		return n.errorf("pause: node is down")
	}
	if err := n.rt.pause(ctx); err != nil {
		return n.errorf("pause: %w", err)
	}
	n.state = paused
	n.env.log.Info("node paused", "dependency", n.name)
	return nil
}

// Unpause thaws a paused node. Other states are left alone.
func (n *Node) Unpause(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.unpauseLocked(ctx)
}

func (n *Node) unpauseLocked(ctx context.Context) error {
	if n.state != paused {
		return nil
	}
	if err := n.rt.unpause(ctx); err != nil {
		return n.errorf("unpause: %w", err)
	}
	n.state = running
	n.env.log.InfoContext(ctx, "node unpaused", "dependency", n.name)
	return nil
}

// heal clears the Link's faults and brings the node back to running.
func (n *Node) heal(ctx context.Context) error {
	err := n.link.Clear(ctx)
	n.mu.Lock()
	defer n.mu.Unlock()
	return errors.Join(err, n.startLocked(ctx))
}

func (n *Node) errorf(format string, args ...any) error {
	return fmt.Errorf("harness: %s (%s): %w", n.name, n.rt.describe(), fmt.Errorf(format, args...))
}

// backoff is how long poll waits between attempts: first after the
// first failure, doubling up to fast while the wait is younger than
// patience, then up to slow.
type backoff struct {
	first, fast, slow, patience time.Duration
}

// readyBackoff is the backoff of every wait for readiness. A readiness
// check is cheap while the server is down (a refused or reset
// connection), and what a restart costs is mostly the wait for the
// server, so attempts are at most 5 ms apart for the first 2 s: a node
// that comes back within them is seen within 5 ms of its answering. What
// takes longer (a first start, a slow machine) is polled every 50 ms.
var readyBackoff = backoff{first: time.Millisecond, fast: 5 * time.Millisecond, slow: 50 * time.Millisecond, patience: 2 * time.Second}

// poll calls check until it returns nil or ctx ends, waiting between
// attempts as [readyBackoff] says. Each attempt gets at most 5 s.
func poll(ctx context.Context, check func(context.Context) error) error {
	return readyBackoff.poll(ctx, check)
}

func (b backoff) poll(ctx context.Context, check func(context.Context) error) error {
	start := time.Now()
	delay := b.first
	var last error
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		last = check(actx)
		cancel()
		if last == nil {
			return nil
		}
		var perm *permanentError
		if errors.As(last, &perm) {
			return perm.err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("gave up after %d attempts (%w): last error: %w", attempt, context.Cause(ctx), last)
		case <-t.C:
		}
		limit := b.fast
		if time.Since(start) > b.patience {
			limit = b.slow
		}
		delay = min(2*delay, limit)
	}
}

// linkSeed derives a Link's seed from the run's seed and the
// dependency's name, so Links differ but replay the same.
func linkSeed(seed int64, name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return seed ^ int64(h.Sum64())
}

// newLink starts the Link of dependency name and registers its close.
func (e *Env) newLink(name, upstream string, extra ...LinkOption) (*Link, error) {
	opts := append([]LinkOption{WithSeed(linkSeed(e.seed, name)), WithLogger(e.log.l)}, extra...)
	l, err := StartLink(name, upstream, opts...)
	if err != nil {
		return nil, err
	}
	e.onClose("link "+name, func(context.Context) error { return l.Close() })
	return l, nil
}
