package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/toxics"
)

// Tests of the hand-over between a Link's fast path and its pipeline (see
// link_fast.go).

// streamBytes fills p with the bytes at offset off of the stream named key:
// a byte lost, repeated or out of place shows as a mismatch (unlike a short
// period such as floodPattern's).
func streamBytes(key, off uint64, p []byte) {
	for i := 0; i < len(p); {
		pos := off + uint64(i)
		word := seedMix(key, pos/8)
		for b := pos % 8; b < 8 && i < len(p); b++ {
			p[i] = byte(word >> (8 * b))
			i++
		}
	}
}

// pace pauses a traffic generator for up to max, at random: traffic that
// comes in bursts and pauses, and that leaves the test's other goroutines
// (and the Link's) some CPU on a small machine.
func pace(r *rand.Rand, max time.Duration) {
	time.Sleep(time.Duration(r.Int64N(int64(max))))
}

// sendStream writes the stream key to c in writes of random sizes, with
// pauses, until stop is closed, then half-closes c; it returns how many
// bytes it wrote.
func sendStream(c *net.TCPConn, key uint64, stop <-chan struct{}) (int64, error) {
	r := rand.New(rand.NewPCG(key, 1))
	buf := make([]byte, 32<<10)
	var off int64
	for {
		select {
		case <-stop:
			return off, c.CloseWrite()
		default:
		}
		p := buf[:1+r.IntN(len(buf))]
		streamBytes(key, uint64(off), p)
		n, err := c.Write(p)
		off += int64(n)
		if err != nil {
			return off, err
		}
		pace(r, 500*time.Microsecond)
	}
}

