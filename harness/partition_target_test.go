package harness

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/toxics"
)

// TestNetworkPartitionsContainers: the Env's network as a target cuts two
// real containers from each other while the partition holds, not the
// test from either, and heals on revert.
func TestNetworkPartitionsContainers(t *testing.T) {
	e := New(t)
	a, b := testserver(e, "a"), testserver(e, "b")
	ctx := ctxFor(t, 5*time.Minute)
	nw := e.Network()
	require.Equal(t, NetworkTarget, nw.Name())
	require.Equal(t, []string{"a", "b"}, nw.Members())

	require.True(t, canDial(ctx, t, a, "b"), "containers reach each other by name")
	require.True(t, canDial(ctx, t, b, "a"))

	revert, err := nw.Apply(ctx, toxics.Partition{Groups: [][]string{{"a"}, {"b"}}})
	require.NoError(t, err)
	// canDial asks each container through its Link: the host reaches both.
	require.False(t, canDial(ctx, t, a, "b"), "a is cut from b")
	require.False(t, canDial(ctx, t, b, "a"), "b is cut from a")
	require.NoError(t, healthz(ctx, a.Addr()), "the test reaches a through its Link")
	require.NoError(t, healthz(ctx, b.Addr()), "the test reaches b through its Link")
	// What a container sees is what sim's DialFrom gives across a cut: the
	// name of the other group does not resolve.
	code, body, err := httpGet(ctx, "http://"+a.Addr()+"/dial?addr=b:7000", 10*time.Second)
	require.NoError(t, err)
	require.Equal(t, http.StatusBadGateway, code)
	require.Contains(t, body, "no such host")

	_, err = nw.Apply(ctx, toxics.Partition{Groups: [][]string{{"b"}, {"a"}}})
	require.ErrorContains(t, err, "already in force")

	require.NoError(t, revert(ctx))
	require.True(t, canDial(ctx, t, a, "b"), "healed")
	require.True(t, canDial(ctx, t, b, "a"))
	require.NoError(t, healthz(ctx, a.Addr()))
	require.NoError(t, revert(ctx), "reverting twice is harmless")

	t.Run("a revert heals its own partition only", func(t *testing.T) {
		healOnFailure(t, e)
		old, err := nw.Apply(ctx, toxics.Partition{Groups: [][]string{{"a"}, {"b"}}})
		require.NoError(t, err)
		require.NoError(t, e.Reset(ctx))
		again, err := nw.Apply(ctx, toxics.Partition{Groups: [][]string{{"b"}, {"a"}}})
		require.NoError(t, err)
		require.NoError(t, old(ctx))
		require.False(t, canDial(ctx, t, a, "b"), "the old revert left the new partition alone")
		require.NoError(t, again(ctx))
		require.True(t, canDial(ctx, t, a, "b"))
	})

	t.Run("unknown members", func(t *testing.T) {
		_, err := nw.Apply(ctx, toxics.Partition{Groups: [][]string{{"a"}, {"nope", "b", "ghost"}}})
		require.ErrorContains(t, err, `no container dependency named "nope", "ghost" in this env (containers: a, b)`)
		require.True(t, canDial(ctx, t, a, "b"), "nothing changed")
	})
}

// TestNetworkApplyErrors needs no Docker: what the network target refuses
// it refuses before touching anything.
func TestNetworkApplyErrors(t *testing.T) {
	e := New(t)
	nw := e.Network()
	require.True(t, nw.Supports(toxics.KindPartition))
	for _, k := range append(toxics.LinkKinds(), toxics.NodeKinds()...) {
		require.False(t, nw.Supports(k), "%s", k)
	}
	require.Empty(t, nw.Members())
	ctx := context.Background()
	for _, tc := range []struct {
		f    toxics.Fault
		want string
	}{
		{toxics.Partition{Groups: [][]string{{"db"}, {"cache"}}}, `no container dependency named "db", "cache" in this env (containers: none)`},
		{toxics.Partition{Groups: [][]string{{"db"}, {}}}, "partition.groups[1] = []: is empty"},
		{toxics.Down{}, "takes partitions only"},
		{nil, "fault is nil"},
	} {
		_, err := nw.Apply(ctx, tc.f)
		require.ErrorContains(t, err, tc.want)
	}
	_, err := (*Network)(nil).Apply(ctx, toxics.Partition{})
	require.Error(t, err)
}
