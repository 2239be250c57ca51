package sim

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/shakedown/shakedown/internal/dnsfault"
	"github.com/shakedown/shakedown/toxics"
)

// DNSTarget is the name schedules give a simulated name server
// ([Network.DNS]), the same as harness's, so that a schedule of DNS
// faults found in simulation replays on the real one.
const DNSTarget = "dns"

// DNS is a network's simulated name server, the twin of harness's Env.DNS:
// it answers for the network's endpoints in the zone shakedown.test with
// the same records (endpoint db is db.shakedown.test, an A record of
// 127.0.0.1, an SRV record with the port if the endpoint was named with
// one, no AAAA; TTL 0; NXDOMAIN for other names in the zone, REFUSED
// outside it), and takes the DNS faults of package toxics
// ([toxics.DNSKinds]) with the same effects, in virtual time inside a
// bubble. Get it with [Network.DNS]; pass it to the Runner beside the
// endpoints (it is not in [Network.Targets]).
//
// Code under simulation reaches it two ways:
//   - [Network.Dial] resolves a host in the zone through it
//     ("db.shakedown.test:5432" reaches endpoint db, or db:5432), and fails
//     as a dial through a real resolver does, with a *net.OpError around
//     the *net.DNSError;
//   - [DNS.Resolver] is a *net.Resolver for lookups of one's own.
//
// Both use Go's own resolver (PreferGo), which reads /etc/resolv.conf's
// options (timeout, attempts) as it does for the real server, over an
// in-memory stream connection (so it frames queries as over TCP); the
// answers are built by the same code as the real server's. No fault
// draws anything at random.
type DNS struct {
	n *Network

	mu     sync.Mutex
	armed  map[uint64]toxics.DNSFault
	nextID uint64
	conns  map[net.Conn]struct{} // the server's side of open queries
	closed bool
	done   chan struct{} // closed by Network.Close
}

// DNS returns the network's name server, creating it on the first call.
func (n *Network) DNS() *DNS {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.dns == nil {
		n.dns = &DNS{n: n, armed: map[uint64]toxics.DNSFault{}, conns: map[net.Conn]struct{}{}, done: make(chan struct{})}
	}
	return n.dns
}

// Name returns [DNSTarget].
func (d *DNS) Name() string { return DNSTarget }

// Supports reports whether k is a DNS kind ([toxics.Kind.IsDNS]).
func (d *DNS) Supports(k toxics.Kind) bool { return k.IsDNS() }

// Apply arms the DNS fault f for the queries that arrive from now on; the
// revert disarms exactly that fault (an answer already delayed still
// waits). A fault that is not a valid DNS fault is an error.
func (d *DNS) Apply(_ context.Context, f toxics.Fault) (revert func(context.Context) error, err error) {
	if err := toxics.Validate(f); err != nil {
		return nil, fmt.Errorf("sim: dns: %w", err)
	}
	df, ok := f.(toxics.DNSFault)
	if !ok {
		return nil, fmt.Errorf("sim: dns: %s is not a DNS fault (it takes %v)", f.Kind(), toxics.DNSKinds())
	}
	d.mu.Lock()
	id := d.nextID
	d.nextID++
	d.armed[id] = df
	d.mu.Unlock()
	return func(context.Context) error {
		d.mu.Lock()
		delete(d.armed, id)
		d.mu.Unlock()
		return nil
	}, nil
}

// Host returns the DNS name of the endpoint called name:
// name.shakedown.test in lower case.
func (d *DNS) Host(name string) string { return dnsfault.Name(name) }

// Resolver returns a resolver that asks this server only (Go's resolver,
// PreferGo, dialing an in-memory connection). As harness's does, it
// closes a query's connection once the lookup's context is canceled,
// so that no lookup outlives its callers.
func (d *DNS) Resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: d.dial}
}

