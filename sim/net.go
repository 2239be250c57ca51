package sim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// Network is an in-memory network for tests in virtual time. Servers
// register under a name with [Network.Listen], or start a fake
// ([Network.FakeHTTP], [Network.FakeTCP], [Network.FakeKV]); clients reach
// them with [Network.Dial], whose signature fits http.Transport.DialContext,
// a pgx ConnConfig.DialFunc and a go-redis Options.Dialer as they are.
// Inside a testing/synctest bubble a 5 s latency takes no wall time:
//
//	synctest.Test(t, func(t *testing.T) {
//		n := sim.NewNetwork(seed)
//		t.Cleanup(func() { n.Close() })
//		api, _ := n.FakeHTTP("api", handler)
//		client := &http.Client{Transport: &http.Transport{DialContext: n.Dial}, Timeout: time.Second}
//		api.Apply(t.Context(), toxics.Latency{Delay: 5 * time.Second})
//		_, err := client.Get(api.URL()) // a timeout, after exactly 1 s of virtual time
//	})
//
// Every name is an [Endpoint], a [Target] that takes the link faults of
// package toxics (acting on the path from clients to the server, as
// harness.Link does on real TCP) and its node faults (acting on the server
// itself, as harness does on a container): one target per dependency,
// like a harness dependency. [Network.Targets] lists them for the Runner.
//
// Connections behave like TCP on loopback as a client library sees it:
// each direction has a bounded buffer (a writer does not wait for the
// reader until 256 KiB are in flight), deadlines give errors with
// Timeout() true that match [os.ErrDeadlineExceeded], a refused dial, a
// reset and a broken pipe are *net.OpError values wrapping
// syscall.ECONNREFUSED, syscall.ECONNRESET and syscall.EPIPE, and
// CloseWrite and CloseRead half-close. A side whose peer closed reads what
// arrived, then EOF; as on Linux, writing to it succeeds (the bytes
// vanish), and the RST that answers fails the next write with
// ECONNRESET, and later ones with EPIPE.
//
// Everything that waits blocks durably (channels and timers), so the
// network runs in virtual time inside a bubble. Create it inside the
// bubble that uses it, and close it there (t.Cleanup inside
// synctest.Test runs in the bubble): its channels belong to the bubble.
// It starts no goroutine of its own (the timers of timeout faults run
// briefly when they fire); the fakes run theirs until [Network.Close].
// Outside a bubble it works on the wall clock.
//
// Every random draw (latency jitter, corruption, slicer sizes) comes from
// the seed, per endpoint, connection and direction, so the same program
// with the same seed sees the same bytes at the same virtual times.
// Connections are numbered in the order they are dialed. While a [Run] in
// a bubble targets the network, what happens on its connections at the
// same instant takes turns in a fixed order (see the package doc's
// Determinism), so dials, and their numbers, come in the same order in
// every run; outside a Run, dials racing at the same instant from
// different goroutines get their numbers in the order the scheduler runs
// them.
type Network struct {
	seed int64
	// turns, while a Run in a bubble targets the network, orders what
	// happens at the same instant (see turns.go).
	turns atomic.Pointer[turns]

	mu        sync.Mutex
	endpoints map[string]*Endpoint
	fakes     []interface{ Close() error }
	closed    bool
	nextPort  int

	part partState // partitions between endpoints (net_partition.go)
	dns  *DNS      // the name server, once asked for (net_dns.go)
}

// NewNetwork returns an empty network whose random draws all derive from
// seed.
func NewNetwork(seed int64) *Network {
	return &Network{seed: seed, endpoints: map[string]*Endpoint{}, nextPort: 49152}
}

// Seed returns the seed the network was created with.
func (n *Network) Seed() int64 { return n.seed }

// ErrNetworkClosed is the error (wrapped in a *net.OpError) of a dial or
// listen on a closed [Network]. It matches [net.ErrClosed].
var ErrNetworkClosed = fmt.Errorf("sim: network closed: %w", net.ErrClosed)

// checkName reports whether name can name an endpoint: a host such as
// "db", or a host and port such as "db:5432".
func checkName(name string) error {
	if name == "" {
		return errors.New("sim: endpoint name is empty (use a host name such as \"db\")")
	}
	for _, r := range name {
		if r <= ' ' || r == 0x7f || r == '/' {
			return fmt.Errorf("sim: endpoint name %q contains %q (use a host name such as \"db\" or \"db:5432\")", name, r)
		}
	}
	if strings.Contains(name, ":") {
		host, port, err := net.SplitHostPort(name)
		if err != nil || host == "" || port == "" {
			return fmt.Errorf("sim: endpoint name %q is neither a host nor host:port", name)
		}
	}
	return nil
}

// Endpoint returns the endpoint named name, creating it if needed, so that
// faults can be applied before its server listens. The name is a host such
// as "db" (dials to "db:<any port>" reach it) or a host and port such as
// "db:5432" (only dials to exactly that address reach it).
func (n *Network) Endpoint(name string) (*Endpoint, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, fmt.Errorf("sim: endpoint %q: %w", name, ErrNetworkClosed)
	}
	return n.endpointLocked(name), nil
}

func (n *Network) endpointLocked(name string) *Endpoint {
	if ep, ok := n.endpoints[name]; ok {
		return ep
	}
	ep := newEndpoint(n, name)
	n.endpoints[name] = ep
	return ep
}

// Endpoints returns every endpoint, sorted by name.
func (n *Network) Endpoints() []*Endpoint {
	n.mu.Lock()
	defer n.mu.Unlock()
	eps := make([]*Endpoint, 0, len(n.endpoints))
	for _, ep := range n.endpoints {
		eps = append(eps, ep)
	}
	slices.SortFunc(eps, func(a, b *Endpoint) int { return strings.Compare(a.name, b.name) })
	return eps
}

