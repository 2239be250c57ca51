package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/shakedown/shakedown/toxics"
)

// Timing claims in these tests are lower bounds ("a 100 ms latency adds at
// least 100 ms"), which load cannot break, or upper bounds that leave
// three orders of magnitude over a loopback round trip (about 50 µs).

// ioDeadline bounds every read and write of a test, so a broken Link fails
// the test instead of hanging it.
const ioDeadline = 20 * time.Second

// serveTCP runs an in-process TCP server on 127.0.0.1:0 that calls handle
// for each connection; t.Cleanup stops it and waits for its goroutines.
func serveTCP(t testing.TB, handle func(c *net.TCPConn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
					_ = c.Close()
				}()
				_ = c.SetDeadline(time.Now().Add(ioDeadline))
				handle(c.(*net.TCPConn))
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// echo copies everything back, and half-closes when the client does.
func echo(c *net.TCPConn) {
	_, _ = io.Copy(c, c)
	_ = c.CloseWrite()
}

// sendOnByte answers every byte it receives with n bytes of a pattern.
func sendOnByte(n int) func(c *net.TCPConn) {
	return func(c *net.TCPConn) {
		buf := make([]byte, 1)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
			if _, err := c.Write(pattern(n)); err != nil {
				return
			}
		}
	}
}

func pattern(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i * 7)
	}
	return p
}

func dial(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(ioDeadline)))
	return c.(*net.TCPConn)
}

// ping sends one byte through an echo and returns the round trip.
func ping(t testing.TB, c net.Conn, b byte) time.Duration {
	t.Helper()
	start := time.Now()
	_, err := c.Write([]byte{b})
	require.NoError(t, err)
	got := make([]byte, 1)
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	require.Equal(t, b, got[0], "echoed byte")
	return time.Since(start)
}

// expectReset dials addr and expects the connection to be reset: at
// connect time already (on loopback the RST can beat the dial's return) or
// on the first read.
func expectReset(t testing.TB, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err == nil {
		defer c.Close()
		require.NoError(t, c.SetDeadline(time.Now().Add(ioDeadline)))
		_, err = c.Read(make([]byte, 1))
	}
	require.ErrorIs(t, err, syscall.ECONNRESET)
}

// readNothing asserts that nothing arrives on c within d.
func readNothing(t testing.TB, c net.Conn, d time.Duration) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(d)))
	n, err := c.Read(make([]byte, 64))
	require.Equal(t, 0, n, "bytes read")
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(ioDeadline)))
}

// armedFaults returns the faults l's slots are armed with.
func armedFaults(l *Link) []string {
	l.faultMu.Lock()
	defer l.faultMu.Unlock()
	var out []string
	for _, list := range l.slots {
		for _, s := range list {
			if cfg := s.state.Load().cfg; cfg != nil {
				out = append(out, cfg.fault.String())
			}
		}
	}
	return out
}

func apply(t testing.TB, l *Link, f toxics.Fault) func() {
	t.Helper()
	revert, err := l.Apply(context.Background(), f)
	require.NoError(t, err)
	return func() {
		t.Helper()
		require.NoError(t, revert(context.Background()))
	}
}

// echoLink starts an echo server, a Link in front of it, and one client
// connection that has carried a byte, so it is live in the Link's table.
func echoLink(t testing.TB, opts ...LinkOption) (*Link, *net.TCPConn) {
	t.Helper()
	l := NewLink(t, "echo", serveTCP(t, echo), opts...)
	c := dial(t, l.Addr())
	ping(t, c, 'a')
	return l, c
}

// A Link is a target of package sim's Runner. The interface is repeated
// here because harness does not import sim.
var _ interface {
	Name() string
	Supports(k toxics.Kind) bool
	Apply(ctx context.Context, f toxics.Fault) (revert func(context.Context) error, err error)
} = (*Link)(nil)

func TestLinkPassThrough(t *testing.T) {
	up := serveTCP(t, echo)
	l := NewLink(t, "db", up)
	require.Equal(t, "db", l.Name())
	require.Equal(t, up, l.Upstream())
	require.True(t, strings.HasPrefix(l.Addr(), "127.0.0.1:"), l.Addr())
	for _, k := range toxics.LinkKinds() {
		require.True(t, l.Supports(k), k)
	}
	for _, k := range toxics.NodeKinds() {
		require.False(t, l.Supports(k), k)
	}
	c := dial(t, l.Addr())
	msg := bytes.Repeat([]byte("shakedown"), 100_000)
	go func() { _, _ = c.Write(msg) }()
	got := make([]byte, len(msg))
	_, err := io.ReadFull(c, got)
	require.NoError(t, err)
	require.Equal(t, msg, got)
	require.Empty(t, l.Active())
}

