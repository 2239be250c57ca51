package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"

	"github.com/shakedown/shakedown/toxics"
)

// LinkOption configures a Link at start-up.
type LinkOption func(*linkConfig)

type linkConfig struct {
	seed   int64
	logger *slog.Logger
}

// WithSeed seeds every random draw the Link makes (jitter, corruption,
// slicer sizes). The default seed is 0.
func WithSeed(seed int64) LinkOption { return func(c *linkConfig) { c.seed = seed } }

// WithLogger sets the logger of the Link. The default discards everything.
func WithLogger(l *slog.Logger) LinkOption {
	return func(c *linkConfig) {
		if l != nil {
			c.logger = l
		}
	}
}

// LinkStats counts what went through a Link since it started.
type LinkStats struct {
	Accepted  int64
	Active    int64
	Refused   int64
	BytesUp   int64
	BytesDown int64
}

// Link is a fault-injecting TCP proxy in front of one upstream.
// (Skeleton: pass-through only; faults are not implemented yet.)
type Link struct {
	name     string
	mu       sync.Mutex
	upstream string
	ln       net.Listener
	addr     string
	conns    map[net.Conn]struct{}
	closed   bool
	wg       sync.WaitGroup
}

// NewLink starts a Link on 127.0.0.1:0 in front of upstream, closed by t.Cleanup.
func NewLink(t testing.TB, name, upstream string, opts ...LinkOption) *Link {
	t.Helper()
	l, err := StartLink(name, upstream, opts...)
	if err != nil {
		t.Fatalf("%v", err)
		return nil
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// StartLink starts a Link; the caller must Close it.
func StartLink(name, upstream string, opts ...LinkOption) (*Link, error) {
	if _, _, err := net.SplitHostPort(upstream); err != nil {
		return nil, fmt.Errorf("harness: link %q: upstream %q: %w", name, upstream, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("harness: link %q: listen: %w", name, err)
	}
	l := &Link{name: name, upstream: upstream, ln: ln, addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	l.wg.Add(1)
	go l.accept()
	return l, nil
}

func (l *Link) accept() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		up := l.upstream
		l.mu.Unlock()
		u, err := net.Dial("tcp", up)
		if err != nil {
			c.Close()
			continue
		}
		l.mu.Lock()
		l.conns[c], l.conns[u] = struct{}{}, struct{}{}
		l.mu.Unlock()
		l.wg.Add(2)
		go func() { defer l.wg.Done(); io.Copy(u, c); u.Close() }()
		go func() { defer l.wg.Done(); io.Copy(c, u); c.Close() }()
	}
}

// Name returns the Link's name.
func (l *Link) Name() string { return l.name }

// Addr returns the address clients dial.
func (l *Link) Addr() string { return l.addr }

// Upstream returns the current upstream address.
func (l *Link) Upstream() string { l.mu.Lock(); defer l.mu.Unlock(); return l.upstream }

// SetUpstream re-points new connections to addr.
func (l *Link) SetUpstream(addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("harness: link %q: upstream %q: %w", l.name, addr, err)
	}
	l.mu.Lock()
	l.upstream = addr
	l.mu.Unlock()
	return nil
}

// Supports reports whether k is a link fault kind.
func (l *Link) Supports(k toxics.Kind) bool { return k.IsLink() }

// Apply starts f on the Link.
func (l *Link) Apply(ctx context.Context, f toxics.Fault) (func(context.Context) error, error) {
	return nil, errors.New("harness: link: Apply not implemented yet")
}

// Clear reverts every active fault.
func (l *Link) Clear(ctx context.Context) error { return nil }

// Active returns the faults currently applied.
func (l *Link) Active() []toxics.Fault { return nil }

// Stats returns counters.
func (l *Link) Stats() LinkStats { return LinkStats{} }

// Close closes the Link.
func (l *Link) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.ln.Close()
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
	return nil
}