// dial is the resolver's Dial: like net.Dialer's to a local server, it
// fails only when ctx is done.
func (d *DNS) dial(ctx context.Context, network, address string) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = os.ErrDeadlineExceeded // what net.Dialer reports
		}
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	client, server := net.Pipe()
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		client.Close()
		server.Close()
		return nil, &net.OpError{Op: "dial", Net: network, Err: ErrNetworkClosed}
	}
	d.conns[server] = struct{}{}
	d.mu.Unlock()
	go d.serve(server)
	context.AfterFunc(ctx, func() {
		if errors.Is(ctx.Err(), context.Canceled) {
			client.Close()
		}
	})
	return client, nil
}

// serve answers the queries on one connection, framed as over TCP (a
// two-byte length before each message), until the client closes it.
func (d *DNS) serve(c net.Conn) {
	defer func() {
		c.Close()
		d.mu.Lock()
		delete(d.conns, c)
		d.mu.Unlock()
	}()
	var size [2]byte
	for {
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return
		}
		buf := make([]byte, binary.BigEndian.Uint16(size[:]))
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		req := new(dns.Msg)
		if err := req.Unpack(buf); err != nil {
			return // as miekg/dns's server does with garbage: no answer
		}
		d.mu.Lock()
		armed := make([]toxics.DNSFault, 0, len(d.armed))
		for id := uint64(0); id < d.nextID; id++ { // in the order applied
			if f, ok := d.armed[id]; ok {
				armed = append(armed, f)
			}
		}
		d.mu.Unlock()
		resp, delay := dnsfault.Respond(req, d.lookup, armed)
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-d.done:
				t.Stop()
				return
			}
		}
		if resp == nil {
			continue // dropped: wait for the next query or the close
		}
		out, err := resp.Pack()
		if err != nil {
			return
		}
		framed := binary.BigEndian.AppendUint16(nil, uint16(len(out)))
		if _, err := c.Write(append(framed, out...)); err != nil {
			return
		}
	}
}

// lookup finds the endpoint host names (case aside) and the port it was
// named with, if any.
func (d *DNS) lookup(host string) (int, bool) {
	name, ok := d.endpointOf(host)
	if !ok {
		return 0, false
	}
	if _, p, err := net.SplitHostPort(name); err == nil {
		port, _ := strconv.Atoi(p)
		return port, true
	}
	return 0, true
}

// endpointOf returns the name of the endpoint that host (a dependency
// name in lower case) names: the endpoint host, or host:port.
func (d *DNS) endpointOf(host string) (string, bool) {
	for _, ep := range d.n.Endpoints() {
		h := ep.name
		if hh, _, err := net.SplitHostPort(h); err == nil {
			h = hh
		}
		if strings.ToLower(h) == host {
			return ep.name, true
		}
	}
	return "", false
}

// dialAddress resolves address's host through the name server when it is
// in the zone, as a net.Dialer with this Resolver would, and returns the
// address of the endpoint to dial; other addresses come back unchanged.
func (d *DNS) dialAddress(ctx context.Context, address string) (string, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		host, port = address, ""
	}
	dep, inZone := dnsfault.HostOf(host)
	if !inZone || dep == "" {
		return address, nil
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if _, err := d.Resolver().LookupHost(ctx, host); err != nil {
		return "", err
	}
	name, ok := d.endpointOf(dep)
	if !ok { // gone between the answer and now
		return "", &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	if port == "" || strings.Contains(name, ":") {
		return name, nil
	}
	return net.JoinHostPort(name, port), nil
}

// close ends the server: delayed answers are not sent, open queries end.
func (d *DNS) close() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	close(d.done)
	conns := make([]net.Conn, 0, len(d.conns))
	for c := range d.conns {
		conns = append(conns, c)
	}
	d.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// Go's resolver keeps its configuration (/etc/resolv.conf, nsswitch.conf)
// in process-wide state whose first use creates channels. Were that first
// use inside a testing/synctest bubble, the channels would belong to the
// bubble, and any later lookup outside it would panic; so a lookup that
// dials nothing runs once when the package loads, outside any bubble.
func init() {
	r := &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("sim: no dial at init")
	}}
	_, _ = r.LookupHost(context.Background(), "init."+dnsfault.Zone)
}