// A client that half-closes still gets the answer to what it sent.
func TestLinkHalfClose(t *testing.T) {
	up := serveTCP(t, func(c *net.TCPConn) {
		got, err := io.ReadAll(c)
		if err == nil {
			_, _ = c.Write(append([]byte("got "), got...))
		}
	})
	l := NewLink(t, "half", up)
	c := dial(t, l.Addr())
	_, err := c.Write([]byte("hello"))
	require.NoError(t, err)
	require.NoError(t, c.CloseWrite())
	got, err := io.ReadAll(c)
	require.NoError(t, err)
	require.Equal(t, "got hello", string(got))
}

func TestLinkLatency(t *testing.T) {
	const delay = 100 * time.Millisecond
	for _, tc := range []struct {
		dir  toxics.Direction
		want time.Duration // least round trip
	}{
		{toxics.Upstream, delay},
		{toxics.Downstream, delay},
		{toxics.Both, 2 * delay},
	} {
		t.Run(tc.dir.String(), func(t *testing.T) {
			l, c := echoLink(t)
			revert := apply(t, l, toxics.Latency{Delay: delay, Direction: tc.dir})
			require.GreaterOrEqual(t, ping(t, c, 'b'), tc.want, "round trip on a live connection")
			fresh := dial(t, l.Addr())
			require.GreaterOrEqual(t, ping(t, fresh, 'c'), tc.want, "round trip on a new connection")
			revert()
			require.Less(t, ping(t, c, 'd'), delay, "round trip after revert")
		})
	}
}

func TestLinkLatencyJitter(t *testing.T) {
	const delay, jitter = 60 * time.Millisecond, 20 * time.Millisecond
	l, c := echoLink(t, WithSeed(7))
	defer apply(t, l, toxics.Latency{Delay: delay, Jitter: jitter, Direction: toxics.Downstream})()
	for i := range 5 {
		require.GreaterOrEqual(t, ping(t, c, byte(i)), delay-jitter)
	}
}

// The draws of a toxic depend only on the Link's seed and the fault's
// place in the order of Apply calls.
func TestLinkSeededDraws(t *testing.T) {
	lat := toxics.Latency{Delay: time.Second, Jitter: 500 * time.Millisecond}
	draws := func(seed int64, id uint64, dir toxics.Direction) []time.Duration {
		r := seededRand(faultSeed(seed, id, dir))
		out := make([]time.Duration, 20)
		for i := range out {
			out[i] = drawDelay(lat, r)
			require.GreaterOrEqual(t, out[i], 500*time.Millisecond)
			require.LessOrEqual(t, out[i], 1500*time.Millisecond)
		}
		return out
	}
	down := toxics.Downstream
	require.Equal(t, draws(1, 0, down), draws(1, 0, down), "same seed, same fault")
	require.NotEqual(t, draws(1, 0, down), draws(2, 0, down), "another seed")
	require.NotEqual(t, draws(1, 0, down), draws(1, 1, down), "another fault")
	require.NotEqual(t, draws(1, 0, down), draws(1, 0, toxics.Upstream), "another direction")

	sl := toxics.Slicer{AverageSize: 10, SizeVariation: 4}
	a, b := seededRand(3), seededRand(3)
	for range 100 {
		n := drawSliceSize(sl, a)
		require.Equal(t, n, drawSliceSize(sl, b))
		require.True(t, n >= 6 && n <= 14, "slice size %d", n)
	}
}

func TestLinkBandwidth(t *testing.T) {
	const size, rate = 10_000, 20_000
	l := NewLink(t, "bw", serveTCP(t, sendOnByte(size)))
	c := dial(t, l.Addr())
	get := func() time.Duration {
		start := time.Now()
		_, err := c.Write([]byte{1})
		require.NoError(t, err)
		got := make([]byte, size)
		_, err = io.ReadFull(c, got)
		require.NoError(t, err)
		require.Equal(t, pattern(size), got)
		return time.Since(start)
	}
	get()
	revert := apply(t, l, toxics.Bandwidth{Rate: rate, Direction: toxics.Downstream})
	// 10 000 bytes at 20 000 B/s: the first 50 ms piece goes at once, the
	// rest takes 450 ms.
	require.GreaterOrEqual(t, get(), 400*time.Millisecond)
	revert()
	require.Less(t, get(), 400*time.Millisecond)
}

func TestLinkBandwidthZeroStallsAndHeals(t *testing.T) {
	l, c := echoLink(t)
	revert := apply(t, l, toxics.Bandwidth{Rate: 0})
	_, err := c.Write([]byte("held"))
	require.NoError(t, err)
	readNothing(t, c, 200*time.Millisecond)
	revert()
	got := make([]byte, 4)
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	require.Equal(t, "held", string(got), "buffered data delivered on revert")
	ping(t, c, 'z')
}

