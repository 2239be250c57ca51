package sim

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/toxics"
)

func lossRTTs(t *testing.T, seed int64) []time.Duration {
	var out []time.Duration
	inBubble(t, seed, func(t *testing.T, n *Network) {
		client, server, ep := connPair(t, n, "db")
		apply(t, ep, toxics.Loss{Probability: 0.3, Direction: toxics.Downstream})
		for range 30 {
			out = append(out, roundTrip(t, client, server, "ping"))
		}
	})
	return out
}

// A lost segment costs whole retransmission timeouts (doubling), never a
// lost byte; the draws follow the seed.
func TestNetLoss(t *testing.T) {
	rtts := lossRTTs(t, 5)
	late := 0
	for _, d := range rtts {
		require.Zero(t, d%toxics.MinRTO, "a round trip of %v is not whole timeouts", d)
		if d > 0 {
			late++
		}
	}
	require.True(t, late > 0 && late < len(rtts), "%d of %d round trips late at p=0.3", late, len(rtts))
	require.Equal(t, rtts, lossRTTs(t, 5), "the same seed")
	require.NotEqual(t, rtts, lossRTTs(t, 6), "another seed")
}

func TestNetLossKeepsOrderAndRevertDelivers(t *testing.T) {
	inBubble(t, 2, func(t *testing.T, n *Network) {
		client, server, ep := connPair(t, n, "db")
		revert := apply(t, ep, toxics.Loss{Probability: 0.1, BadProbability: 1, EnterBad: 0.1, LeaveBad: 0.3})
		big := make([]byte, 200<<10)
		for i := range big {
			big[i] = byte(i * 7)
		}
		go func() { _, _ = client.Write(big) }()
		got := make([]byte, len(big))
		_, err := io.ReadFull(server, got[:len(got)/2])
		require.NoError(t, err)
		revert()
		start := time.Now()
		_, err = io.ReadFull(server, got[len(got)/2:])
		require.NoError(t, err)
		require.Equal(t, big, got)
		require.Zero(t, time.Since(start), "the revert delivers what is late at once")
	})
}

func dialCtx(n *Network, d time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return n.Dial(ctx, "tcp", "db")
}

// acceptAsync accepts on ln in the background.
func acceptAsync(ln net.Listener) <-chan net.Conn {
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(ch)
			return
		}
		ch <- c
	}()
	return ch
}

func TestNetConnectHangHandshake(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		client, server, ep := connPair(t, n, "db")
		revert := apply(t, ep, toxics.ConnectHang{})
		require.Zero(t, roundTrip(t, client, server, "live"))

		first, err := dialCtx(n, 300*time.Millisecond)
		require.NoError(t, err, "the first dial completes into the backlog")
		defer first.Close()
		for range 3 {
			_, err := dialCtx(n, 300*time.Millisecond)
			var ne net.Error
			require.True(t, errors.As(err, &ne) && ne.Timeout(), "dial error %v", err)
		}
		accepted := acceptAsync(ep.ln)
		time.Sleep(time.Second)
		require.Empty(t, accepted, "the server saw a connection during the hang")

		revert()
		s := <-accepted
		require.NotNil(t, s)
		defer s.Close()
		require.Zero(t, roundTrip(t, first, s, "after"))
	})
}

func TestNetConnectHangAccepted(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		_, _, ep := connPair(t, n, "db")
		revert := apply(t, ep, toxics.ConnectHang{Accepted: true})
		c, err := dialCtx(n, time.Second)
		require.NoError(t, err)
		defer c.Close()
		write(t, c, "held")
		accepted := acceptAsync(ep.ln)
		time.Sleep(time.Second)
		require.Empty(t, accepted)
		revert()
		s := <-accepted
		defer s.Close()
		require.Equal(t, "held", readN(t, s, 4))
	})
}

func TestNetConnLimit(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		client, server, ep := connPair(t, n, "db")
		revert := apply(t, ep, toxics.ConnLimit{Max: 1})
		c2, err := n.Dial(t.Context(), "tcp", "db")
		require.NoError(t, err)
		defer c2.Close()
		require.ErrorIs(t, readErr(t, c2), syscall.ECONNRESET)
		revert()

		apply(t, ep, toxics.ConnLimit{Max: 1, Hold: true})
		c3, err := n.Dial(t.Context(), "tcp", "db")
		require.NoError(t, err)
		defer c3.Close()
		write(t, c3, "h")
		accepted := acceptAsync(ep.ln)
		time.Sleep(time.Second)
		require.Empty(t, accepted)
		client.Close()
		server.Close()
		s := <-accepted
		defer s.Close()
		require.Equal(t, "h", readN(t, s, 1))
	})
}

func TestNetTargeted(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		c1, s1, ep := connPair(t, n, "db")
		c2, s2 := dialAccept(t, n, ep.ln, "db")
		revert := apply(t, ep, toxics.Targeted{Fault: toxics.Blackhole{}, Conns: toxics.Conns{Opened: toxics.Before}})
		c3, s3 := dialAccept(t, n, ep.ln, "db")
		require.Zero(t, roundTrip(t, c3, s3, "new"))
		for _, c := range []net.Conn{c1, c2} {
			write(t, c, "lost")
		}
		for _, s := range []net.Conn{s1, s2} {
			require.NoError(t, s.SetReadDeadline(time.Now().Add(time.Second)))
			requireTimeout(t, readErr(t, s))
			require.NoError(t, s.SetReadDeadline(time.Time{}))
		}
		revert()
		require.Zero(t, roundTrip(t, c1, s1, "back"))

		apply(t, ep, toxics.Targeted{Fault: toxics.Reset{}, Conns: toxics.Conns{Nth: 2}})
		d1, t1 := dialAccept(t, n, ep.ln, "db")
		d2, err := n.Dial(t.Context(), "tcp", "db")
		require.NoError(t, err)
		defer d2.Close()
		require.ErrorIs(t, readErr(t, d2), syscall.ECONNRESET, "the 2nd new connection")
		require.Zero(t, roundTrip(t, d1, t1, "1st"))
		require.Zero(t, roundTrip(t, c2, s2, "old"))
	})
}

func TestNetTargetedShareIsSeeded(t *testing.T) {
	picked := func(seed int64) (out []bool) {
		inBubble(t, seed, func(t *testing.T, n *Network) {
			_, _, ep := connPair(t, n, "db")
			var cs []net.Conn
			for range 16 {
				c, _ := dialAccept(t, n, ep.ln, "db")
				cs = append(cs, c)
			}
			apply(t, ep, toxics.Targeted{Fault: toxics.Reset{}, Conns: toxics.Conns{Share: 0.5}})
			for _, c := range cs {
				require.NoError(t, c.SetReadDeadline(time.Now().Add(time.Millisecond)))
				err := readErr(t, c)
				out = append(out, errors.Is(err, syscall.ECONNRESET))
				if !out[len(out)-1] {
					requireTimeout(t, err)
				}
			}
		})
		return out
	}
	a := picked(9)
	require.Equal(t, a, picked(9))
	n := 0
	for _, p := range a {
		if p {
			n++
		}
	}
	require.True(t, n > 0 && n < len(a), "share 0.5 reset %d of %d", n, len(a))
}
