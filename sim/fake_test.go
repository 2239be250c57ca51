package sim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/toxics"
)

// httpClient returns a client that dials through n, with a timeout.
func httpClient(t *testing.T, n *Network, timeout time.Duration) *http.Client {
	t.Helper()
	tr := &http.Transport{DialContext: n.Dial}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: timeout}
}

func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return string(b), nil
}

func requireNetTimeout(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout(), "Timeout() of %v", err)
}

func fakeAPI(t *testing.T, n *Network) *FakeHTTP {
	t.Helper()
	api, err := n.FakeHTTP("api", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	}))
	require.NoError(t, err)
	return api
}

func TestFakeHTTP(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		api := fakeAPI(t, n)
		c := httpClient(t, n, time.Second)
		body, err := get(c, api.URL()+"/a")
		require.NoError(t, err)
		require.Equal(t, "hello /a", body)
		body, err = get(c, api.URL()+"/b")
		require.NoError(t, err)
		require.Equal(t, "hello /b", body)
		require.Equal(t, int64(2), api.Requests())
		require.Equal(t, int64(1), api.Stats().Accepted, "keep-alive reuses the connection")
	})
}

func TestFakeHTTPLinkFaults(t *testing.T) {
	for _, tc := range []struct {
		fault    toxics.Fault
		check    func(t *testing.T, err error)
		requests int64         // that reached the handler
		elapsed  time.Duration // negative: not checked
	}{
		{toxics.Latency{Delay: 300 * time.Millisecond}, func(t *testing.T, err error) { require.NoError(t, err) }, 1, 600 * time.Millisecond},
		{toxics.Latency{Delay: 2 * time.Second, Direction: toxics.Downstream}, func(t *testing.T, err error) { requireNetTimeout(t, err) }, 1, time.Second},
		{toxics.Blackhole{Direction: toxics.Upstream}, func(t *testing.T, err error) { requireNetTimeout(t, err) }, 0, time.Second},
		{toxics.Bandwidth{Rate: 0}, func(t *testing.T, err error) { requireNetTimeout(t, err) }, 0, time.Second},
		{toxics.Timeout{After: 100 * time.Millisecond}, func(t *testing.T, err error) { require.ErrorIs(t, err, io.EOF) }, 0, 100 * time.Millisecond},
		{toxics.Down{}, func(t *testing.T, err error) { require.ErrorIs(t, err, syscall.ECONNREFUSED) }, 0, 0},
		{toxics.Reset{}, func(t *testing.T, err error) { require.ErrorIs(t, err, syscall.ECONNRESET) }, 0, 0},
		{toxics.Crash{}, func(t *testing.T, err error) { require.ErrorIs(t, err, syscall.ECONNREFUSED) }, 0, 0},
		{toxics.Pause{}, func(t *testing.T, err error) { requireNetTimeout(t, err) }, 0, time.Second},
		{toxics.Bandwidth{Rate: 1000, Direction: toxics.Downstream}, func(t *testing.T, err error) { require.NoError(t, err) }, 1, -1},
		{toxics.Slicer{AverageSize: 3, SizeVariation: 2, Delay: time.Millisecond}, func(t *testing.T, err error) { require.NoError(t, err) }, 1, -1},
		{toxics.SlowClose{Delay: time.Second}, func(t *testing.T, err error) { require.NoError(t, err) }, 1, 0},
		{toxics.DataLimit{Bytes: 20, Direction: toxics.Downstream}, func(t *testing.T, err error) { require.ErrorContains(t, err, "connection broken") }, 1, 0},
		// Every byte of the response damaged: the client never finds the
		// end of its header.
		{toxics.Corrupt{Probability: 1, Direction: toxics.Downstream}, func(t *testing.T, err error) { requireNetTimeout(t, err) }, 1, time.Second},
	} {
		t.Run(tc.fault.String(), func(t *testing.T) {
			inBubble(t, 1, func(t *testing.T, n *Network) {
				api := fakeAPI(t, n)
				c := httpClient(t, n, time.Second)
				revert := apply(t, api, tc.fault)
				start := time.Now()
				_, err := get(c, api.URL()+"/x")
				tc.check(t, err)
				if tc.elapsed >= 0 {
					require.Equal(t, tc.elapsed, time.Since(start))
				}
				require.Equal(t, tc.requests, api.Requests())
				revert()
				body, err := get(c, api.URL()+"/healed")
				require.NoError(t, err, "after the revert")
				require.Equal(t, "hello /healed", body)
			})
		})
	}
}