func TestLinkSlicer(t *testing.T) {
	const size = 1000
	l := NewLink(t, "slicer", serveTCP(t, sendOnByte(size)), WithSeed(5))
	c := dial(t, l.Addr())
	get := func() (reads int, took time.Duration) {
		start := time.Now()
		_, err := c.Write([]byte{1})
		require.NoError(t, err)
		var got []byte
		buf := make([]byte, 4096)
		for len(got) < size {
			n, err := c.Read(buf)
			require.NoError(t, err)
			got = append(got, buf[:n]...)
			reads++
		}
		require.Equal(t, pattern(size), got)
		return reads, time.Since(start)
	}
	revert := apply(t, l, toxics.Slicer{AverageSize: 100, SizeVariation: 20, Delay: 20 * time.Millisecond, Direction: toxics.Downstream})
	reads, took := get()
	// At least 1000/120 = 9 slices, 20 ms apart.
	require.GreaterOrEqual(t, took, 8*20*time.Millisecond)
	require.Greater(t, reads, 1)
	revert()
	_, took = get()
	require.Less(t, took, 160*time.Millisecond)
}

func TestLinkSlowClose(t *testing.T) {
	const delay = 200 * time.Millisecond
	// The upstream closes the connection when it gets a byte.
	l := NewLink(t, "slowclose", serveTCP(t, func(c *net.TCPConn) { _, _ = c.Read(make([]byte, 1)) }))
	closeAfterByte := func(c *net.TCPConn) time.Duration {
		start := time.Now()
		_, err := c.Write([]byte{1})
		require.NoError(t, err)
		n, err := c.Read(make([]byte, 1))
		require.Equal(t, 0, n)
		require.ErrorIs(t, err, io.EOF)
		return time.Since(start)
	}
	c := dial(t, l.Addr())
	revert := apply(t, l, toxics.SlowClose{Delay: delay, Direction: toxics.Downstream})
	require.GreaterOrEqual(t, closeAfterByte(c), delay)
	revert()
	require.Less(t, closeAfterByte(dial(t, l.Addr())), delay)
}

func TestLinkCorrupt(t *testing.T) {
	msg := pattern(4096)
	roundTrip := func(c net.Conn) []byte {
		_, err := c.Write(msg)
		require.NoError(t, err)
		got := make([]byte, len(msg))
		_, err = io.ReadFull(c, got)
		require.NoError(t, err)
		return got
	}

	l, c := echoLink(t, WithSeed(11))
	revert := apply(t, l, toxics.Corrupt{Probability: 1, Direction: toxics.Downstream})
	got := roundTrip(c)
	for i := range msg {
		require.Equal(t, 1, bits.OnesCount8(msg[i]^got[i]), "byte %d: sent %08b, got %08b", i, msg[i], got[i])
	}
	revert()
	require.Equal(t, msg, roundTrip(c), "after revert")

	// One seed, one fault: the same bits flip, whatever the chunking.
	corrupted := func(seed int64) []byte {
		l, c := echoLink(t, WithSeed(seed))
		defer apply(t, l, toxics.Corrupt{Probability: 0.05, Direction: toxics.Downstream})()
		return roundTrip(c)
	}
	a, b, other := corrupted(3), corrupted(3), corrupted(4)
	require.NotEqual(t, msg, a)
	require.Equal(t, a, b, "same seed")
	require.NotEqual(t, a, other, "another seed")
}

func TestLinkDataLimit(t *testing.T) {
	const limit, size = 100, 300
	l := NewLink(t, "limit", serveTCP(t, sendOnByte(size)))
	c := dial(t, l.Addr())
	revert := apply(t, l, toxics.DataLimit{Bytes: limit, Direction: toxics.Downstream})
	_, err := c.Write([]byte{1})
	require.NoError(t, err)
	got, err := io.ReadAll(c)
	require.NoError(t, err, "the connection ends with a clean close")
	require.Equal(t, pattern(size)[:limit], got)
	revert()

	fresh := dial(t, l.Addr())
	_, err = fresh.Write([]byte{1})
	require.NoError(t, err)
	got = make([]byte, size)
	_, err = io.ReadFull(fresh, got)
	require.NoError(t, err)
	require.Equal(t, pattern(size), got)
}

// readClosed reads until the connection ends and returns how many bytes
// arrived; the end must be a close, not the test's deadline.
func readClosed(t testing.TB, c net.Conn) int {
	t.Helper()
	var n int
	buf := make([]byte, 4096)
	for {
		m, err := c.Read(buf)
		n += m
		if err != nil {
			require.False(t, errors.Is(err, os.ErrDeadlineExceeded), "the connection was not closed")
			return n
		}
	}
}