// checkStream reads c until EOF and checks every byte against the stream
// key; after each read it adds to got and signals progress (without
// blocking). It returns the first mismatch as an error.
func checkStream(c *net.TCPConn, key uint64, got *atomic.Int64, progress chan<- struct{}) error {
	buf := make([]byte, 64<<10)
	want := make([]byte, len(buf))
	var off uint64
	for {
		n, err := c.Read(buf)
		if n > 0 {
			streamBytes(key, off, want[:n])
			if !bytes.Equal(buf[:n], want[:n]) {
				i := 0
				for buf[i] == want[i] {
					i++
				}
				return fmt.Errorf("stream %d: byte %d is %#x, want %#x", key, off+uint64(i), buf[i], want[i])
			}
			off += uint64(n)
			got.Add(int64(n))
			select {
			case progress <- struct{}{}:
			default:
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("stream %d after %d bytes: %w", key, off, err)
		}
	}
}

// echoOr returns an upstream handler: a connection whose first byte is 'E'
// is echoed, any other is handed to other.
func echoOr(other func(c *net.TCPConn)) func(c *net.TCPConn) {
	return func(c *net.TCPConn) {
		_ = c.SetDeadline(time.Now().Add(2 * time.Minute))
		kind := make([]byte, 1)
		if _, err := io.ReadFull(c, kind); err != nil {
			return
		}
		if kind[0] == 'E' {
			echo(c)
			return
		}
		other(c)
	}
}

// Keys of the streams of TestLinkHandOverKeepsEveryByte.
const (
	keyUp   = 1 // bulk, client to upstream
	keyDown = 2 // bulk, upstream to client
	keyEcho = 3 // echoed in small pieces
)

// Faults are switched on and off 1,000 times while a bulk connection
// streams in both directions and another echoes small messages: every byte
// arrives once, in order, and the half-closes at the end get through. The
// faults are those that keep every byte; one direction is often on the
// pipeline while the other is not, and two faults sometimes overlap.
func TestLinkHandOverKeepsEveryByte(t *testing.T) {
	const rounds = 1000
	stop := make(chan struct{})
	progress := make(chan struct{}, 1)
	var upGot, downGot, echoed atomic.Int64
	type result struct {
		what string
		n    int64
		err  error
	}
	results := make(chan result, 8)

	// The upstream: a connection that starts with 'E' echoes, one that
	// starts with 'B' streams both ways.
	up := serveTCP(t, echoOr(func(c *net.TCPConn) {
		var wg sync.WaitGroup
		wg.Go(func() {
			n, err := sendStream(c, keyDown, stop)
			results <- result{"upstream sent", n, err}
		})
		err := checkStream(c, keyUp, &upGot, progress)
		results <- result{"upstream received", upGot.Load(), err}
		wg.Wait()
	}))
	l := NewLink(t, "handover", up, WithSeed(13))
	open := func(kind byte) *net.TCPConn {
		c := dial(t, l.Addr())
		require.NoError(t, c.SetDeadline(time.Now().Add(2*time.Minute)))
		_, err := c.Write([]byte{kind})
		require.NoError(t, err)
		return c
	}
	bulk, chat, idle := open('B'), open('E'), open('E')
	ping(t, idle, 'i')

	var wg sync.WaitGroup
	wg.Go(func() {
		n, err := sendStream(bulk, keyUp, stop)
		results <- result{"client sent", n, err}
	})
	wg.Go(func() {
		err := checkStream(bulk, keyDown, &downGot, progress)
		results <- result{"client received", downGot.Load(), err}
	})
	// The echo: a piece of 1 to 2,000 bytes at a time, read back whole
	// before the next goes out.
	wg.Go(func() {
		r := rand.New(rand.NewPCG(keyEcho, 2))
		out, in := make([]byte, 2000), make([]byte, 2000)
		var off uint64
		for {
			select {
			case <-stop:
				results <- result{"echo", int64(off), nil}
				return
			default:
			}
			n := 1 + r.IntN(len(out))
			streamBytes(keyEcho, off, out[:n])
			if _, err := chat.Write(out[:n]); err != nil {
				results <- result{"echo", int64(off), err}
				return
			}
			if _, err := io.ReadFull(chat, in[:n]); err != nil {
				results <- result{"echo", int64(off), err}
				return
			}
			if !bytes.Equal(in[:n], out[:n]) {
				results <- result{"echo", int64(off), fmt.Errorf("the echo of bytes %d to %d differs", off, off+uint64(n))}
				return
			}
			off += uint64(n)
			echoed.Store(int64(off))
			pace(r, 200*time.Microsecond)
		}
	})

	faults := []toxics.Fault{
		toxics.Latency{Delay: time.Millisecond, Direction: toxics.Downstream},
		toxics.Bandwidth{Rate: 0, Direction: toxics.Upstream},
		toxics.Latency{Delay: 100 * time.Microsecond, Jitter: 50 * time.Microsecond},
		toxics.Slicer{AverageSize: 512, SizeVariation: 256},
		toxics.Bandwidth{Rate: 0, Direction: toxics.Downstream},
		toxics.DataLimit{Bytes: 1 << 40, Direction: toxics.Upstream},
		toxics.Bandwidth{Rate: 50 << 20},
		toxics.SlowClose{Delay: time.Hour, Direction: toxics.Downstream},
	}
	ctx := context.Background()
	// flowed waits until some stream has moved on: a bound of a minute
	// only turns a stuck Link into a failure.
	flowed := func(what string) {
		t.Helper()
		select {
		case <-progress:
		default:
		}
		select {
		case <-progress:
		case <-time.After(time.Minute):
			t.Fatalf("no byte moved for a minute %s", what)
		}
	}
	on := func(f toxics.Fault) func(context.Context) error {
		t.Helper()
		revert, err := l.Apply(ctx, f)
		require.NoError(t, err)
		return revert
	}
	for i := range rounds {
		f := faults[i%len(faults)]
		revert := on(f)
		flowed("with " + f.String() + " on")
		if i%4 == 3 { // a second fault overlaps the first
			g := faults[(i*5+1)%len(faults)]
			revert2 := on(g)
			flowed("with " + f.String() + " and " + g.String() + " on")
			require.NoError(t, revert(ctx))
			flowed("with " + g.String() + " on")
			revert = revert2
		}
		require.NoError(t, revert(ctx))
		flowed("after reverting " + f.String())
	}
	require.Empty(t, l.Active())
	close(stop)
	wg.Wait()
	got := map[string]int64{}
	for range 5 {
		r := <-results
		require.NoError(t, r.err, r.what)
		got[r.what] = r.n
	}
	require.Equal(t, got["client sent"], got["upstream received"], "bytes upstream")
	require.Equal(t, got["upstream sent"], got["client received"], "bytes downstream")
	require.Positive(t, got["echo"])
	t.Logf("%d rounds: %d bytes up, %d down, %d echoed", rounds, got["client sent"], got["upstream sent"], got["echo"])
	ping(t, idle, 'j') // idle all along, and still there
}

// sendTraffic writes bursts of up to 32 KiB with pauses to c until stop is
// closed or a write fails. (A flood that never pauses would starve the Go
// scheduler's network poller on a small machine, and with it the Link's
// reads, which no fault semantics can survive.)
func sendTraffic(c *net.TCPConn, stop <-chan struct{}) error {
	r := rand.New(rand.NewPCG(7, 7))
	buf := make([]byte, 32<<10)
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		if _, err := c.Write(buf[:1+r.IntN(len(buf))]); err != nil {
			return err
		}
		pace(r, 500*time.Microsecond)
	}
}

