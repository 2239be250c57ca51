package harness

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/toxics"
)

// dialTimeout dials addr with a real connect timeout.
func dialTimeout(addr string, d time.Duration) (net.Conn, error) {
	dl := net.Dialer{Timeout: d}
	return dl.Dial("tcp", addr)
}

// A handshake hang lets the backlog fill: after at most one dial that
// completes into the full backlog, dials time out in connect. The revert
// lets them through again, and the one in the backlog is served.
func TestLinkConnectHangHandshake(t *testing.T) {
	l, live := echoLink(t)
	revert := apply(t, l, toxics.ConnectHang{})
	ping(t, live, 'l') // live connections are not touched

	var inBacklog []net.Conn
	timedOut := 0
	for range 4 {
		c, err := dialTimeout(l.Addr(), 300*time.Millisecond)
		if err == nil {
			inBacklog = append(inBacklog, c)
			t.Cleanup(func() { _ = c.Close() })
			continue
		}
		var ne net.Error
		require.True(t, errors.As(err, &ne) && ne.Timeout(), "dial error %v is not a timeout", err)
		timedOut++
	}
	require.LessOrEqual(t, len(inBacklog), 1, "dials completed into a backlog of 0")
	require.GreaterOrEqual(t, timedOut, 3, "dials that hung in the handshake")
	require.Equal(t, int64(1), l.Stats().Accepted, "the Link accepted nothing during the hang")

	revert()
	ping(t, dial(t, l.Addr()), 'n')
	for _, c := range inBacklog {
		require.NoError(t, c.SetDeadline(time.Now().Add(ioDeadline)))
		ping(t, c, 'b')
	}
}

// An accepted hang completes dials but never dials the upstream; the
// revert forwards what the client sent meanwhile.
func TestLinkConnectHangAccepted(t *testing.T) {
	l, live := echoLink(t)
	revert := apply(t, l, toxics.ConnectHang{Accepted: true})
	ping(t, live, 'l')

	c, err := dialTimeout(l.Addr(), ioDeadline)
	require.NoError(t, err, "the dial completes")
	t.Cleanup(func() { _ = c.Close() })
	_, err = c.Write([]byte("held"))
	require.NoError(t, err)
	readNothing(t, c, 300*time.Millisecond)
	require.Equal(t, int64(1), l.Stats().Active, "the held connection has no upstream yet")

	revert()
	got := make([]byte, 4)
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	require.Equal(t, "held", string(got))
}

func TestLinkConnLimitReset(t *testing.T) {
	l, live := echoLink(t)
	revert := apply(t, l, toxics.ConnLimit{Max: 1})
	ping(t, live, 'l')
	expectReset(t, l.Addr())
	require.Equal(t, int64(1), l.Stats().Refused)

	// Below the limit, a new connection goes through.
	require.NoError(t, live.Close())
	require.Eventually(t, func() bool { return l.Stats().Active == 0 }, ioDeadline, time.Millisecond)
	ping(t, dial(t, l.Addr()), 'n')
	revert()
	ping(t, dial(t, l.Addr()), 'm')
}

func TestLinkConnLimitHold(t *testing.T) {
	l, live := echoLink(t)
	apply(t, l, toxics.ConnLimit{Max: 1, Hold: true})

	held := dial(t, l.Addr())
	_, err := held.Write([]byte{'h'})
	require.NoError(t, err)
	readNothing(t, held, 300*time.Millisecond)

	// One closes: the held one goes through, with what it sent.
	require.NoError(t, live.Close())
	got := make([]byte, 1)
	_, err = io.ReadFull(held, got)
	require.NoError(t, err)
	require.Equal(t, byte('h'), got[0])
	require.Equal(t, int64(0), l.Stats().Refused)
}

// Loss delays but never drops nor reorders: every byte arrives in order,
// and a lost segment costs at least one retransmission timeout.
func TestLinkLoss(t *testing.T) {
	l, c := echoLink(t, WithSeed(7))
	revert := apply(t, l, toxics.Loss{Probability: 0.3, Direction: toxics.Downstream})

	var slowest time.Duration
	for i := range 30 {
		slowest = max(slowest, ping(t, c, byte(i)))
	}
	require.GreaterOrEqual(t, slowest, toxics.MinRTO, "no round trip took a retransmission timeout (30 pings at p=0.3)")

	// A large write: cut into segments, reassembled in order.
	big := pattern(256 << 10)
	go func() { _, _ = c.Write(big) }()
	got := make([]byte, len(big))
	_, err := io.ReadFull(c, got)
	require.NoError(t, err)
	require.True(t, bytes.Equal(big, got), "the stream arrived changed")
	revert()
	ping(t, c, 'z')
}

