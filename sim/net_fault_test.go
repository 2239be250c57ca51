package sim

import (
	"bytes"
	"io"
	"math/bits"
	"net"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/toxics"
)

// roundTrip writes msg on client, echoes it from server and returns the
// virtual time until the client has read it back.
func roundTrip(t *testing.T, client, server net.Conn, msg string) time.Duration {
	t.Helper()
	start := time.Now()
	write(t, client, msg)
	got := readN(t, server, len(msg))
	write(t, server, got)
	require.Equal(t, msg, readN(t, client, len(msg)))
	return time.Since(start)
}

func TestNetLatency(t *testing.T) {
	for _, tc := range []struct {
		dir  toxics.Direction
		want time.Duration
	}{
		{toxics.Both, 200 * time.Millisecond},
		{toxics.Upstream, 100 * time.Millisecond},
		{toxics.Downstream, 100 * time.Millisecond},
	} {
		t.Run(tc.dir.String(), func(t *testing.T) {
			inBubble(t, 1, func(t *testing.T, n *Network) {
				client, server, ep := connPair(t, n, "db")
				revert := apply(t, ep, toxics.Latency{Delay: 100 * time.Millisecond, Direction: tc.dir})
				require.Equal(t, tc.want, roundTrip(t, client, server, "ping"))
				// New connections get it too.
				c2, s2 := dialAccept(t, n, ep.ln, "db")
				require.Equal(t, tc.want, roundTrip(t, c2, s2, "ping"))
				revert()
				require.Zero(t, roundTrip(t, client, server, "ping"))
			})
		})
	}
}

func TestNetLatencyKeepsOrderAndRevertDelivers(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		client, server, ep := connPair(t, n, "db")
		revert := apply(t, ep, toxics.Latency{Delay: 10 * time.Second, Jitter: 9 * time.Second})
		for _, s := range []string{"a", "b", "c", "d"} {
			write(t, client, s)
			time.Sleep(time.Millisecond)
		}
		start := time.Now()
		var got []byte
		buf := make([]byte, 4)
		for len(got) < 2 {
			k, err := server.Read(buf)
			require.NoError(t, err)
			got = append(got, buf[:k]...)
		}
		require.Equal(t, "ab", string(got[:2]), "jitter never reorders bytes")
		require.Greater(t, time.Since(start), time.Duration(0))
		// Reverting delivers what the latency still holds, at once.
		revert()
		now := time.Now()
		rest := readN(t, server, 4-len(got))
		require.Equal(t, "abcd", string(got)+rest)
		require.Equal(t, now, time.Now())
	})
}

// jitterRTTs returns 20 round-trip times under a jittered latency.
func jitterRTTs(t *testing.T, seed int64) []time.Duration {
	var rtts []time.Duration
	inBubble(t, seed, func(t *testing.T, n *Network) {
		client, server, ep := connPair(t, n, "db")
		apply(t, ep, toxics.Latency{Delay: 100 * time.Millisecond, Jitter: 50 * time.Millisecond, Direction: toxics.Downstream})
		for range 20 {
			rtts = append(rtts, roundTrip(t, client, server, "x"))
		}
	})
	return rtts
}

func TestNetLatencyJitterIsSeeded(t *testing.T) {
	a := jitterRTTs(t, 7)
	for _, d := range a {
		require.GreaterOrEqual(t, d, 50*time.Millisecond)
		require.LessOrEqual(t, d, 150*time.Millisecond)
	}
	require.NotEqual(t, a[0], a[1], "jitter varies")
	require.Equal(t, a, jitterRTTs(t, 7), "same seed, same jitter")
	require.NotEqual(t, a, jitterRTTs(t, 8), "another seed, other jitter")
}

func TestNetBandwidth(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		client, server, ep := connPair(t, n, "db")
		revert := apply(t, ep, toxics.Bandwidth{Rate: 1000, Direction: toxics.Downstream})
		start := time.Now()
		write(t, server, string(make([]byte, 500)))
		// Bytes trickle in: the first read gets a part.
		buf := make([]byte, 500)
		k, err := client.Read(buf)
		require.NoError(t, err)
		require.Less(t, k, 500)
		_, err = io.ReadFull(client, buf[k:])
		require.NoError(t, err)
		require.Equal(t, 500*time.Millisecond, time.Since(start), "500 B at 1000 B/s")
		// Upstream is not limited.
		require.Zero(t, func() time.Duration {
			s := time.Now()
			write(t, client, "up")
			readN(t, server, 2)
			return time.Since(s)
		}())
		revert()
		require.Zero(t, roundTrip(t, client, server, "ping"))
	})
}

