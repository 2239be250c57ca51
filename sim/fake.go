package sim

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// fakeServer is the accept loop and connection table that FakeTCP and
// FakeKV share: one goroutine per connection, all ended by close.
type fakeServer struct {
	kind, name string
	ln         net.Listener

	mu       sync.Mutex
	live     map[net.Conn]struct{}
	closed   bool
	panicErr error
	wg       sync.WaitGroup
	conns    atomic.Int64
}

// listenFake registers a fake under name: its listener and endpoint.
func listenFake(n *Network, kind, name string) (net.Listener, *Endpoint, error) {
	ln, err := n.Listen(name)
	if err != nil {
		return nil, nil, fmt.Errorf("sim: %s %q: %w", kind, name, err)
	}
	return ln, ln.(*listener).ep, nil
}

func newFakeServer(kind, name string, ln net.Listener) *fakeServer {
	return &fakeServer{kind: kind, name: name, ln: ln, live: map[net.Conn]struct{}{}}
}

func (s *fakeServer) start(handle func(net.Conn)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				c.Close()
				return
			}
			s.live[c] = struct{}{}
			s.wg.Add(1)
			s.mu.Unlock()
			s.conns.Add(1)
			go s.serve(c, handle)
		}
	}()
}

func (s *fakeServer) serve(c net.Conn, handle func(net.Conn)) {
	defer s.wg.Done()
	defer func() {
		if r := recover(); r != nil {
			s.mu.Lock()
			if s.panicErr == nil {
				s.panicErr = fmt.Errorf("%w: %s %q: handler: %v", ErrPanic, s.kind, s.name, r)
			}
			s.mu.Unlock()
		}
		s.mu.Lock()
		delete(s.live, c)
		s.mu.Unlock()
		c.Close()
	}()
	handle(c)
}

// close stops accepting, closes every connection and waits for every
// goroutine of the fake.
func (s *fakeServer) close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	err := s.ln.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil // the network closed it first
	}
	for c := range s.live {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *fakeServer) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.panicErr
}

// FakeTCP is an in-process TCP server on a [Network], standing where a
// real server cannot: it runs a handler for each connection, in a
// goroutine of its own, and closes the connection when the handler
// returns. It embeds its [Endpoint], so it is the [Target] for its name.
type FakeTCP struct {
	*Endpoint
	srv *fakeServer
}

// FakeTCP starts a fake TCP server under name that calls handle for each
// connection. handle must return once its connection is closed (reads and
// writes then fail). A panic in handle is recovered and reported by
// [FakeTCP.Err]. The fake is ready on return and closed by
// [Network.Close] or [FakeTCP.Close].
func (n *Network) FakeTCP(name string, handle func(net.Conn)) (*FakeTCP, error) {
	if handle == nil {
		return nil, fmt.Errorf("sim: fake TCP %q: handle is nil", name)
	}
	ln, ep, err := listenFake(n, "fake TCP", name)
	if err != nil {
		return nil, err
	}
	f := &FakeTCP{Endpoint: ep, srv: newFakeServer("fake TCP", name, ln)}
	if err := n.addFake(f); err != nil {
		ln.Close()
		return nil, fmt.Errorf("sim: fake TCP %q: %w", name, err)
	}
	f.srv.start(handle)
	return f, nil
}

// Conns returns how many connections reached the handler.
func (f *FakeTCP) Conns() int64 { return f.srv.conns.Load() }

// Err returns the first panic of a handler, wrapping [ErrPanic], or nil.
func (f *FakeTCP) Err() error { return f.srv.err() }

// Close stops the fake: it stops listening, closes every connection and
// waits for every handler to return. It is idempotent.
func (f *FakeTCP) Close() error { return f.srv.close() }