func TestLinkTimeout(t *testing.T) {
	const after = 300 * time.Millisecond
	l, c := echoLink(t)
	start := time.Now()
	revert := apply(t, l, toxics.Timeout{After: after})

	// Data keeps flowing towards the Link; the timer does not restart.
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		buf := make([]byte, 1024)
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	require.Equal(t, 0, readClosed(t, c), "bytes that got through")
	require.GreaterOrEqual(t, time.Since(start), after)
	_ = c.Close()
	<-writerDone

	// A connection opened during the fault times out After it opened.
	opened := time.Now()
	fresh := dial(t, l.Addr())
	_, err := fresh.Write([]byte{1})
	require.NoError(t, err)
	require.Equal(t, 0, readClosed(t, fresh))
	require.GreaterOrEqual(t, time.Since(opened), after)

	revert()
	ping(t, dial(t, l.Addr()), 'x')
}

func TestLinkTimeoutRevertedEarly(t *testing.T) {
	l, c := echoLink(t)
	apply(t, l, toxics.Timeout{After: time.Hour})()
	ping(t, c, 'y')
}

func TestLinkBlackhole(t *testing.T) {
	l, c := echoLink(t)
	revert := apply(t, l, toxics.Blackhole{})
	_, err := c.Write([]byte("x"))
	require.NoError(t, err)
	readNothing(t, c, 200*time.Millisecond)
	revert()
	ping(t, c, 'y') // same connection; "x" is lost
}