func TestFakeHTTPPanic(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		api, err := n.FakeHTTP("api", http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
		require.NoError(t, err)
		_, err = get(httpClient(t, n, time.Second), api.URL())
		require.Error(t, err)
		require.ErrorIs(t, api.Err(), ErrPanic)
		require.ErrorContains(t, api.Err(), "boom")
	})
}

func TestFakeTCP(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		_, err := n.FakeTCP("bad", nil)
		require.Error(t, err)
		f, err := n.FakeTCP("greeter", func(c net.Conn) {
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				return
			}
			if line == "panic\n" {
				panic("asked to")
			}
			io.WriteString(c, "hi "+line)
		})
		require.NoError(t, err)
		_, err = n.FakeTCP("greeter", func(net.Conn) {})
		require.ErrorIs(t, err, syscall.EADDRINUSE)
		for _, name := range []string{"ann", "bob"} {
			c, err := n.Dial(t.Context(), "tcp", "greeter:1")
			require.NoError(t, err)
			write(t, c, name+"\n")
			got, err := io.ReadAll(c)
			require.NoError(t, err)
			require.Equal(t, "hi "+name+"\n", string(got))
			c.Close()
		}
		require.Equal(t, int64(2), f.Conns())
		require.NoError(t, f.Err())
		c, err := n.Dial(t.Context(), "tcp", "greeter:1")
		require.NoError(t, err)
		write(t, c, "panic\n")
		_, err = io.ReadAll(c)
		require.NoError(t, err)
		c.Close()
		require.ErrorIs(t, f.Err(), ErrPanic)
		require.NoError(t, f.Close())
		require.NoError(t, f.Close())
		_, err = n.Dial(t.Context(), "tcp", "greeter:1")
		require.ErrorIs(t, err, syscall.ECONNREFUSED)
	})
}

// redisClient returns a go-redis client of kv, closed at the end.
func redisClient(t *testing.T, n *Network, opts redis.Options) *redis.Client {
	t.Helper()
	opts.Addr = "kv:6379"
	if opts.Dialer == nil {
		opts.Dialer = n.Dial
	}
	// Without this, go-redis resolves the host of Addr with the real DNS.
	opts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	if opts.PoolSize == 0 {
		// A pool that runs out waits on a timer another bubble may have
		// made, a fatal error (see the package doc): the default, 10
		// per GOMAXPROCS, runs out at GOMAXPROCS=1.
		opts.PoolSize = 64
	}
	rdb := redis.NewClient(&opts)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func TestFakeKVWithGoRedis(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		kv, err := n.FakeKV("kv")
		require.NoError(t, err)
		rdb := redisClient(t, n, redis.Options{})
		ctx := t.Context()
		require.NoError(t, rdb.Ping(ctx).Err())
		require.NoError(t, rdb.Set(ctx, "a", "1", 0).Err())
		v, err := rdb.Get(ctx, "a").Result()
		require.NoError(t, err)
		require.Equal(t, "1", v)
		require.Equal(t, int64(2), rdb.Incr(ctx, "a").Val())
		require.Equal(t, int64(12), rdb.IncrBy(ctx, "a", 10).Val())
		require.Equal(t, int64(11), rdb.Decr(ctx, "a").Val())
		require.Equal(t, int64(1), rdb.Incr(ctx, "nan").Val())
		require.NoError(t, rdb.Set(ctx, "s", "text", 0).Err())
		require.ErrorContains(t, rdb.Incr(ctx, "s").Err(), "not an integer")
		ok, err := rdb.SetNX(ctx, "a", "x", 0).Result()
		require.NoError(t, err)
		require.False(t, ok)
		require.Equal(t, int64(2), rdb.Exists(ctx, "a", "s", "zzz").Val())
		require.Equal(t, int64(1), rdb.Del(ctx, "s").Val())
		_, err = rdb.Get(ctx, "s").Result()
		require.ErrorIs(t, err, redis.Nil)
		require.Equal(t, map[string]string{"a": "11", "nan": "1"}, kv.Snapshot())

		// Expiry follows virtual time.
		require.NoError(t, rdb.Set(ctx, "ttl", "v", 2*time.Second).Err())
		time.Sleep(time.Second)
		require.Equal(t, "v", rdb.Get(ctx, "ttl").Val())
		time.Sleep(time.Second)
		require.ErrorIs(t, rdb.Get(ctx, "ttl").Err(), redis.Nil)

		// Pipelining.
		cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := range 10 {
				p.Incr(ctx, "p")
				_ = i
			}
			return nil
		})
		require.NoError(t, err)
		require.Len(t, cmds, 10)
		require.Equal(t, "10", rdb.Get(ctx, "p").Val())

		require.Equal(t, kv.Stats().Accepted, kv.Calls("hello"), "go-redis tried RESP3 once per connection and fell back")
		require.Equal(t, kv.Calls("SET"), kv.Calls("set"))
		require.GreaterOrEqual(t, kv.Calls("set"), int64(3))
		require.Greater(t, kv.Requests(), int64(20))
		require.NoError(t, kv.Err())
	})
}