func TestNetBandwidthZeroStallsAndRevertDelivers(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		client, server, ep := connPair(t, n, "db")
		revert := apply(t, ep, toxics.Bandwidth{Rate: 0})
		write(t, client, "held")
		require.NoError(t, server.SetReadDeadline(time.Now().Add(time.Hour)))
		requireTimeout(t, readErr(t, server))
		require.NoError(t, server.SetReadDeadline(time.Time{}))
		revert()
		require.Equal(t, "held", readN(t, server, 4))
		require.Zero(t, roundTrip(t, client, server, "alive"), "the connection survives")
	})
}

func TestNetSlicer(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		client, server, ep := connPair(t, n, "db")
		apply(t, ep, toxics.Slicer{AverageSize: 10, SizeVariation: 3, Delay: time.Millisecond, Direction: toxics.Downstream})
		msg := bytes.Repeat([]byte("0123456789"), 10)
		_, err := server.Write(msg)
		require.NoError(t, err)
		var got []byte
		reads := 0
		buf := make([]byte, 1024)
		start := time.Now()
		for len(got) < len(msg) {
			k, err := client.Read(buf)
			require.NoError(t, err)
			require.LessOrEqual(t, k, 13, "a read never spans two slices")
			got = append(got, buf[:k]...)
			reads++
		}
		require.Equal(t, msg, got)
		require.GreaterOrEqual(t, reads, 8)
		require.Equal(t, time.Duration(reads-1)*time.Millisecond, time.Since(start))
	})
}

func TestNetSlicerWithoutDelayStillSlices(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		client, server, ep := connPair(t, n, "db")
		apply(t, ep, toxics.Slicer{AverageSize: 1, Direction: toxics.Upstream})
		write(t, client, "abc")
		buf := make([]byte, 8)
		for _, want := range []string{"a", "b", "c"} {
			k, err := server.Read(buf)
			require.NoError(t, err)
			require.Equal(t, want, string(buf[:k]))
		}
	})
}

func TestNetSlowClose(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		client, server, ep := connPair(t, n, "db")
		apply(t, ep, toxics.SlowClose{Delay: 2 * time.Second, Direction: toxics.Downstream})
		start := time.Now()
		write(t, server, "last words")
		require.NoError(t, server.Close())
		require.Equal(t, "last words", readN(t, client, 10))
		require.Zero(t, time.Since(start), "data is not delayed")
		require.ErrorIs(t, readErr(t, client), io.EOF)
		require.Equal(t, 2*time.Second, time.Since(start), "the close is")
		// Upstream closes are not delayed.
		c2, s2 := dialAccept(t, n, ep.ln, "db")
		start = time.Now()
		require.NoError(t, c2.Close())
		require.ErrorIs(t, readErr(t, s2), io.EOF)
		require.Zero(t, time.Since(start))
	})
}

func TestNetCorrupt(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		client, server, ep := connPair(t, n, "db")
		revert := apply(t, ep, toxics.Corrupt{Probability: 1, Direction: toxics.Downstream})
		_, err := server.Write(make([]byte, 256))
		require.NoError(t, err)
		got := []byte(readN(t, client, 256))
		for i, b := range got {
			require.Equal(t, 1, bits.OnesCount8(b), "byte %d = %08b: exactly one bit flipped", i, b)
		}
		require.Equal(t, "clean", func() string { write(t, client, "clean"); return readN(t, server, 5) }(), "upstream is clean")
		revert()
		require.Equal(t, "clean", func() string { write(t, server, "clean"); return readN(t, client, 5) }())
	})
}

// corrupted returns what a client reads of 4 KiB of zeros under
// corruption with probability 0.1.
func corrupted(t *testing.T, seed int64) []byte {
	var got []byte
	inBubble(t, seed, func(t *testing.T, n *Network) {
		client, server, ep := connPair(t, n, "db")
		apply(t, ep, toxics.Corrupt{Probability: 0.1})
		_, err := server.Write(make([]byte, 4096))
		require.NoError(t, err)
		got = []byte(readN(t, client, 4096))
	})
	return got
}