func TestLinkBlackholeOneWay(t *testing.T) {
	got := make(chan byte, 16)
	up := serveTCP(t, func(c *net.TCPConn) {
		buf := make([]byte, 1)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
			got <- buf[0]
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
	l := NewLink(t, "oneway", up)
	c := dial(t, l.Addr())
	ping(t, c, 'a')
	require.Equal(t, byte('a'), <-got)
	revert := apply(t, l, toxics.Blackhole{Direction: toxics.Downstream})
	_, err := c.Write([]byte("b"))
	require.NoError(t, err)
	require.Equal(t, byte('b'), <-got, "upstream still receives")
	readNothing(t, c, 200*time.Millisecond)
	revert()
	ping(t, c, 'c')
	require.Equal(t, byte('c'), <-got)
}

func TestLinkReset(t *testing.T) {
	l, c := echoLink(t)
	revert := apply(t, l, toxics.Reset{})
	_, err := c.Read(make([]byte, 1))
	require.ErrorIs(t, err, syscall.ECONNRESET, "live connection")

	expectReset(t, l.Addr()) // a new connection
	require.Equal(t, int64(1), l.Stats().Refused)

	revert()
	ping(t, dial(t, l.Addr()), 'r')
}

func TestLinkDown(t *testing.T) {
	l, c := echoLink(t)
	addr := l.Addr()
	revert := apply(t, l, toxics.Down{})
	require.Equal(t, 0, readClosed(t, c), "live connection closed")
	_, err := net.Dial("tcp", addr)
	require.ErrorIs(t, err, syscall.ECONNREFUSED)

	revert()
	require.Equal(t, addr, l.Addr())
	ping(t, dial(t, addr), 'u')

	// Two Down faults: the Link listens again when the last one ends.
	r1 := apply(t, l, toxics.Down{})
	r2 := apply(t, l, toxics.Down{})
	r1()
	_, err = net.Dial("tcp", addr)
	require.ErrorIs(t, err, syscall.ECONNREFUSED)
	r2()
	ping(t, dial(t, addr), 'v')
}

func TestLinkApplyRejects(t *testing.T) {
	l, _ := echoLink(t)
	for _, tc := range []struct {
		name  string
		fault toxics.Fault
		want  string // in the error, besides the link's name
	}{
		{"nil", nil, "fault is nil"},
		{"node fault", toxics.Crash{}, "crash is a node fault"},
		{"another node fault", toxics.Pause{}, "pause is a node fault"},
		{"negative rate", toxics.Bandwidth{Rate: -1}, "bandwidth.rate = -1"},
		{"slicer size 0", toxics.Slicer{AverageSize: 0}, "slicer.average_size = 0"},
		{"variation too big", toxics.Slicer{AverageSize: 4, SizeVariation: 4}, "slicer.size_variation = 4"},
		{"jitter over delay", toxics.Latency{Delay: 10 * time.Millisecond, Jitter: 20 * time.Millisecond}, "latency.jitter = 20ms"},
		{"zero delay", toxics.Latency{}, "latency.delay = 0s"},
		{"probability 0", toxics.Corrupt{}, "corrupt.probability = 0"},
		{"negative timeout", toxics.Timeout{After: -time.Second}, "timeout.after = -1s"},
		{"negative limit", toxics.DataLimit{Bytes: -1}, "data_limit.bytes = -1"},
		{"zero slow close", toxics.SlowClose{}, "slow_close.delay = 0s"},
		{"bad direction", toxics.Blackhole{Direction: 9}, "blackhole.direction = 9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			revert, err := l.Apply(context.Background(), tc.fault)
			require.Error(t, err)
			require.Nil(t, revert)
			require.Contains(t, err.Error(), `link "echo"`)
			require.Contains(t, err.Error(), tc.want)
			require.Empty(t, l.Active())
			require.Empty(t, armedFaults(l), "nothing reached the pipeline")
			require.Len(t, l.proxy.Toxics.GetToxicArray(), 2, "Toxiproxy holds only the Link's first two slots")
		})
	}
}

func TestLinkApplyCancelled(t *testing.T) {
	l, _ := echoLink(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := l.Apply(ctx, toxics.Blackhole{})
	require.ErrorIs(t, err, context.Canceled)
	require.Empty(t, l.Active())
}

func TestLinkRevertTwice(t *testing.T) {
	l, c := echoLink(t)
	revert, err := l.Apply(context.Background(), toxics.Blackhole{})
	require.NoError(t, err)
	require.Equal(t, []toxics.Fault{toxics.Blackhole{}}, l.Active())
	require.NoError(t, revert(context.Background()))
	require.NoError(t, revert(context.Background()))
	require.Empty(t, l.Active())
	ping(t, c, 'k')
}

func TestLinkCombinedFaults(t *testing.T) {
	const delay = 100 * time.Millisecond
	l, c := echoLink(t)
	revertLatency := apply(t, l, toxics.Latency{Delay: delay, Direction: toxics.Downstream})
	defer apply(t, l, toxics.Corrupt{Probability: 1, Direction: toxics.Upstream})()
	require.Len(t, l.Active(), 2)

	start := time.Now()
	_, err := c.Write([]byte{0})
	require.NoError(t, err)
	got := make([]byte, 1)
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(start), delay)
	require.Equal(t, 1, bits.OnesCount8(got[0]), "one bit flipped")

	revertLatency()
	require.Equal(t, []toxics.Fault{toxics.Corrupt{Probability: 1, Direction: toxics.Upstream}}, l.Active())
}

func TestLinkClear(t *testing.T) {
	l, _ := echoLink(t)
	for _, f := range []toxics.Fault{
		toxics.Latency{Delay: time.Hour},
		toxics.Bandwidth{Rate: 0},
		toxics.Blackhole{Direction: toxics.Upstream},
		toxics.Reset{},
		toxics.Down{},
	} {
		_, err := l.Apply(context.Background(), f)
		require.NoError(t, err)
	}
	require.Len(t, l.Active(), 5)
	require.NoError(t, l.Clear(context.Background()))
	require.Empty(t, l.Active())
	require.Empty(t, armedFaults(l))
	ping(t, dial(t, l.Addr()), 'c')
}

func TestLinkSetUpstream(t *testing.T) {
	tagged := func(tag string) func(*net.TCPConn) {
		return func(c *net.TCPConn) {
			if _, err := c.Write([]byte(tag)); err == nil {
				echo(c)
			}
		}
	}
	a, b := serveTCP(t, tagged("A")), serveTCP(t, tagged("B"))
	l := NewLink(t, "moving", a)
	greeting := func(c net.Conn) string {
		buf := make([]byte, 1)
		_, err := io.ReadFull(c, buf)
		require.NoError(t, err)
		return string(buf)
	}
	old := dial(t, l.Addr())
	require.Equal(t, "A", greeting(old))

	require.NoError(t, l.SetUpstream(b))
	require.Equal(t, b, l.Upstream())
	require.Equal(t, "B", greeting(dial(t, l.Addr())))
	ping(t, old, 'o') // the live connection keeps its upstream

	for _, bad := range []string{"", "nohost", ":80", "127.0.0.1:0", "127.0.0.1:99999", "127.0.0.1:http"} {
		err := l.SetUpstream(bad)
		require.Error(t, err, bad)
		require.Contains(t, err.Error(), `link "moving"`)
	}
	require.Equal(t, b, l.Upstream())
}

func TestLinkUpstreamUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gone := ln.Addr().String()
	require.NoError(t, ln.Close())

	l := NewLink(t, "nowhere", gone)
	expectReset(t, l.Addr())
	require.Equal(t, LinkStats{Accepted: 1, Refused: 1}, l.Stats())
}

func TestLinkStats(t *testing.T) {
	up := serveTCP(t, echo)
	l, err := StartLink("stats", up)
	require.NoError(t, err)
	c1, c2 := dial(t, l.Addr()), dial(t, l.Addr())
	ping(t, c1, 1)
	ping(t, c2, 2)
	_, err = c1.Write([]byte("hello"))
	require.NoError(t, err)
	_, err = io.ReadFull(c1, make([]byte, 5))
	require.NoError(t, err)
	s := l.Stats()
	require.Equal(t, int64(2), s.Accepted)
	require.Equal(t, int64(2), s.Active)
	require.Equal(t, int64(0), s.Refused)

	require.NoError(t, l.Close())
	// Close waited for every pipeline, so the byte counts are final.
	s = l.Stats()
	require.Positive(t, s.AnswerTime, "three exchanges, each answered")
	s.AnswerTime = 0
	require.Equal(t, LinkStats{Accepted: 2, BytesUp: 7, BytesDown: 7, Exchanges: 3}, s)
}

