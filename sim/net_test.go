package sim

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/toxics"
)

// inBubble runs f in a synctest bubble with a fresh network, closed when f
// returns.
func inBubble(t *testing.T, seed int64, f func(t *testing.T, n *Network)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		n := NewNetwork(seed)
		t.Cleanup(func() { require.NoError(t, n.Close()) })
		f(t, n)
	})
}

// connPair listens on name, dials it and accepts, returning both sides.
func connPair(t *testing.T, n *Network, name string) (client, server net.Conn, ep *Endpoint) {
	t.Helper()
	ln, err := n.Listen(name)
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	client, server = dialAccept(t, n, ln, name)
	ep, err = n.Endpoint(name)
	require.NoError(t, err)
	return client, server, ep
}

func dialAccept(t *testing.T, n *Network, ln net.Listener, name string) (client, server net.Conn) {
	t.Helper()
	client, err := n.Dial(context.Background(), "tcp", name)
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })
	server, err = ln.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { server.Close() })
	return client, server
}

// apply applies f to tg and returns its revert, failing the test on error.
func apply(t *testing.T, tg Target, f toxics.Fault) func() {
	t.Helper()
	revert, err := tg.Apply(context.Background(), f)
	require.NoError(t, err)
	return func() { require.NoError(t, revert(context.Background())) }
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	n, err := c.Write([]byte(s))
	require.NoError(t, err)
	require.Equal(t, len(s), n)
}

// readN reads exactly n bytes.
func readN(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	buf := make([]byte, n)
	_, err := io.ReadFull(c, buf)
	require.NoError(t, err)
	return string(buf)
}

// readErr reads once and returns the error, requiring that no data came.
func readErr(t *testing.T, c net.Conn) error {
	t.Helper()
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	require.Zero(t, n, "read %q, want no data", buf[:n])
	require.Error(t, err)
	return err
}

func requireTimeout(t *testing.T, err error) {
	t.Helper()
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout(), "Timeout() of %v", err)
}

func TestNetworkEcho(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		echo, err := n.FakeTCP("echo", func(c net.Conn) { io.Copy(c, c) })
		require.NoError(t, err)
		c, err := n.Dial(t.Context(), "tcp", "echo:7")
		require.NoError(t, err)
		defer c.Close()
		start := time.Now()
		write(t, c, "hello")
		require.Equal(t, "hello", readN(t, c, 5))
		require.Zero(t, time.Since(start), "a fault-free round trip takes no virtual time")
		require.Equal(t, "echo:7", c.RemoteAddr().String())
		require.Equal(t, "tcp", c.LocalAddr().Network())
		require.True(t, strings.HasPrefix(c.LocalAddr().String(), "client:"))
		require.Equal(t, int64(1), echo.Conns())
		st := echo.Stats()
		require.Equal(t, EndpointStats{Accepted: 1, Active: 1, BytesUp: 5, BytesDown: 5}, st)
	})
}

func TestNetDialErrors(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		ctx := t.Context()

		_, err := n.Dial(ctx, "tcp", "nowhere:80")
		var dnsErr *net.DNSError
		require.ErrorAs(t, err, &dnsErr)
		require.True(t, dnsErr.IsNotFound)
		require.Contains(t, err.Error(), "nowhere")

		_, err = n.Dial(ctx, "udp", "nowhere:80")
		require.ErrorContains(t, err, "unknown network udp")

		// A name with no listener refuses, like a closed port.
		_, err = n.Endpoint("db")
		require.NoError(t, err)
		_, err = n.Dial(ctx, "tcp", "db:5432")
		require.ErrorIs(t, err, syscall.ECONNREFUSED)
		var opErr *net.OpError
		require.ErrorAs(t, err, &opErr)
		require.Equal(t, "dial", opErr.Op)

		ln, err := n.Listen("db")
		require.NoError(t, err)
		_, err = n.Listen("db")
		require.ErrorIs(t, err, syscall.EADDRINUSE)

		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err = n.Dial(cctx, "tcp", "db")
		require.ErrorIs(t, err, context.Canceled)

		// Closing the listener frees the name and refuses dials.
		require.NoError(t, ln.Close())
		_, err = n.Dial(ctx, "tcp", "db")
		require.ErrorIs(t, err, syscall.ECONNREFUSED)
		ln2, err := n.Listen("db")
		require.NoError(t, err)
		defer ln2.Close()

		// A name with a port is reached by that address only.
		ln3, err := n.Listen("api:8080")
		require.NoError(t, err)
		defer ln3.Close()
		_, err = n.Dial(ctx, "tcp", "api:9090")
		require.ErrorAs(t, err, &dnsErr)
		c, err := n.Dial(ctx, "tcp", "api:8080")
		require.NoError(t, err)
		c.Close()

		for _, bad := range []string{"", "a b", "a/b", "db:", ":80", "a:b:c"} {
			_, err := n.Listen(bad)
			require.Error(t, err, "Listen(%q)", bad)
			_, err = n.Endpoint(bad)
			require.Error(t, err, "Endpoint(%q)", bad)
		}
		require.Equal(t, int64(2), func() int64 { ep, _ := n.Endpoint("db"); return ep.Stats().Refused }())
	})
}