func TestFakeKVNodeFaults(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		kv, err := n.FakeKV("kv")
		require.NoError(t, err)
		rdb := redisClient(t, n, redis.Options{MaxRetries: -1, ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond})
		ctx := t.Context()
		require.NoError(t, rdb.Set(ctx, "k", "kept", 0).Err())

		// Restart: pooled connections break once, the data stays.
		apply(t, kv, toxics.Restart{})
		require.ErrorIs(t, rdb.Get(ctx, "k").Err(), io.EOF, "the pooled connection was closed")
		require.Equal(t, "kept", rdb.Get(ctx, "k").Val())

		// Stop: refused until the revert; the data stays.
		revert := apply(t, kv, toxics.Stop{})
		for range 3 {
			err := rdb.Get(ctx, "k").Err()
			require.Error(t, err)
			require.False(t, errors.Is(err, redis.Nil))
		}
		require.ErrorIs(t, rdb.Get(ctx, "k").Err(), syscall.ECONNREFUSED)
		revert()
		require.Equal(t, "kept", rdb.Get(ctx, "k").Val())

		// Pause: calls time out, then go on.
		revert = apply(t, kv, toxics.Pause{})
		start := time.Now()
		requireNetTimeout(t, rdb.Get(ctx, "k").Err())
		require.Equal(t, 500*time.Millisecond, time.Since(start))
		revert()
		require.Equal(t, "kept", rdb.Get(ctx, "k").Val())

		// Crash: the data is lost.
		revert = apply(t, kv, toxics.Crash{})
		require.ErrorIs(t, rdb.Get(ctx, "k").Err(), syscall.ECONNRESET)
		require.ErrorIs(t, rdb.Get(ctx, "k").Err(), syscall.ECONNREFUSED)
		revert()
		require.ErrorIs(t, rdb.Get(ctx, "k").Err(), redis.Nil)
		_, ok := kv.Get("k")
		require.False(t, ok)
	})
}

func TestFakeKVLinkFaults(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		kv, err := n.FakeKV("kv")
		require.NoError(t, err)
		rdb := redisClient(t, n, redis.Options{MaxRetries: -1, ReadTimeout: 300 * time.Millisecond})
		ctx := t.Context()
		require.NoError(t, rdb.Set(ctx, "k", "v", 0).Err())

		revert := apply(t, kv, toxics.Latency{Delay: 100 * time.Millisecond})
		start := time.Now()
		require.Equal(t, "v", rdb.Get(ctx, "k").Val())
		require.Equal(t, 200*time.Millisecond, time.Since(start))
		revert()

		revert = apply(t, kv, toxics.Latency{Delay: time.Second, Direction: toxics.Downstream})
		before := kv.Calls("GET")
		requireNetTimeout(t, rdb.Get(ctx, "k").Err())
		require.Equal(t, before+1, kv.Calls("GET"), "the command reached the server")
		revert()

		// The connection that timed out is gone; a new one is reset as
		// soon as it is accepted: HELLO is written, its reply read fails
		// with ECONNRESET, and go-redis reports the EOF of its next read,
		// as against a real Link.
		revert = apply(t, kv, toxics.Reset{})
		require.ErrorIs(t, rdb.Get(ctx, "k").Err(), io.EOF)
		revert()
		require.Equal(t, "v", rdb.Get(ctx, "k").Val())

		// Corruption never hangs or crashes the server: the client gets an
		// error or a damaged reply, and the server stays up.
		revert = apply(t, kv, toxics.Corrupt{Probability: 0.5, Direction: toxics.Upstream})
		for range 20 {
			_ = rdb.Set(ctx, "k", "v", 0).Err()
		}
		revert()
		require.NoError(t, rdb.Set(ctx, "k", "v", 0).Err())
		require.NoError(t, kv.Err())
	})
}