func TestNetCorruptIsSeeded(t *testing.T) {
	a := corrupted(t, 3)
	flipped := 0
	for _, b := range a {
		if b != 0 {
			flipped++
		}
	}
	require.InDelta(t, 410, flipped, 100, "about 10%% of 4096 bytes")
	require.Equal(t, a, corrupted(t, 3))
	require.NotEqual(t, a, corrupted(t, 4))
}

func TestNetDataLimit(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		client, server, ep := connPair(t, n, "db")
		write(t, server, "before")
		require.Equal(t, "before", readN(t, client, 6))
		apply(t, ep, toxics.DataLimit{Bytes: 10, Direction: toxics.Downstream})
		// Counted from the fault's start: 10 bytes pass, then both sides
		// read EOF.
		write(t, server, "0123456789abcdef")
		got, err := io.ReadAll(client)
		require.NoError(t, err)
		require.Equal(t, "0123456789", string(got))
		require.ErrorIs(t, readErr(t, server), io.EOF)
		// A new connection counts from its start.
		c2, s2 := dialAccept(t, n, ep.ln, "db")
		write(t, c2, "upstream is not limited")
		write(t, s2, "01234")
		write(t, s2, "56789xyz")
		got, err = io.ReadAll(c2)
		require.NoError(t, err)
		require.Equal(t, "0123456789", string(got))
	})
}

func TestNetTimeout(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		client, server, ep := connPair(t, n, "db")
		start := time.Now()
		apply(t, ep, toxics.Timeout{After: time.Second})
		write(t, client, "dropped")
		time.Sleep(500 * time.Millisecond)
		c2, s2 := dialAccept(t, n, ep.ln, "db")
		// Traffic does not keep a connection alive.
		write(t, server, "dropped too")
		require.ErrorIs(t, readErr(t, client), io.EOF)
		require.Equal(t, time.Second, time.Since(start), "closed After the fault began")
		require.ErrorIs(t, readErr(t, server), io.EOF)
		require.ErrorIs(t, readErr(t, c2), io.EOF)
		require.Equal(t, 1500*time.Millisecond, time.Since(start), "closed After it opened")
		require.ErrorIs(t, readErr(t, s2), io.EOF)
	})
}

func TestNetTimeoutZeroAndRevert(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		client, server, ep := connPair(t, n, "db")
		revert := apply(t, ep, toxics.Timeout{After: 0})
		require.ErrorIs(t, readErr(t, client), io.EOF)
		require.ErrorIs(t, readErr(t, server), io.EOF)
		revert()
		// Reverted before After: connections live on.
		revert = apply(t, ep, toxics.Timeout{After: time.Second})
		c2, s2 := dialAccept(t, n, ep.ln, "db")
		revert()
		time.Sleep(2 * time.Second)
		require.Zero(t, roundTrip(t, c2, s2, "alive"))
	})
}

func TestNetBlackhole(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		client, server, ep := connPair(t, n, "db")
		revert := apply(t, ep, toxics.Blackhole{Direction: toxics.Upstream})
		write(t, client, "lost")
		write(t, server, "downstream flows")
		require.Equal(t, "downstream flows", readN(t, client, 16))
		require.NoError(t, server.SetReadDeadline(time.Now().Add(time.Minute)))
		requireTimeout(t, readErr(t, server))
		require.NoError(t, server.SetReadDeadline(time.Time{}))
		revert()
		write(t, client, "found")
		require.Equal(t, "found", readN(t, server, 5), "data sent meanwhile is lost; the connection heals")
	})
}