func TestNetworkClose(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		client, server, _ := connPair(t, n, "db")
		write(t, server, "bye")
		require.NoError(t, n.Close())
		require.NoError(t, n.Close(), "Close is idempotent")
		// What had arrived is still read, then EOF, on both sides.
		require.Equal(t, "bye", readN(t, client, 3))
		require.ErrorIs(t, readErr(t, client), io.EOF)
		require.ErrorIs(t, readErr(t, server), io.EOF)
		_, err := n.Dial(t.Context(), "tcp", "db")
		require.ErrorIs(t, err, net.ErrClosed)
		_, err = n.Listen("other")
		require.ErrorIs(t, err, net.ErrClosed)
		_, err = n.FakeKV("kv")
		require.ErrorIs(t, err, net.ErrClosed)
	})
}

func TestNetConnDeadlines(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		client, server, _ := connPair(t, n, "db")
		start := time.Now()
		require.NoError(t, client.SetReadDeadline(start.Add(time.Second)))
		requireTimeout(t, readErr(t, client))
		require.Equal(t, time.Second, time.Since(start))

		// A deadline in the past fails at once, even with data waiting.
		write(t, server, "x")
		require.NoError(t, client.SetReadDeadline(time.Unix(1, 0)))
		requireTimeout(t, readErr(t, client))
		require.NoError(t, client.SetReadDeadline(time.Time{}))
		require.Equal(t, "x", readN(t, client, 1))

		// Moving the deadline wakes a blocked reader.
		done := make(chan error)
		go func() { _, err := client.Read(make([]byte, 1)); done <- err }()
		synctest.Wait()
		mid := time.Now()
		require.NoError(t, client.SetReadDeadline(mid))
		requireTimeout(t, <-done)
		require.Equal(t, mid, time.Now())

		// Close wakes a blocked reader with net.ErrClosed.
		require.NoError(t, client.SetReadDeadline(time.Time{}))
		go func() { _, err := client.Read(make([]byte, 1)); done <- err }()
		synctest.Wait()
		require.NoError(t, client.Close())
		require.ErrorIs(t, <-done, net.ErrClosed)
		require.ErrorIs(t, client.Close(), net.ErrClosed)
		_, err := client.Write([]byte("x"))
		require.ErrorIs(t, err, net.ErrClosed)
		require.ErrorIs(t, client.SetDeadline(time.Time{}), net.ErrClosed)
	})
}

func TestNetConnBuffering(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		client, server, _ := connPair(t, n, "db")
		// A writer does not wait for the reader until the buffer is full.
		big := make([]byte, pipeCap)
		k, err := client.Write(big)
		require.NoError(t, err)
		require.Equal(t, pipeCap, k)

		done := make(chan int)
		go func() { k, _ := client.Write([]byte("more")); done <- k }()
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("write into a full buffer returned")
		default:
		}
		// The write deadline ends a blocked write with a timeout.
		require.NoError(t, client.SetWriteDeadline(time.Now().Add(time.Second)))
		require.Zero(t, <-done)
		_, err = client.Write([]byte("more"))
		requireTimeout(t, err)
		require.NoError(t, client.SetWriteDeadline(time.Time{}))

		go func() { k, _ := client.Write([]byte("more")); done <- k }()
		_, err = io.ReadFull(server, make([]byte, pipeCap))
		require.NoError(t, err)
		require.Equal(t, 4, <-done)
		require.Equal(t, "more", readN(t, server, 4))
	})
}