// Targets returns every endpoint as a [Target], sorted by name, ready to
// be passed to the Runner; a FakeKV stands for its endpoint, so that it
// takes the Redis protocol faults too.
func (n *Network) Targets() []Target {
	eps := n.Endpoints()
	ts := make([]Target, len(eps))
	for i, ep := range eps {
		ts[i] = ep
		if f := n.fakeOf(ep); f != nil {
			ts[i] = f // a fake that takes faults of its own (FakeKV)
		}
	}
	return ts
}

// fakeOf returns the fake serving ep if it takes faults its endpoint
// does not (protocol faults), or nil.
func (n *Network) fakeOf(ep *Endpoint) Target {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, f := range n.fakes {
		if kv, ok := f.(*FakeKV); ok && kv.Endpoint == ep {
			return kv
		}
	}
	return nil
}

// Listen registers a server under name and returns its listener. It fails
// if the name is invalid, if another listener holds it (an error matching
// syscall.EADDRINUSE), or if the network is closed. Closing the listener
// frees the name; the endpoint, its faults and its counters stay.
func (n *Network) Listen(name string) (net.Listener, error) {
	if err := checkName(name); err != nil {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: addr(name), Err: err}
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: addr(name), Err: ErrNetworkClosed}
	}
	ep := n.endpointLocked(name)
	n.mu.Unlock()
	return ep.listen()
}

// resolve finds the endpoint a dial to address reaches: the endpoint named
// exactly address, else the one named by its host.
func (n *Network) resolve(address string) *Endpoint {
	n.mu.Lock()
	defer n.mu.Unlock()
	if ep, ok := n.endpoints[address]; ok {
		return ep
	}
	if host, _, err := net.SplitHostPort(address); err == nil {
		if ep, ok := n.endpoints[host]; ok {
			return ep
		}
	}
	return nil
}

func (n *Network) names() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	names := make([]string, 0, len(n.endpoints))
	for name := range n.endpoints {
		names = append(names, name)
	}
	slices.Sort(names)
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func (n *Network) clientAddr() addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.nextPort
	n.nextPort++
	if n.nextPort > 65535 {
		n.nextPort = 49152
	}
	return addr("client:" + strconv.Itoa(p))
}

// Dial connects to the server registered under address's name. network
// must be "tcp", "tcp4" or "tcp6"; address is "name" or "name:port" (a
// port is accepted and ignored unless the endpoint was named with one).
//
// Like a TCP dial to a local port, it returns at once: with a connection
// (even while the server is paused: the connection waits in the backlog),
// or with a *net.OpError whose Op is "dial" and which matches
// syscall.ECONNREFUSED when nothing listens, the endpoint is down, or its
// node is stopped or crashed. An unknown name gives a *net.DNSError (not
// found). A done ctx gives its error. Once [Network.DNS] was called, a
// host in its zone (db.shakedown.test) is resolved through it first.
func (n *Network) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	fail := func(err error) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: addr(address), Err: err}
	}
	if n == nil {
		return fail(errors.New("sim: Dial on a nil *Network"))
	}
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return fail(net.UnknownNetworkError(network))
	}
	if ctx != nil {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
	}
	n.mu.Lock()
	closed, names := n.closed, n.dns
	n.mu.Unlock()
	if closed {
		return fail(ErrNetworkClosed)
	}
	if names != nil { // a host in its zone resolves through it (net_dns.go)
		a, err := names.dialAddress(ctx, address)
		if err != nil {
			return fail(err)
		}
		address = a
	}
	ep := n.resolve(address)
	if ep == nil {
		host := address
		if h, _, err := net.SplitHostPort(address); err == nil {
			host = h
		}
		return fail(&net.DNSError{Err: "no such host (sim network has: " + n.names() + ")", Name: host, IsNotFound: true})
	}
	if err := ep.waitHandshake(ctx); err != nil {
		return fail(err)
	}
	c, err := ep.dial(address)
	if err != nil {
		return fail(err)
	}
	return c, nil
}

// Close closes every fake, listener and connection of the network (the
// connections as if the network went away: each side reads what had
// arrived, then EOF), stops every timer, and makes later dials and
// listens fail with [ErrNetworkClosed]. It returns once every fake's
// goroutines have ended. It is idempotent.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	if n.dns != nil {
		defer n.dns.close()
	}
	fakes := n.fakes
	n.fakes = nil
	eps := make([]*Endpoint, 0, len(n.endpoints))
	for _, ep := range n.endpoints {
		eps = append(eps, ep)
	}
	n.mu.Unlock()
	slices.SortFunc(eps, func(a, b *Endpoint) int { return strings.Compare(a.name, b.name) })
	var errs []error
	for _, f := range fakes {
		errs = append(errs, f.Close())
	}
	for _, ep := range eps {
		ep.shutdown()
	}
	return errors.Join(errs...)
}

func (n *Network) addFake(f interface{ Close() error }) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrNetworkClosed
	}
	n.fakes = append(n.fakes, f)
	return nil
}

// addr is the address of a simulated endpoint or client.
type addr string

func (a addr) Network() string { return "tcp" }
func (a addr) String() string  { return string(a) }

func errRefused() error        { return os.NewSyscallError("connect", syscall.ECONNREFUSED) }
func errInUse() error          { return os.NewSyscallError("bind", syscall.EADDRINUSE) }
func errReset(op string) error { return os.NewSyscallError(op, syscall.ECONNRESET) }
func errPipe() error           { return os.NewSyscallError("write", syscall.EPIPE) }