// rawKV sends raw protocol bytes to kv and returns the reply up to EOF
// or the first pause of a second.
func rawKV(t *testing.T, n *Network, req string) string {
	t.Helper()
	c, err := n.Dial(t.Context(), "tcp", "kv")
	require.NoError(t, err)
	defer c.Close()
	write(t, c, req)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(time.Second)))
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		k, err := c.Read(buf)
		sb.Write(buf[:k])
		if err != nil {
			return sb.String()
		}
	}
}

func TestFakeKVProtocol(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		_, err := n.FakeKV("kv")
		require.NoError(t, err)
		for _, tc := range []struct{ name, req, want string }{
			{"inline", "PING\r\nECHO hi\r\n", "+PONG\r\n$2\r\nhi\r\n"},
			{"resp", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv1\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "+OK\r\n$2\r\nv1\r\n"},
			{"missing", "GET nope\r\n", "$-1\r\n"},
			{"hello", "HELLO 3\r\n", "-ERR unknown command 'HELLO', with args beginning with: '3' \r\n"},
			{"client", "CLIENT SETINFO LIB-NAME x\r\n", "-ERR unknown command 'CLIENT', with args beginning with: 'SETINFO' 'LIB-NAME' 'x' \r\n"},
			{"arity", "GET\r\n", "-ERR wrong number of arguments for 'get' command\r\n"},
			{"select", "SELECT 0\r\nSELECT 1\r\n", "+OK\r\n-ERR DB index is out of range\r\n"},
			{"set options", "SET k v NX\r\nSET k w XX GET\r\nSET k v EX 0\r\nSET k v BOGUS\r\n", "$-1\r\n$2\r\nv1\r\n-ERR invalid expire time in 'set' command\r\n-ERR syntax error\r\n"},
			{"quit", "QUIT\r\nPING\r\n", "+OK\r\n"},
			{"bad multibulk", "*x\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
			{"bad bulk", "*1\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
			{"not bulk", "*1\r\n:1\r\n", "-ERR Protocol error: expected '$', got ':'\r\n"},
			{"huge bulk", "*1\r\n$999999999999\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
			{"flush", "FLUSHALL\r\nDBSIZE\r\n", "+OK\r\n:0\r\n"},
			{"signed lengths", "*+2\r\n$+4\r\nECHO\r\n$02\r\nhi\r\n", "$2\r\nhi\r\n"},
			{"long inline", "ECHO " + strings.Repeat("x", 5000) + "\r\n", "$5000\r\n" + strings.Repeat("x", 5000) + "\r\n"},
			{"long bulk", "*2\r\n$4\r\nECHO\r\n$6000\r\n" + strings.Repeat("y", 6000) + "\r\n", "$6000\r\n" + strings.Repeat("y", 6000) + "\r\n"},
			{"bulk without CRLF", "*1\r\n$4\r\nPINGxx", "-ERR Protocol error: bulk string not followed by CRLF\r\n"},
		} {
			require.Equal(t, tc.want, rawKV(t, n, tc.req), tc.name)
		}
	})
}

func FuzzFakeKV(f *testing.F) {
	f.Add([]byte("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"))
	f.Add([]byte("SET k v EX 10\r\nINCR k\r\n"))
	f.Add([]byte("*1\r\n$4\r\nPING\r\n*-1\r\n"))
	f.Fuzz(func(t *testing.T, req []byte) {
		n := NewNetwork(1)
		defer n.Close()
		kv, err := n.FakeKV("kv")
		require.NoError(t, err)
		c, err := n.Dial(context.Background(), "tcp", "kv")
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Write(req)
		require.NoError(t, err)
		require.NoError(t, c.(interface{ CloseWrite() error }).CloseWrite())
		c.SetReadDeadline(time.Now().Add(time.Second))
		io.Copy(io.Discard, c)
		require.NoError(t, kv.Err())
	})
}

// TestUpperName: upperName is strings.ToUpper, names outside kvNames and
// outside ASCII included.
func TestUpperName(t *testing.T) {
	for _, name := range []string{"incr", "INCR", "InCr", "hello", "client", "pexpireat", "nope", "", "ſet", "ınc", "é", "averyveryverylongname", "get\x00"} {
		require.Equal(t, strings.ToUpper(name), upperName(name), name)
	}
}