func TestNetConnHalfClose(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		client, server, _ := connPair(t, n, "db")
		cw, ok := client.(interface{ CloseWrite() error })
		require.True(t, ok, "conns have CloseWrite")
		write(t, client, "request")
		require.NoError(t, cw.CloseWrite())
		_, err := client.Write([]byte("x"))
		require.ErrorIs(t, err, syscall.EPIPE)
		got, err := io.ReadAll(server)
		require.NoError(t, err)
		require.Equal(t, "request", string(got))
		write(t, server, "response")
		require.NoError(t, server.Close())
		got, err = io.ReadAll(client)
		require.NoError(t, err)
		require.Equal(t, "response", string(got))

		_, err = server.Write([]byte("x"))
		require.ErrorIs(t, err, net.ErrClosed)

		// Writing to a peer that closed succeeds, the data vanishes, and
		// the RST that answers it fails the next write, as on Linux.
		c2, s2, _ := connPair(t, n, "db2")
		write(t, s2, "bye")
		require.NoError(t, s2.Close())
		write(t, c2, "into the void")
		require.Equal(t, "bye", readN(t, c2, 3))
		require.ErrorIs(t, readErr(t, c2), io.EOF)
		_, err = c2.Write([]byte("x"))
		require.ErrorIs(t, err, syscall.ECONNRESET)
		_, err = c2.Write([]byte("x"))
		require.ErrorIs(t, err, syscall.EPIPE)
		require.ErrorIs(t, readErr(t, c2), io.EOF)

		// A peer that only shut its reading side drops data silently.
		c3, s3, _ := connPair(t, n, "db3")
		require.NoError(t, s3.(interface{ CloseRead() error }).CloseRead())
		write(t, c3, "dropped")
		write(t, s3, "still talks")
		require.Equal(t, "still talks", readN(t, c3, 11))
	})
}

func TestNetConnCloseRead(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		client, server, ep := connPair(t, n, "db")
		cr := client.(interface{ CloseRead() error })
		require.NoError(t, cr.CloseRead())
		require.ErrorIs(t, readErr(t, client), io.EOF)
		write(t, server, "dropped")
		write(t, client, "still writes")
		require.Equal(t, "still writes", readN(t, server, 12))
		require.Equal(t, int64(1), ep.Stats().Active)
		client.Close()
		server.Close()
		require.Equal(t, int64(0), ep.Stats().Active)
	})
}

func TestNetworkNoBubble(t *testing.T) {
	// Outside a bubble the network runs on the wall clock.
	n := NewNetwork(1)
	defer n.Close()
	_, err := n.FakeTCP("echo", func(c net.Conn) { io.Copy(c, c) })
	require.NoError(t, err)
	c, err := n.Dial(context.Background(), "tcp", "echo")
	require.NoError(t, err)
	defer c.Close()
	write(t, c, "ping")
	require.Equal(t, "ping", readN(t, c, 4))
	require.NoError(t, c.SetReadDeadline(time.Now().Add(time.Millisecond)))
	requireTimeout(t, readErr(t, c))
}

func TestNetTargets(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		_, err := n.FakeKV("kv")
		require.NoError(t, err)
		_, err = n.Endpoint("db")
		require.NoError(t, err)
		ts := n.Targets()
		require.Len(t, ts, 2)
		require.Equal(t, "db", ts[0].Name())
		require.Equal(t, "kv", ts[1].Name())
		for _, k := range append(toxics.LinkKinds(), toxics.NodeKinds()...) {
			require.True(t, ts[0].Supports(k), "supports %s", k)
		}
		s := Schedule{Steps: []Step{{At: time.Second, For: time.Second, Target: "kv", Fault: toxics.Crash{}}}}
		require.NoError(t, s.Validate(ts))
	})
}