// Close with held data and live faults ends every goroutine of the Link.
func TestLinkCloseLeavesNothing(t *testing.T) {
	// Registered first, so it runs after every other cleanup of the test.
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	up := serveTCP(t, echo)
	before := runtime.NumGoroutine()
	l, err := StartLink("closing", up)
	require.NoError(t, err)
	var conns []*net.TCPConn
	for range 4 {
		c := dial(t, l.Addr())
		ping(t, c, 'p')
		conns = append(conns, c)
	}
	for _, f := range []toxics.Fault{
		toxics.Bandwidth{Rate: 0, Direction: toxics.Upstream},
		toxics.Latency{Delay: time.Hour, Direction: toxics.Downstream},
		toxics.Timeout{After: time.Hour},
		toxics.SlowClose{Delay: time.Hour},
	} {
		_, err := l.Apply(context.Background(), f)
		require.NoError(t, err)
	}
	for _, c := range conns {
		_, err := c.Write([]byte("held back"))
		require.NoError(t, err)
	}
	require.Greater(t, runtime.NumGoroutine(), before)
	require.NoError(t, l.Close())
	require.NoError(t, l.Close(), "second Close")
	require.Equal(t, int64(0), l.Stats().Active)
	require.Empty(t, l.Active())

	_, err = l.Apply(context.Background(), toxics.Blackhole{})
	require.ErrorContains(t, err, "closed")
	require.ErrorContains(t, l.SetUpstream(up), "closed")
}

func TestLinkRevertAfterClose(t *testing.T) {
	l, err := StartLink("gone", serveTCP(t, echo))
	require.NoError(t, err)
	revert, err := l.Apply(context.Background(), toxics.Latency{Delay: time.Second})
	require.NoError(t, err)
	require.NoError(t, l.Close())
	require.NoError(t, revert(context.Background()))
}

func TestStartLinkRejects(t *testing.T) {
	for _, tc := range []struct{ name, upstream, want string }{
		{"", "127.0.0.1:1", "name is empty"},
		{"db", "localhost", `link "db": upstream "localhost" is not host:port`},
		{"db", ":5432", `link "db": upstream ":5432" has no host`},
		{"db", "127.0.0.1:0", `port "0" is not a number in 1..65535`},
		{"db", "127.0.0.1:70000", `port "70000"`},
	} {
		l, err := StartLink(tc.name, tc.upstream)
		require.Nil(t, l)
		require.ErrorContains(t, err, tc.want)
	}
}

// fatalTB records Fatalf and ends the goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper()        {}
func (f *fatalTB) Cleanup(func()) { panic("no cleanup expected after a failure") }
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestNewLinkFailsTheTest(t *testing.T) {
	tb := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		NewLink(tb, "db", "not an address")
	}()
	<-done
	require.Contains(t, tb.msg, `link "db": upstream "not an address"`)
}

// floodPattern is the stream floodUntilStalled writes: byte i is i mod 251.
func floodPattern(off int64, p []byte) {
	for i := range p {
		p[i] = byte((off + int64(i)) % 251)
	}
}

// floodUntilStalled returns an upstream handler that writes floodPattern
// to each connection as fast as it can. Once a write makes no progress for
// 200 ms, every buffer between it and the client is full and the Link's
// writer to the client is blocked: it says so on stalled, once, and floods
// on (refilling whatever a fault drains) until the connection closes.
func floodUntilStalled(stalled chan<- struct{}) func(*net.TCPConn) {
	return func(c *net.TCPConn) {
		buf := make([]byte, 64<<10)
		var off int64
		said := false
		for {
			floodPattern(off, buf)
			_ = c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
			n, err := c.Write(buf)
			off += int64(n)
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				if !said {
					stalled <- struct{}{}
					said = true
				}
			case err != nil:
				return
			}
		}
	}
}

// stalledClients starts a flooding upstream, a Link, and n clients that
// read one byte and then stop reading; it returns once every pipeline to
// them is blocked.
func stalledClients(t *testing.T, n int) (*Link, []*net.TCPConn) {
	t.Helper()
	stalled := make(chan struct{}, n)
	l := NewLink(t, "stalled", serveTCP(t, floodUntilStalled(stalled)))
	var conns []*net.TCPConn
	for range n {
		c := dial(t, l.Addr())
		_, err := io.ReadFull(c, make([]byte, 1))
		require.NoError(t, err)
		conns = append(conns, c)
	}
	for range n {
		<-stalled
	}
	return l, conns
}

// within fails the test if fn does not return within d, or fails.
func within(t *testing.T, d time.Duration, what string, fn func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		require.NoError(t, err, what)
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}

