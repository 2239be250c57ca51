package sim

import (
	"context"
	"io"
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/toxics"
)

type dialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// echoOnce writes one byte on c and reads its echo within a second.
func echoOnce(c net.Conn) error {
	if err := c.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	if _, err := c.Write([]byte{'x'}); err != nil {
		return err
	}
	_, err := io.ReadFull(c, make([]byte, 1))
	return err
}

// dialEcho dials address with dial and makes one round trip.
func dialEcho(t *testing.T, dial dialFunc, address string) error {
	t.Helper()
	c, err := dial(context.Background(), "tcp", address)
	if err != nil {
		return err
	}
	defer c.Close()
	return echoOnce(c)
}

func echoServers(t *testing.T, n *Network, names ...string) {
	t.Helper()
	for _, name := range names {
		_, err := n.FakeTCP(name, func(c net.Conn) { io.Copy(c, c) })
		require.NoError(t, err)
	}
}

func requireCutOff(t *testing.T, err error) {
	t.Helper()
	var dns *net.DNSError
	require.ErrorAs(t, err, &dns, "a dial across the cut fails as an unknown name")
	require.True(t, dns.IsNotFound)
	var op *net.OpError
	require.ErrorAs(t, err, &op)
	require.Equal(t, "dial", op.Op)
}

func TestPartitionsCutEndpoints(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		echoServers(t, n, "api", "cache", "db", "queue")
		api, cache, queue := n.DialFrom("api"), n.DialFrom("cache"), n.DialFrom("queue")
		require.NoError(t, dialEcho(t, api, "db:5432"))
		require.NoError(t, dialEcho(t, cache, "db"))

		across, err := api(context.Background(), "tcp", "db")
		require.NoError(t, err)
		defer across.Close()
		within, err := api(context.Background(), "tcp", "cache")
		require.NoError(t, err)
		defer within.Close()
		require.NoError(t, echoOnce(across))
		require.NoError(t, echoOnce(within))

		p := n.Partitions()
		revert := apply(t, p, toxics.Partition{Groups: [][]string{{"api", "cache"}, {"db"}}})

		requireCutOff(t, dialEcho(t, api, "db:5432"))
		requireCutOff(t, dialEcho(t, cache, "db"))
		requireCutOff(t, dialEcho(t, n.DialFrom("db"), "api"))
		require.NoError(t, dialEcho(t, api, "cache"), "one group keeps its links")
		require.NoError(t, dialEcho(t, queue, "db"), "an endpoint in no group reaches every group")
		require.NoError(t, dialEcho(t, queue, "api"))
		require.NoError(t, dialEcho(t, n.Dial, "db"), "the test's own dials are never cut")

		start := time.Now()
		err = echoOnce(across)
		require.ErrorIs(t, err, os.ErrDeadlineExceeded, "an open connection across the cut carries nothing")
		require.Equal(t, time.Second, time.Since(start), "it waits for its deadline, in virtual time")
		require.NoError(t, echoOnce(within), "an open connection within a group is untouched")

		_, err = p.Apply(context.Background(), toxics.Partition{Groups: [][]string{{"api"}, {"queue"}}})
		require.ErrorContains(t, err, "already in force")

		revert()
		require.NoError(t, dialEcho(t, api, "db:5432"), "healed")
		require.NoError(t, dialEcho(t, n.DialFrom("db"), "api"))
		require.ErrorIs(t, echoOnce(across), os.ErrDeadlineExceeded, "a connection cut stays cut after the heal")

		// Reverting twice is harmless, and a new partition may follow.
		revert()
		revert = apply(t, p, toxics.Partition{Groups: [][]string{{"api"}, {"queue"}}})
		requireCutOff(t, dialEcho(t, api, "queue"))
		require.NoError(t, dialEcho(t, api, "db"))
		revert()
	})
}

