package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/shakedown/shakedown/internal/dnsfault"
	"github.com/shakedown/shakedown/toxics"
)

// DNSTarget is the name schedules give the Env's name server, the target
// of the DNS faults ([Env.DNS]). Package sim names its simulated name
// server the same, so a schedule found in simulation replays here.
const DNSTarget = "dns"

// DNS is the Env's name server: it answers for the Env's dependencies in
// the zone shakedown.test, on 127.0.0.1 over UDP and TCP (one ephemeral
// port for both), and takes the DNS faults of package toxics
// ([toxics.DNSKinds]). Get it with [Env.DNS].
//
// A dependency called db is db.shakedown.test (its name in lower case;
// [DNS.Host]). Its A record is 127.0.0.1, its SRV record at the same name
// gives its Link's port, and it has no AAAA record; every TTL is 0. So a
// client resolves the name and dials the Link's port on it:
// [DNS.Address] returns "db.shakedown.test:<Link port>", which a client
// dials through [DNS.Resolver] (a net.Dialer whose Resolver it is, or
// [DNS.DialContext], whose signature fits http.Transport.DialContext,
// go-redis's Options.Dialer and pgx's ConnConfig.DialFunc). A name in the
// zone that names no dependency is NXDOMAIN; a name outside it is
// REFUSED: the server is no recursive resolver.
//
// The faults act on the queries that arrive while they hold: dns_delay
// answers after its delay, dns_servfail with SERVFAIL, dns_nxdomain with
// NXDOMAIN, dns_drop never. Several at once combine: the longest delay,
// then the harshest answer (drop over NXDOMAIN over SERVFAIL). A fault
// with Hosts acts only on queries about those dependencies. None draws
// anything at random. [Env.Reset] clears them.
//
// Go's resolver (PreferGo, as [DNS.Resolver] is) retries a failed query
// as /etc/resolv.conf says (attempts, default 2; timeout, default 5 s),
// so a dropped query fails after the client's own deadline, or after
// attempts × timeout.
type DNS struct {
	e    *Env
	addr string
	udp  *dns.Server
	tcp  *dns.Server
	done chan struct{} // closed at teardown: delayed answers stop waiting

	mu     sync.Mutex
	armed  map[uint64]toxics.DNSFault
	nextID uint64
}

// DNS returns the Env's name server, starting it on the first call (it
// stops at teardown). A failure to start stops the test with t.Fatalf, so
// the first call, like those that start a dependency, belongs on the
// test's goroutine; later calls may come from any. The name "dns" is then
// taken: no dependency may have it.
func (e *Env) DNS() *DNS {
	e.t.Helper()
	e.mu.Lock()
	if e.dns != nil {
		d := e.dns
		e.mu.Unlock()
		return d
	}
	e.mu.Unlock()
	if err := e.claim(DNSTarget); err != nil {
		e.fatalf("harness: the name server %q: %v", DNSTarget, err)
	}
	d, err := startDNS(e)
	if err != nil {
		e.release(DNSTarget)
		e.fatalf("harness: start the name server: %v", err)
	}
	e.mu.Lock()
	e.dns = d
	e.mu.Unlock()
	e.onClose("the name server", d.close)
	e.log.Info("name server started", "addr", d.addr, "zone", dnsfault.Zone)
	return d
}

// Resolver returns a resolver that asks the Env's name server
// ([Env.DNS], started if need be); see [DNS.Resolver].
func (e *Env) Resolver() *net.Resolver { return e.DNS().Resolver() }

func startDNS(e *Env) (*DNS, error) {
	d := &DNS{e: e, done: make(chan struct{}), armed: map[uint64]toxics.DNSFault{}}
	var lastErr error
	for try := 0; try < 10; try++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		pc, err := net.ListenPacket("udp", ln.Addr().String())
		if err != nil { // the port is taken for UDP: another one
			ln.Close()
			lastErr = err
			continue
		}
		d.addr = ln.Addr().String()
		h := dns.HandlerFunc(d.serve)
		events := make(chan error, 4) // nil: one server started
		started := func() { events <- nil }
		d.udp = &dns.Server{PacketConn: pc, Handler: h, NotifyStartedFunc: started}
		d.tcp = &dns.Server{Listener: ln, Handler: h, NotifyStartedFunc: started}
		for _, s := range []*dns.Server{d.udp, d.tcp} {
			go func() {
				if err := s.ActivateAndServe(); err != nil {
					events <- err
				}
			}()
		}
		for range 2 {
			if err := <-events; err != nil {
				close(d.done)
				_ = d.udp.Shutdown() // whichever started
				_ = d.tcp.Shutdown()
				ln.Close()
				pc.Close()
				return nil, err
			}
		}
		return d, nil
	}
	return nil, fmt.Errorf("no port free for both UDP and TCP after 10 tries: %w", lastErr)
}