// Clients that stop reading while the upstream floods them hold up neither
// Apply nor revert, of any fault.
func TestLinkStalledClientsHoldNothingUp(t *testing.T) {
	l, _ := stalledClients(t, 2)
	ctx := context.Background()
	for _, f := range []toxics.Fault{
		toxics.Latency{Delay: time.Millisecond},
		toxics.Bandwidth{Rate: 0},
		toxics.Slicer{AverageSize: 100},
		toxics.SlowClose{Delay: time.Second},
		toxics.Corrupt{Probability: 0.5},
		toxics.DataLimit{Bytes: 1 << 40},
		toxics.Timeout{After: time.Hour},
		toxics.Blackhole{},
	} {
		// A generous bound: both return in microseconds.
		within(t, 5*time.Second, "Apply and revert of "+f.String(), func() error {
			revert, err := l.Apply(ctx, f)
			if err != nil {
				return err
			}
			return revert(ctx)
		})
	}
	require.Empty(t, l.Active())
}

// Reverting faults that hold data back (delayed, throttled, sliced) on a
// stalled client keeps its stream exact: nothing lost, nothing reordered.
func TestLinkRevertKeepsTheStream(t *testing.T) {
	l, conns := stalledClients(t, 1)
	c := conns[0]
	ctx := context.Background()
	var reverts []func(context.Context) error
	for _, f := range []toxics.Fault{
		toxics.Latency{Delay: 50 * time.Millisecond, Direction: toxics.Downstream},
		toxics.Bandwidth{Rate: 0, Direction: toxics.Downstream},
		toxics.Slicer{AverageSize: 1000, SizeVariation: 500, Direction: toxics.Downstream},
	} {
		revert, err := l.Apply(ctx, f)
		require.NoError(t, err)
		reverts = append(reverts, revert)
	}
	for _, revert := range reverts {
		require.NoError(t, revert(ctx))
	}
	// The client read one byte before it stalled.
	got := make([]byte, 16<<20)
	_, err := io.ReadFull(c, got)
	require.NoError(t, err)
	want := make([]byte, len(got))
	floodPattern(1, want)
	require.True(t, bytes.Equal(want, got), "the stream has a gap or is out of order")
}

// Clients come and go while faults of every kind come and go: nothing
// deadlocks, panics or leaks (TestMain checks goroutines), and Close ends
// it all.
func TestLinkChurn(t *testing.T) {
	l, err := StartLink("churn", serveTCP(t, echo), WithSeed(1))
	require.NoError(t, err)
	faults := []toxics.Fault{
		toxics.Latency{Delay: time.Millisecond, Jitter: time.Millisecond},
		toxics.Bandwidth{Rate: 0, Direction: toxics.Upstream},
		toxics.Bandwidth{Rate: 100_000},
		toxics.Slicer{AverageSize: 2, SizeVariation: 1, Delay: time.Millisecond},
		toxics.SlowClose{Delay: 5 * time.Millisecond},
		toxics.Corrupt{Probability: 0.5},
		toxics.DataLimit{Bytes: 3},
		toxics.Timeout{After: 2 * time.Millisecond},
		toxics.Blackhole{Direction: toxics.Downstream},
		toxics.Reset{},
		toxics.Down{},
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 8)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.DialTimeout("tcp", l.Addr(), time.Second)
				if err != nil {
					continue // Down
				}
				_ = c.SetDeadline(time.Now().Add(20 * time.Millisecond))
				for range 3 {
					if _, err := c.Write([]byte{byte(w), byte(i)}); err != nil {
						break
					}
					if _, err := io.ReadFull(c, buf[:2]); err != nil {
						break
					}
				}
				if i%2 == 0 {
					_ = c.(*net.TCPConn).CloseWrite()
					_, _ = io.Copy(io.Discard, c)
				}
				_ = c.Close()
			}
		}()
	}
	ctx := context.Background()
	var reverts []func(context.Context) error
	buf1 := make([]byte, 1)
	for i := range 300 {
		f := faults[(i*7)%len(faults)]
		revert, err := l.Apply(ctx, f)
		require.NoError(t, err)
		reverts = append(reverts, revert)
		if len(reverts) > 3 {
			require.NoError(t, reverts[0](ctx))
			reverts = reverts[1:]
		}
		// Let some traffic through between changes, without sleeping:
		// a round trip on a fresh connection, which may well fail.
		if c, err := net.DialTimeout("tcp", l.Addr(), time.Second); err == nil {
			_ = c.SetDeadline(time.Now().Add(5 * time.Millisecond))
			_, _ = c.Write([]byte{1})
			_, _ = c.Read(buf1)
			_ = c.Close()
		}
	}
	require.NoError(t, l.Clear(ctx))
	close(stop)
	wg.Wait()
	require.NoError(t, l.Close())
	require.Equal(t, int64(0), l.Stats().Active)
	require.Greater(t, l.Stats().Accepted, int64(300))
}

