package sim

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"

	"github.com/shakedown/shakedown/toxics"
)

// NetworkTarget is the name schedules give the network itself, the
// target of partitions: [Network.Partitions] here, harness's Env.Network
// in the real world, so a schedule found in simulation replays there.
const NetworkTarget = "network"

// partState is what a Network knows of partitions: the one in force, and
// the connections endpoints opened to each other (with DialFrom), which a
// partition cuts.
type partState struct {
	mu     sync.Mutex
	groups map[string]int   // endpoint -> group while a partition holds; nil when none does
	conns  map[*pair]string // connections dialed from an endpoint: the endpoint's name
}

// DialFrom returns a dial function like [Network.Dial] for the server
// registered as from, when it is a client of another endpoint (an API
// that calls a database, say): what a partition between endpoints acts on.
// Dials from the test itself go through Network.Dial and no partition
// ever cuts them, as no partition cuts the host from a container in
// harness.
//
// While a partition puts from and the endpoint dialed in different
// groups, the dial fails as a name of another Docker network does not
// resolve: a *net.OpError wrapping a *net.DNSError (not found). An
// endpoint in no group reaches every group.
func (n *Network) DialFrom(from string) func(ctx context.Context, network, address string) (net.Conn, error) {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		if n == nil {
			return nil, &net.OpError{Op: "dial", Net: network, Addr: addr(address), Err: errors.New("sim: DialFrom on a nil *Network")}
		}
		if err := checkName(from); err != nil {
			return nil, &net.OpError{Op: "dial", Net: network, Addr: addr(address), Err: err}
		}
		ps := &n.part
		ps.mu.Lock()
		defer ps.mu.Unlock()
		if ep := n.resolve(address); ep != nil && ps.cut(from, ep.name) {
			host := address
			if h, _, err := net.SplitHostPort(address); err == nil {
				host = h
			}
			return nil, &net.OpError{Op: "dial", Net: network, Addr: addr(address),
				Err: &net.DNSError{Err: "no such host (" + from + " is cut off from it by a partition)", Name: host, IsNotFound: true}}
		}
		c, err := n.Dial(ctx, network, address)
		if err != nil {
			return nil, err
		}
		if ps.conns == nil {
			ps.conns = map[*pair]string{}
		}
		for pr := range ps.conns {
			if pr.severed.Load() || pr.open.Load() == 0 {
				delete(ps.conns, pr) // ended: forget it
			}
		}
		ps.conns[c.(*conn).pair] = from
		return c, nil
	}
}

// cut reports whether a partition in force puts a and b in different
// groups. The caller holds ps.mu.
func (ps *partState) cut(a, b string) bool {
	ga, okA := ps.groups[a]
	gb, okB := ps.groups[b]
	return okA && okB && ga != gb
}

// Partitions returns the network as a [Target] named [NetworkTarget] that
// takes [toxics.Partition] faults, whose groups name endpoints. It is not
// among [Network.Targets]: add it to a run's targets to schedule
// partitions. While a partition holds:
//
//   - a dial with [Network.DialFrom] from an endpoint to one in another
//     group fails as an unknown name does (see DialFrom);
//   - connections already open between endpoints in different groups
//     carry nothing more: what either side writes vanishes and reads wait
//     for their deadline, as packets to an address no longer on the
//     network. They stay so after the heal (a container that rejoins a
//     Docker network does not take its old connections back): a client
//     notices by its deadlines, or its pool's health checks;
//   - dials from the test ([Network.Dial]) and everything within a group
//     are untouched.
//
// One partition holds at a time: a second is an error until the first
// is reverted.
func (n *Network) Partitions() *Partitions { return &Partitions{n: n} }

// Partitions is the network as the target of partitions; see
// [Network.Partitions].
type Partitions struct {
	n *Network
}

var _ Target = (*Partitions)(nil)

// Name returns [NetworkTarget].
func (p *Partitions) Name() string { return NetworkTarget }

// Supports reports whether k is [toxics.KindPartition].
func (p *Partitions) Supports(k toxics.Kind) bool { return k == toxics.KindPartition }

// Members returns the names a partition's groups may hold: every
// endpoint of the network, sorted.
func (p *Partitions) Members() []string {
	eps := p.n.Endpoints()
	names := make([]string, len(eps))
	for i, ep := range eps {
		names[i] = ep.name
	}
	return names
}

// Apply starts a partition. A fault that is not a valid partition, a name
// that is not an endpoint (the error names every such name), or a
// partition already in force is an error and changes nothing.
func (p *Partitions) Apply(ctx context.Context, f toxics.Fault) (revert func(context.Context) error, err error) {
	if p == nil || p.n == nil {
		return nil, errors.New("sim: Apply on a nil *Partitions")
	}
	if err := toxics.Validate(f); err != nil {
		return nil, fmt.Errorf("sim: network: %w", err)
	}
	part, ok := f.(toxics.Partition)
	if !ok {
		return nil, fmt.Errorf("sim: network: unsupported fault %s (the network takes partitions only)", f)
	}
	if ctx != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("sim: network: apply %s: %w", f, ctx.Err())
	}
	n := p.n
	n.mu.Lock()
	closed := n.closed
	n.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("sim: network: apply %s: %w", f, ErrNetworkClosed)
	}
	groups := map[string]int{}
	var unknown []string
	for i, g := range part.Groups {
		for _, name := range g {
			if n.endpointNamed(name) == nil {
				unknown = append(unknown, fmt.Sprintf("%q", name))
			}
			groups[name] = i
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("sim: network: apply %s: no endpoint named %s (the network has: %s)", f, strings.Join(unknown, ", "), n.names())
	}
	ps := &n.part
	ps.mu.Lock()
	if ps.groups != nil {
		ps.mu.Unlock()
		return nil, fmt.Errorf("sim: network: apply %s: a partition is already in force; revert it first", f)
	}
	ps.groups = groups
	var cut []*pair
	for pr, from := range ps.conns {
		if ps.cut(from, pr.ep.name) {
			cut = append(cut, pr)
			delete(ps.conns, pr)
		}
	}
	ps.mu.Unlock()
	// In connection order, so that waking takes the same turns every run.
	slices.SortFunc(cut, func(a, b *pair) int {
		if c := strings.Compare(a.ep.name, b.ep.name); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	for _, pr := range cut {
		pr.silence()
	}
	var once sync.Once
	return func(context.Context) error {
		once.Do(func() {
			ps.mu.Lock()
			ps.groups = nil
			ps.mu.Unlock()
		})
		return nil
	}, nil
}

// endpointNamed returns the endpoint named exactly name, or nil.
func (n *Network) endpointNamed(name string) *Endpoint {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.endpoints[name]
}

// silence makes pr carry nothing more, either way: writes vanish, reads
// wait. Writers waiting for room wake to see it (in the connection's turn
// when a Run orders the network's events).
func (pr *pair) silence() {
	for _, p := range []*pipe{pr.up, pr.down} {
		p.mu.Lock()
		p.discard = true
		p.mu.Unlock()
	}
	ts := pr.ep.n.turns.Load()
	if ts == nil {
		pr.wake()
		return
	}
	ts.afterFunc(0, turnKey{class: turnConn, a: pr.ep.nameHash, b: pr.seq, c: roleFault}, pr.wake)
}