func (d *DNS) serve(w dns.ResponseWriter, req *dns.Msg) {
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
		return // dropped: the client waits for its timeout
	}
	_ = w.WriteMsg(resp) // a client gone meanwhile is no error of ours
}

// lookup finds the dependency host names and its Link's port.
func (d *DNS) lookup(host string) (int, bool) {
	for _, dep := range d.e.Dependencies() {
		if strings.ToLower(dep.Name()) != host {
			continue
		}
		_, p, err := net.SplitHostPort(dep.Addr())
		if err != nil {
			return 0, true
		}
		port, _ := strconv.Atoi(p)
		return port, true
	}
	return 0, false
}

func (d *DNS) close(ctx context.Context) error {
	close(d.done)
	return errors.Join(d.udp.ShutdownContext(ctx), d.tcp.ShutdownContext(ctx))
}

// heal clears every DNS fault.
func (d *DNS) heal() {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.armed)
}

// Name returns [DNSTarget].
func (d *DNS) Name() string { return DNSTarget }

// Supports reports whether k is a DNS kind ([toxics.Kind.IsDNS]).
func (d *DNS) Supports(k toxics.Kind) bool { return k.IsDNS() }

// Apply arms the DNS fault f for the queries that arrive from now on; the
// revert disarms exactly that fault (a delayed answer already waiting
// still waits). A fault that is not a valid DNS fault is an error.
func (d *DNS) Apply(ctx context.Context, f toxics.Fault) (revert func(context.Context) error, err error) {
	if err := toxics.Validate(f); err != nil {
		return nil, fmt.Errorf("harness: dns: %w", err)
	}
	df, ok := f.(toxics.DNSFault)
	if !ok {
		return nil, fmt.Errorf("harness: dns: %s is not a DNS fault (it takes %v)", f.Kind(), toxics.DNSKinds())
	}
	d.mu.Lock()
	id := d.nextID
	d.nextID++
	d.armed[id] = df
	d.mu.Unlock()
	d.e.log.Info("fault applied", "target", DNSTarget, "fault", f.String())
	var once sync.Once
	return func(context.Context) error {
		once.Do(func() {
			d.mu.Lock()
			delete(d.armed, id)
			d.mu.Unlock()
			d.e.log.Info("fault reverted", "target", DNSTarget, "fault", f.String())
		})
		return nil
	}, nil
}

// Addr returns the server's address, 127.0.0.1:port, for UDP and TCP.
func (d *DNS) Addr() string { return d.addr }

// Host returns the DNS name of the dependency called dep:
// dep.shakedown.test in lower case, whether dep exists or not.
func (d *DNS) Host(dep string) string { return dnsfault.Name(dep) }

// Address returns the address a client dials to reach the dependency
// called dep by name through its Link: "dep.shakedown.test:<Link port>".
// It needs a dialer that resolves through [DNS.Resolver], such as
// [DNS.DialContext].
func (d *DNS) Address(dep string) (string, error) {
	m, err := d.e.Dependency(dep)
	if err != nil {
		return "", err
	}
	_, port, err := net.SplitHostPort(m.Addr())
	if err != nil {
		return "", fmt.Errorf("harness: dns: address of %q: %w", dep, err)
	}
	return net.JoinHostPort(d.Host(dep), port), nil
}

// Resolver returns a resolver that asks this server only: Go's own
// resolver (PreferGo), over UDP or TCP as it chooses, to [DNS.Addr]. It
// still reads /etc/hosts first and /etc/resolv.conf's options (timeout,
// attempts, search, ndots), as Go's resolver always does, and tries each
// nameserver listed there in turn; every one of those dials reaches this
// server, so a *net.DNSError's Server field names the nameserver of
// resolv.conf, not [DNS.Addr].
//
// One change to Go's ways: a query's connection closes as soon as the
// lookup's context is canceled (when no caller waits for it any more). Go's resolver goes on waiting for an answer
// after its caller gave up (up to resolv.conf's timeout), which would
// leave its goroutines behind a test that dropped queries; here they end
// with the caller. What the caller sees is the same.
func (d *DNS) Resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var nd net.Dialer
		c, err := nd.DialContext(ctx, network, d.addr)
		if err != nil {
			return nil, err
		}
		context.AfterFunc(ctx, func() {
			// Canceled: nobody waits for the answer any more. Not on
			// a deadline, whose expiry the read itself reports.
			if errors.Is(ctx.Err(), context.Canceled) {
				c.Close()
			}
		})
		return c, nil
	}}
}

// DialContext dials address, resolving its host through [DNS.Resolver]:
// a *net.DNSError (in a *net.OpError) when the name does not resolve. Its
// signature fits http.Transport.DialContext, go-redis's Options.Dialer and
// pgx's ConnConfig.DialFunc.
func (d *DNS) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	nd := net.Dialer{Resolver: d.Resolver()}
	return nd.DialContext(ctx, network, address)
}