// A bursty loss with a bad state that loses everything: the emulation
// still delivers every byte.
func TestLinkLossBursts(t *testing.T) {
	l, c := echoLink(t, WithSeed(3))
	apply(t, l, toxics.Loss{Probability: 0.01, BadProbability: 1, EnterBad: 0.2, LeaveBad: 0.5})
	for i := range 10 {
		ping(t, c, byte(i))
	}
}

// openN dials n connections through l, each carrying a byte, so that
// they are numbered 1..n in order.
func openN(t *testing.T, l *Link, n int) []*net.TCPConn {
	out := make([]*net.TCPConn, n)
	for i := range out {
		out[i] = dial(t, l.Addr())
		ping(t, out[i], byte(i))
		require.Eventually(t, func() bool { return l.Stats().Active == int64(i+1) }, ioDeadline, time.Millisecond)
	}
	return out
}

// answers reports whether c echoes a byte within d.
func answers(t *testing.T, c net.Conn, d time.Duration) bool {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(d)))
	defer func() { _ = c.SetReadDeadline(time.Now().Add(ioDeadline)) }()
	if _, err := c.Write([]byte{'?'}); err != nil {
		return false
	}
	_, err := io.ReadFull(c, make([]byte, 1))
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	require.NoError(t, err)
	return true
}

// A targeted blackhole on the connections open before it began: those go
// silent, new ones work; the revert heals the old ones.
func TestLinkTargetedBefore(t *testing.T) {
	up := serveTCP(t, echo)
	l := NewLink(t, "echo", up)
	old := openN(t, l, 2)
	revert := apply(t, l, toxics.Targeted{Fault: toxics.Blackhole{}, Conns: toxics.Conns{Opened: toxics.Before}})
	fresh := dial(t, l.Addr())
	require.True(t, answers(t, fresh, ioDeadline), "a connection opened during the fault")
	for i, c := range old {
		require.False(t, answers(t, c, 200*time.Millisecond), "old connection %d answered", i)
	}
	revert()
	for _, c := range old {
		// The byte sent during the blackhole is lost; the next comes back.
		require.True(t, answers(t, c, ioDeadline))
	}
}

// The Nth new connection only; a slot added to live pipelines (a second
// fault while the first holds) still knows its connection.
func TestLinkTargetedNth(t *testing.T) {
	up := serveTCP(t, echo)
	l := NewLink(t, "echo", up)
	old := openN(t, l, 1)
	apply(t, l, toxics.Latency{Delay: time.Millisecond}) // the slots of the first fault
	apply(t, l, toxics.Latency{Delay: time.Millisecond})
	apply(t, l, toxics.Targeted{Fault: toxics.Blackhole{}, Conns: toxics.Conns{Nth: 2}}) // a slot added now
	fresh := []*net.TCPConn{dial(t, l.Addr()), dial(t, l.Addr()), dial(t, l.Addr())}
	require.True(t, answers(t, old[0], ioDeadline))
	require.True(t, answers(t, fresh[0], ioDeadline))
	require.True(t, answers(t, fresh[2], ioDeadline))
	require.False(t, answers(t, fresh[1], 200*time.Millisecond), "the 2nd new connection answered")
}

// A targeted reset with a share: the seeded picks are the same for the
// same seed, and some but not all of 16 connections are reset.
func TestLinkTargetedShareReset(t *testing.T) {
	picked := func(seed int64) []bool {
		up := serveTCP(t, echo)
		l := NewLink(t, "echo", up, WithSeed(seed))
		conns := openN(t, l, 16)
		apply(t, l, toxics.Targeted{Fault: toxics.Reset{}, Conns: toxics.Conns{Share: 0.5}})
		out := make([]bool, len(conns))
		for i, c := range conns {
			_, err := c.Write([]byte{'x'})
			if err == nil {
				_, err = io.ReadFull(c, make([]byte, 1))
			}
			out[i] = errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF)
			if !out[i] {
				require.NoError(t, err)
			}
		}
		return out
	}
	a, b := picked(11), picked(11)
	require.Equal(t, a, b, "the same seed picks the same connections")
	n := 0
	for _, p := range a {
		if p {
			n++
		}
	}
	require.True(t, n > 0 && n < len(a), "share 0.5 reset %d of %d connections", n, len(a))
}

func TestLinkNetFaultsRejected(t *testing.T) {
	l := NewLink(t, "echo", serveTCP(t, echo))
	for _, f := range []toxics.Fault{
		toxics.Loss{},
		toxics.ConnLimit{Max: -1},
		toxics.Targeted{Fault: toxics.Down{}},
		toxics.Targeted{},
	} {
		_, err := l.Apply(context.Background(), f)
		var fe *toxics.FieldError
		require.ErrorAs(t, err, &fe, "%v", f)
	}
	require.Empty(t, l.Active())
}