func TestNetReset(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		client, server, ep := connPair(t, n, "db")
		revert := apply(t, ep, toxics.Reset{})
		err := readErr(t, client)
		require.ErrorIs(t, err, syscall.ECONNRESET)
		var opErr *net.OpError
		require.ErrorAs(t, err, &opErr)
		require.Equal(t, "read", opErr.Op)
		require.ErrorIs(t, readErr(t, client), io.EOF, "after the reset, EOF")
		_, err = client.Write([]byte("x"))
		require.ErrorIs(t, err, syscall.EPIPE)
		require.ErrorIs(t, readErr(t, server), syscall.ECONNRESET, "the server side is reset too")

		// New connections are accepted, then reset at once; the server never
		// sees them. As on real TCP, a first write beats the RST.
		c2, err := n.Dial(t.Context(), "tcp", "db")
		require.NoError(t, err)
		defer c2.Close()
		write(t, c2, "x")
		require.ErrorIs(t, readErr(t, c2), syscall.ECONNRESET)
		require.ErrorIs(t, readErr(t, c2), io.EOF)
		require.Equal(t, int64(0), ep.Stats().Active)

		// A read that meets the RST first (an HTTP client's read loop
		// often runs before its write) does not make that instant's
		// write fail: the write still beats the RST. A later one fails.
		c4, err := n.Dial(t.Context(), "tcp", "db")
		require.NoError(t, err)
		defer c4.Close()
		require.ErrorIs(t, readErr(t, c4), syscall.ECONNRESET)
		write(t, c4, "same instant")
		time.Sleep(time.Millisecond) // the bubble's clock: the next instant
		_, err = c4.Write([]byte("later"))
		require.ErrorIs(t, err, syscall.EPIPE)

		revert()
		c3, s3 := dialAccept(t, n, ep.ln, "db")
		require.Zero(t, roundTrip(t, c3, s3, "healed"))
	})
}

func TestNetDown(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		client, server, ep := connPair(t, n, "db")
		write(t, server, "arrived")
		revert := apply(t, ep, toxics.Down{})
		require.Equal(t, "arrived", readN(t, client, 7))
		require.ErrorIs(t, readErr(t, client), io.EOF)
		require.ErrorIs(t, readErr(t, server), io.EOF)
		_, err := n.Dial(t.Context(), "tcp", "db")
		require.ErrorIs(t, err, syscall.ECONNREFUSED)
		require.Equal(t, int64(1), ep.Stats().Refused)
		revert()
		c2, s2 := dialAccept(t, n, ep.ln, "db")
		require.Zero(t, roundTrip(t, c2, s2, "back"))
	})
}

func TestNetCrash(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		client, server, ep := connPair(t, n, "db")
		revert := apply(t, ep, toxics.Crash{})
		require.ErrorIs(t, readErr(t, client), syscall.ECONNRESET)
		require.ErrorIs(t, readErr(t, server), syscall.ECONNRESET)
		_, err := n.Dial(t.Context(), "tcp", "db")
		require.ErrorIs(t, err, syscall.ECONNREFUSED)
		revert()
		c2, s2 := dialAccept(t, n, ep.ln, "db")
		require.Zero(t, roundTrip(t, c2, s2, "restarted"))
	})
}

func TestNetStopAndRestart(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		client, server, ep := connPair(t, n, "db")
		revert := apply(t, ep, toxics.Stop{Grace: time.Second})
		require.ErrorIs(t, readErr(t, client), io.EOF)
		require.ErrorIs(t, readErr(t, server), io.EOF)
		_, err := n.Dial(t.Context(), "tcp", "db")
		require.ErrorIs(t, err, syscall.ECONNREFUSED)
		revert()

		c2, s2 := dialAccept(t, n, ep.ln, "db")
		revert = apply(t, ep, toxics.Restart{})
		require.ErrorIs(t, readErr(t, c2), io.EOF)
		require.ErrorIs(t, readErr(t, s2), io.EOF)
		c3, s3 := dialAccept(t, n, ep.ln, "db")
		require.Zero(t, roundTrip(t, c3, s3, "up at once"))
		revert() // does nothing
		require.Empty(t, ep.Active())
	})
}