// A fault is in force for the very next byte once Apply returns, however
// the Link's goroutines happen to be scheduled. (This once failed about
// one time in 10 000 on a loaded machine; hence the many rounds.)
func TestLinkInForceOnReturn(t *testing.T) {
	const delay = time.Millisecond
	l, c := echoLink(t)
	ctx := context.Background()
	for i := range 500 {
		revert, err := l.Apply(ctx, toxics.Latency{Delay: delay, Direction: toxics.Downstream})
		require.NoError(t, err)
		require.GreaterOrEqual(t, ping(t, c, byte(i)), delay, "round %d: the byte right after Apply", i)
		require.NoError(t, revert(ctx))
		ping(t, c, byte(i)+128)
	}
}

// A connection a fault closes ends with a FIN, whatever the client sent
// that the Link had not read yet: the client reads EOF, never ECONNRESET.
// (Closing a socket with unread data makes the kernel send an RST instead
// of the FIN; the Link shuts down its writing side first, so the FIN comes
// first either way.)
func TestLinkClosesWithEOFWhileTheClientSends(t *testing.T) {
	t.Run("a live connection, flooded", func(t *testing.T) {
		l, c := echoLink(t)
		go func() {
			buf := make([]byte, 64<<10)
			for {
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		}()
		apply(t, l, toxics.Timeout{After: 20 * time.Millisecond})
		_, err := io.Copy(io.Discard, c)
		require.NoError(t, err, "EOF (io.Copy returns nil for it), not a reset")
	})
	t.Run("fresh connections, timeout(0)", func(t *testing.T) {
		l := NewLink(t, "echo", serveTCP(t, echo))
		apply(t, l, toxics.Timeout{After: 0})
		payload := bytes.Repeat([]byte("x"), 32<<10)
		for range 100 {
			c := dial(t, l.Addr())
			_, err := c.Write(payload)
			if err == nil {
				_ = c.CloseWrite()
				var got []byte
				got, err = io.ReadAll(c)
				require.Empty(t, got)
			}
			require.NoError(t, err, "EOF, not a reset")
			c.Close()
		}
	})
}

// The Link times its upstream's answers (LinkStats.Exchanges, AnswerTime,
// Waiting): from a request's bytes ready for the upstream to its answer's
// first bytes ready for the client, on the fast path and on the pipeline
// alike; a greeting nobody asked for is no answer, and a request whose
// connection closes unanswered counts as answered at the close.
func TestLinkTimesAnswers(t *testing.T) {
	const slow = 30 * time.Millisecond
	up := serveTCP(t, func(c *net.TCPConn) {
		if _, err := c.Write([]byte("hi")); err != nil { // a greeting
			return
		}
		buf := make([]byte, 1)
		for {
			if _, err := c.Read(buf); err != nil {
				_ = c.CloseWrite()
				return
			}
			if buf[0] == 'x' {
				continue // never answered
			}
			time.Sleep(slow)
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
	l := NewLink(t, "answers", up)
	c := dial(t, l.Addr())
	hi := make([]byte, 2)
	_, err := io.ReadFull(c, hi)
	require.NoError(t, err)
	require.Zero(t, l.Stats().Exchanges, "a greeting answers no request")

	// The Link counts an answer before it delivers it: once the client
	// has read it, it is counted.
	ping(t, c, 'a')
	ping(t, c, 'b')
	st := l.Stats()
	require.Equal(t, int64(2), st.Exchanges, "fast path")
	require.Zero(t, st.Waiting, "each answered")
	require.GreaterOrEqual(t, st.AnswerTime, 2*slow)

	revert := apply(t, l, toxics.Latency{Delay: time.Millisecond, Direction: toxics.Both})
	ping(t, c, 'c')
	st = l.Stats()
	require.Equal(t, int64(3), st.Exchanges, "pipeline")
	require.GreaterOrEqual(t, st.AnswerTime, 3*slow)
	revert()

	_, err = c.Write([]byte{'x'})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return l.Stats().BytesUp == 4 }, 5*time.Second, time.Millisecond)
	require.Equal(t, int64(3), l.Stats().Exchanges, "waiting")
	require.Equal(t, int64(1), l.Stats().Waiting)
	require.NoError(t, c.Close())
	require.Eventually(t, func() bool { return l.Stats().Exchanges == 4 }, 5*time.Second, time.Millisecond, "unanswered, then closed")
	require.Zero(t, l.Stats().Waiting)
}

// A direction still delivering its last bytes when its connection closes
// starts no exchange: it would wait for ever (LinkStats.Waiting).
func TestLinkNoExchangeAfterClose(t *testing.T) {
	l, _ := echoLink(t)
	var lc *linkConn
	l.mu.Lock()
	for c := range l.conns {
		lc = c
	}
	l.mu.Unlock()
	require.NotNil(t, lc)
	lc.close(false)
	lc.dirs[0].arrived() // bytes for the upstream, after the close
	st := l.Stats()
	require.Zero(t, st.Waiting)
	require.Equal(t, int64(1), st.Exchanges, "echoLink's ping only")
}