func TestPartitionsApplyErrors(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		echoServers(t, n, "db", "cache")
		p := n.Partitions()
		require.Equal(t, NetworkTarget, p.Name())
		require.True(t, p.Supports(toxics.KindPartition))
		for _, k := range append(toxics.LinkKinds(), toxics.NodeKinds()...) {
			require.False(t, p.Supports(k), "%s", k)
		}
		require.Equal(t, []string{"cache", "db"}, p.Members())

		for _, tc := range []struct {
			f    toxics.Fault
			want string
		}{
			{toxics.Partition{Groups: [][]string{{"db"}, {"queue", "cache", "mq"}}}, `no endpoint named "queue", "mq" (the network has: cache, db)`},
			{toxics.Partition{Groups: [][]string{{"db"}}}, "needs at least two groups"},
			{toxics.Latency{Delay: time.Second}, "takes partitions only"},
			{nil, "fault is nil"},
		} {
			_, err := p.Apply(context.Background(), tc.f)
			require.ErrorContains(t, err, tc.want)
		}
		// Nothing changed: the endpoints still reach each other.
		require.NoError(t, dialEcho(t, n.DialFrom("db"), "cache"))

		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := p.Apply(ctx, toxics.Partition{Groups: [][]string{{"db"}, {"cache"}}})
		require.ErrorIs(t, err, context.Canceled)
		require.NoError(t, dialEcho(t, n.DialFrom("db"), "cache"))

		_, err = n.DialFrom("")(context.Background(), "tcp", "db")
		require.Error(t, err)
		var nilNet *Network
		_, err = nilNet.DialFrom("db")(context.Background(), "tcp", "cache")
		require.Error(t, err)
		_, err = (*Partitions)(nil).Apply(context.Background(), toxics.Partition{})
		require.Error(t, err)

		require.NoError(t, n.Close())
		_, err = p.Apply(context.Background(), toxics.Partition{Groups: [][]string{{"db"}, {"cache"}}})
		require.ErrorIs(t, err, net.ErrClosed)
	})
}

// TestPartitionsInSchedules: partitions are scheduled on the network
// target; two at once on it conflict; a partition composes with link and
// node faults on the endpoints; a Run applies and reverts it.
func TestPartitionsInSchedules(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		echoServers(t, n, "api", "db")
		targets := append(n.Targets(), n.Partitions())
		cut := toxics.Partition{Groups: [][]string{{"api"}, {"db"}}}
		s := Schedule{Steps: []Step{
			{At: 0, For: time.Second, Target: NetworkTarget, Fault: cut},
			{At: 0, For: time.Second, Target: "db", Fault: toxics.Latency{Delay: time.Millisecond}},
			{At: 0, For: time.Second, Target: "db", Fault: toxics.Pause{}},
		}}
		require.NoError(t, s.Validate(targets))

		s.Steps = append(s.Steps, Step{At: 999 * time.Millisecond, For: time.Second, Target: NetworkTarget, Fault: cut})
		err := s.Validate(targets)
		var se *StepError
		require.ErrorAs(t, err, &se)
		require.Equal(t, 3, se.Index)
		require.ErrorContains(t, err, "overlaps step 0")
		s.Steps[3].At = time.Second
		require.NoError(t, s.Validate(targets), "one after the other")

		err = Schedule{Steps: []Step{{For: time.Second, Target: "db", Fault: cut}}}.Validate(targets)
		require.ErrorContains(t, err, `target "db" does not support the network fault partition`)
	})
}

func TestPartitionsNoDuplicateConnections(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		echoServers(t, n, "api", "db")
		api := n.DialFrom("api")
		for range 10 {
			require.NoError(t, dialEcho(t, api, "db"))
			synctest.Wait() // the server closes its side too
		}
		n.part.mu.Lock()
		defer n.part.mu.Unlock()
		// Closed connections are forgotten at the next dial.
		require.Len(t, n.part.conns, 1)
	})
}
