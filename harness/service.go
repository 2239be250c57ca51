package harness

import (
	"context"
	"fmt"
	"net"

	"github.com/shakedown/shakedown/toxics"
)

// Service is an address that already exists (an httptest.Server, a
// service the test started) fronted by a [Link]. Only link faults apply
// to it, and protocol faults if it was declared with [WithProtocol]: the
// Env does not own the process behind it.
type Service struct {
	name   string
	direct string
	link   *Link
}

// Address fronts the existing TCP address addr (host:port) with a Link
// and registers it as dependency name. Clients should use the returned
// Service's Addr. With [WithProtocol] the Link takes that protocol's
// faults too:
//
//	api := env.Address("api", srv.Listener.Addr().String(), harness.WithProtocol("http"))
//
// It stops the test with t.Fatalf on bad input.
func (e *Env) Address(name, addr string, opts ...ServiceOption) *Service {
	e.t.Helper()
	cfg, err := serviceOptions(opts)
	if err == nil {
		err = checkHostPort(addr)
	}
	if err != nil {
		e.fatalf("harness: Address(%q, %q): %v", name, addr, err)
		return nil
	}
	if err := e.claim(name); err != nil {
		e.fatalf("%v", err)
		return nil
	}
	l, err := e.newLink(name, addr, WithProtocol(cfg.protocol))
	if err != nil {
		e.release(name)
		e.fatalf("harness: Address(%q, %q): start link: %v", name, addr, err)
		return nil
	}
	s := &Service{name: name, direct: addr, link: l}
	e.add(s)
	return s
}

// Name is the dependency's name.
func (s *Service) Name() string { return s.name }

// Addr is the Link's address.
func (s *Service) Addr() string { return s.link.Addr() }

// DirectAddr is the address the Service fronts.
func (s *Service) DirectAddr() string { return s.direct }

// Link is the fault-injecting proxy in front of the Service.
func (s *Service) Link() *Link { return s.link }

// Supports reports whether k is a link fault the Link supports (protocol
// faults only of the protocol declared with [WithProtocol]); node faults
// are not supported on an address.
func (s *Service) Supports(k toxics.Kind) bool { return k.IsLink() && s.link.Supports(k) }

// Apply applies link fault f to the Link. Node faults return an error.
func (s *Service) Apply(ctx context.Context, f toxics.Fault) (func(context.Context) error, error) {
	if err := toxics.Validate(f); err != nil {
		return nil, fmt.Errorf("harness: %s: %w", s.name, err)
	}
	lf, ok := f.(toxics.LinkFault)
	if !ok {
		return nil, fmt.Errorf("harness: %s: node fault %v needs a container or process; %s is an existing address (%s) the env does not own", s.name, f, s.name, s.direct)
	}
	return s.link.Apply(ctx, lf)
}

// Ready returns nil once a TCP connection to the fronted address
// succeeds: the only check that fits any protocol.
func (s *Service) Ready(ctx context.Context) error {
	return poll(ctx, func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", s.direct)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

func (s *Service) heal(ctx context.Context) error { return s.link.Clear(ctx) }