func TestNetPause(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		client, server, ep := connPair(t, n, "db")
		start := time.Now()
		revert := apply(t, ep, toxics.Pause{})
		// The server neither reads nor writes...
		served := make(chan string)
		go func() {
			buf := make([]byte, 16)
			k, _ := server.Read(buf)
			server.Write(buf[:k])
			served <- string(buf[:k])
		}()
		write(t, client, "hello?")
		require.NoError(t, client.SetReadDeadline(time.Now().Add(time.Second)))
		requireTimeout(t, readErr(t, client))
		// ...nor accepts; dials still succeed, into the backlog.
		c2, err := n.Dial(t.Context(), "tcp", "db")
		require.NoError(t, err)
		defer c2.Close()
		accepted := make(chan net.Conn)
		go func() { c, _ := ep.ln.Accept(); accepted <- c }()
		synctest.Wait()
		select {
		case <-served:
			t.Fatal("a paused server answered")
		case <-accepted:
			t.Fatal("a paused server accepted")
		default:
		}
		time.Sleep(time.Minute)
		revert()
		require.Equal(t, "hello?", <-served)
		require.NoError(t, client.SetReadDeadline(time.Time{}))
		require.Equal(t, "hello?", readN(t, client, 6))
		require.Equal(t, time.Second+time.Minute, time.Since(start))
		s2 := <-accepted
		defer s2.Close()
		require.Zero(t, roundTrip(t, c2, s2, "resumed"))
	})
}

// transcript runs a conversation through several seeded faults and
// returns what the client read and when.
func transcript(t *testing.T, seed int64) []string {
	var out []string
	inBubble(t, seed, func(t *testing.T, n *Network) {
		client, server, ep := connPair(t, n, "db")
		apply(t, ep, toxics.Latency{Delay: 20 * time.Millisecond, Jitter: 10 * time.Millisecond})
		apply(t, ep, toxics.Slicer{AverageSize: 8, SizeVariation: 4, Delay: time.Millisecond, Direction: toxics.Downstream})
		apply(t, ep, toxics.Corrupt{Probability: 0.05, Direction: toxics.Downstream})
		start := time.Now()
		buf := make([]byte, 64)
		for i := range 10 {
			write(t, client, "request")
			readN(t, server, 7)
			write(t, server, string(bytes.Repeat([]byte{byte('a' + i)}, 40)))
			got := 0
			for got < 40 {
				k, err := client.Read(buf)
				require.NoError(t, err)
				got += k
				out = append(out, time.Since(start).String()+" "+string(buf[:k]))
			}
		}
	})
	return out
}

func TestNetDeterminism(t *testing.T) {
	a := transcript(t, 42)
	require.Equal(t, a, transcript(t, 42), "same seed, same bytes at the same virtual times")
	require.NotEqual(t, a, transcript(t, 43))
}

func TestNetFaultsStack(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		client, server, ep := connPair(t, n, "db")
		r1 := apply(t, ep, toxics.Latency{Delay: 100 * time.Millisecond, Direction: toxics.Upstream})
		r2 := apply(t, ep, toxics.Latency{Delay: 50 * time.Millisecond, Direction: toxics.Upstream})
		require.Equal(t, 150*time.Millisecond, roundTrip(t, client, server, "x"))
		r1()
		require.Equal(t, 50*time.Millisecond, roundTrip(t, client, server, "x"))
		r2()
		// Down and a node fault hold together; each revert undoes its own.
		rd := apply(t, ep, toxics.Down{})
		rs := apply(t, ep, toxics.Stop{})
		rd()
		_, err := n.Dial(t.Context(), "tcp", "db")
		require.ErrorIs(t, err, syscall.ECONNREFUSED, "still stopped")
		rs()
		c2, err := n.Dial(t.Context(), "tcp", "db")
		require.NoError(t, err)
		c2.Close()
	})
}

// A connection cut (here by Down) just as a paced chunk had delivered all
// it had so far must end with EOF. It used to keep the chunk's unarrived
// rest as an empty chunk, which made every Read spin without blocking.
func TestNetCutAfterPacedBytesEnds(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		client, server, ep := connPair(t, n, "db")
		apply(t, ep, toxics.Bandwidth{Rate: 10, Direction: toxics.Downstream})
		write(t, server, string(make([]byte, 100)))
		time.Sleep(500 * time.Millisecond)
		require.Equal(t, 5, len(readN(t, client, 5)), "5 bytes in 500ms at 10 B/s")
		apply(t, ep, toxics.Down{}) // at the same instant: none of the rest has arrived
		p := client.(*conn).rd
		p.mu.Lock()
		k, eof, wake := p.take(make([]byte, 8), time.Now())
		p.mu.Unlock()
		require.Zero(t, k)
		require.True(t, eof, "EOF at once, not a wake at %v", wake)
		require.ErrorIs(t, readErr(t, client), io.EOF)
	})
}