func TestNetApplyErrors(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		ep, err := n.Endpoint("db")
		require.NoError(t, err)
		ctx := t.Context()
		_, err = ep.Apply(ctx, nil)
		require.ErrorContains(t, err, `endpoint "db"`)
		_, err = ep.Apply(ctx, toxics.Latency{Delay: time.Second, Jitter: 2 * time.Second})
		require.ErrorContains(t, err, "jitter")
		var fe *toxics.FieldError
		require.ErrorAs(t, err, &fe)
		_, err = ep.Apply(ctx, toxics.Slicer{AverageSize: 0})
		require.ErrorAs(t, err, &fe)
		_, err = ep.Apply(ctx, toxics.Bandwidth{Rate: -1})
		require.ErrorAs(t, err, &fe)
		require.Empty(t, ep.Active())

		revert := apply(t, ep, toxics.Pause{})
		_, err = ep.Apply(ctx, toxics.Crash{})
		require.ErrorContains(t, err, "pause() holds")
		revert()
		revert() // idempotent
		revertCrash := apply(t, ep, toxics.Crash{})
		require.Equal(t, []toxics.Fault{toxics.Crash{}}, ep.Active())
		revertCrash()

		r1 := apply(t, ep, toxics.Latency{Delay: time.Second})
		apply(t, ep, toxics.Blackhole{})
		require.Len(t, ep.Active(), 2)
		r1()
		require.Equal(t, []toxics.Fault{toxics.Blackhole{}}, ep.Active())
		require.NoError(t, ep.Clear(ctx))
		require.Empty(t, ep.Active())

		require.NoError(t, n.Close())
		_, err = ep.Apply(ctx, toxics.Down{})
		require.ErrorIs(t, err, net.ErrClosed)
	})
}

func TestNetConcurrentCloseWakesEveryone(t *testing.T) {
	// Close, CloseRead, CloseWrite, a reset and deadline changes race with
	// blocked reads and writes: none may be left waiting (in a bubble, a
	// lost wake is a deadlock, which fails the test).
	inBubble(t, 1, func(t *testing.T, n *Network) {
		ln, err := n.Listen("db")
		require.NoError(t, err)
		ep, err := n.Endpoint("db")
		require.NoError(t, err)
		for i := range 200 {
			client, server := dialAccept(t, n, ln, "db")
			done := make(chan struct{})
			go func() {
				defer close(done)
				buf := make([]byte, 8)
				for {
					if _, err := server.Read(buf); err != nil {
						return
					}
				}
			}()
			go func() {
				big := make([]byte, pipeCap+1)
				server.Write(big)
			}()
			switch i % 5 {
			case 0:
				server.Close()
			case 1:
				server.(interface{ CloseRead() error }).CloseRead()
				server.Close()
			case 2:
				server.SetDeadline(time.Now())
				server.Close()
			case 3:
				revert, err := ep.Apply(t.Context(), toxics.Reset{})
				require.NoError(t, err)
				require.NoError(t, revert(t.Context()))
				server.Close()
			case 4:
				client.Close()
				server.Close()
			}
			<-done
			client.Close()
		}
	})
}

func TestNetDialFitsClients(t *testing.T) {
	n := NewNetwork(1)
	defer n.Close()
	// The signatures match, so no adapter is needed.
	var (
		_ pgconn.DialFunc = n.Dial
		_                 = http.Transport{DialContext: n.Dial}
		_                 = redis.Options{Dialer: n.Dial}
	)
}

func TestNetNilAndDoneContext(t *testing.T) {
	var n *Network
	_, err := n.Dial(context.Background(), "tcp", "db")
	require.ErrorContains(t, err, "nil *Network")
	var ep *Endpoint
	_, err = ep.Apply(context.Background(), toxics.Down{})
	require.ErrorContains(t, err, "nil *Endpoint")

	inBubble(t, 1, func(t *testing.T, n *Network) {
		ep, err := n.Endpoint("db")
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err = ep.Apply(ctx, toxics.Down{})
		require.ErrorIs(t, err, context.Canceled)
		require.Empty(t, ep.Active())
	})
}

// TestPipeReusesReadChunks: a pipe writes into the array of a chunk
// once it is read; what the reader gets is still what was written,
// whether a write lands in a read chunk, is appended to an unread one,
// or is only partly read.
func TestPipeReusesReadChunks(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		client, server, _ := connPair(t, n, "db")
		write(t, client, strings.Repeat("a", 100))
		require.Equal(t, strings.Repeat("a", 100), readN(t, server, 100))
		write(t, client, "bbb")
		write(t, client, "cc")
		require.Equal(t, "bb", readN(t, server, 2))
		write(t, client, "dddd")
		require.Equal(t, "bccdddd", readN(t, server, 7))
		write(t, client, strings.Repeat("e", 300))
		write(t, client, "f")
		require.Equal(t, strings.Repeat("e", 300)+"f", readN(t, server, 301))
	})
}