// Under traffic, a fault still shows on the very next byte of a live
// connection, and a blackhole heals: the connection carries data again and
// only what was sent meanwhile is lost.
func TestLinkFaultsShowUnderTraffic(t *testing.T) {
	const delay = time.Millisecond
	up := serveTCP(t, echoOr(func(c *net.TCPConn) {
		// Traffic both ways, to keep the Link busy.
		go func() { _, _ = io.Copy(io.Discard, c) }()
		_ = sendTraffic(c, nil)
	}))
	l := NewLink(t, "traffic", up)
	busy := dial(t, l.Addr())
	_, err := busy.Write([]byte{'T'})
	require.NoError(t, err)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = io.Copy(io.Discard, busy) })
	wg.Go(func() { _ = sendTraffic(busy, stop) })
	t.Cleanup(func() {
		close(stop)
		_ = busy.Close()
		wg.Wait()
	})

	c := dial(t, l.Addr())
	_, err = c.Write([]byte{'E'})
	require.NoError(t, err)
	ping(t, c, 0)
	ctx := context.Background()
	for i := range 100 {
		seq := byte(4 * i)
		revert, err := l.Apply(ctx, toxics.Latency{Delay: delay, Direction: toxics.Downstream})
		require.NoError(t, err)
		require.GreaterOrEqual(t, ping(t, c, seq), delay, "round %d: the byte right after Apply", i)
		require.NoError(t, revert(ctx))
		ping(t, c, seq+1)

		revert, err = l.Apply(ctx, toxics.Blackhole{})
		require.NoError(t, err)
		_, err = c.Write([]byte{seq + 2})
		require.NoError(t, err)
		readNothing(t, c, 20*time.Millisecond)
		require.NoError(t, revert(ctx))
		ping(t, c, seq+3) // the blackholed byte is lost, this one is not
	}
}

// A data limit that fired closes the connection even when the revert that
// ends the connection's stint on the pipeline comes before the close has
// reached the Link's sink: the pipeline's end is then not taken for the end
// of the stint, which would resume the stream with a gap. A slow close
// after the limit in the chain holds the close until it is reverted.
func TestLinkCutIsNotASwitch(t *testing.T) {
	const limit, size = 100, 300
	l := NewLink(t, "cut", serveTCP(t, sendOnByte(size)))
	ctx := context.Background()
	for i := range 10 {
		c := dial(t, l.Addr())
		_, err := c.Write([]byte{1}) // live, on the fast path
		require.NoError(t, err)
		_, err = io.ReadFull(c, make([]byte, size))
		require.NoError(t, err)

		revertLimit, err := l.Apply(ctx, toxics.DataLimit{Bytes: limit, Direction: toxics.Downstream})
		require.NoError(t, err)
		revertSlowClose, err := l.Apply(ctx, toxics.SlowClose{Delay: time.Hour, Direction: toxics.Downstream})
		require.NoError(t, err)
		_, err = c.Write([]byte{1})
		require.NoError(t, err)
		got := make([]byte, limit)
		_, err = io.ReadFull(c, got)
		require.NoError(t, err)
		require.Equal(t, pattern(size)[:limit], got)
		// The limit has fired: the close waits in the slow close.
		require.NoError(t, revertLimit(ctx))
		require.NoError(t, revertSlowClose(ctx))
		require.Equal(t, 0, readClosed(t, c), "round %d: bytes after the limit", i)
		_ = c.Close()
	}
}
