package sim

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/toxics"
)

// TestFakeKVProtocolFaults: go-redis sees FakeKV's protocol faults as it
// sees the real Link's (harness TestRedisProtocolFaults): the error reply
// as the error's text, replies to pipelined commands in order, the N-th
// command, a held command released by its revert.
func TestFakeKVProtocolFaults(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, n *Network) {
		kv, err := n.FakeKV("kv")
		require.NoError(t, err)
		require.True(t, kv.Supports(toxics.KindRedisError))
		require.False(t, kv.Supports(toxics.KindPgError))
		rdb := redisClient(t, n, redis.Options{MaxRetries: -1, PoolSize: 1})
		ctx := t.Context()
		require.NoError(t, rdb.Set(ctx, "k", "v", 0).Err())

		for _, reply := range toxics.RedisReplies() {
			revert, err := kv.Apply(ctx, toxics.RedisError{Reply: reply, Requests: toxics.Requests{Share: 1, Commands: "GET"}})
			require.NoError(t, err)
			require.Len(t, kv.Active(), 1)
			calls := kv.Calls("GET")
			err = rdb.Get(ctx, "k").Err()
			var rerr redis.Error
			require.ErrorAs(t, err, &rerr)
			require.Equal(t, reply, err.Error())
			require.Equal(t, calls, kv.Calls("GET"), "an answered command never runs")
			require.NoError(t, revert(ctx))
			require.Equal(t, "v", rdb.Get(ctx, "k").Val())
		}

		revert, err := kv.Apply(ctx, toxics.RedisError{Reply: toxics.RedisBusy, Requests: toxics.Requests{Share: 1, Commands: "GET"}})
		require.NoError(t, err)
		cmds, _ := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "a", "1", 0)
			p.Get(ctx, "a")
			p.Incr(ctx, "n")
			p.Get(ctx, "a")
			return nil
		})
		require.NoError(t, cmds[0].Err())
		require.Equal(t, toxics.RedisBusy, cmds[1].Err().Error())
		require.Equal(t, int64(1), cmds[2].(*redis.IntCmd).Val())
		require.Equal(t, toxics.RedisBusy, cmds[3].Err().Error())
		require.NoError(t, revert(ctx))

		revert, err = kv.Apply(ctx, toxics.RedisError{Reply: toxics.RedisReadOnly, Requests: toxics.Requests{Nth: 2, Commands: "SET"}})
		require.NoError(t, err)
		require.NoError(t, rdb.Set(ctx, "x", "1", 0).Err())
		require.Equal(t, toxics.RedisReadOnly, rdb.Set(ctx, "x", "2", 0).Err().Error())
		require.NoError(t, rdb.Set(ctx, "x", "3", 0).Err())
		require.NoError(t, revert(ctx))

		revert, err = kv.Apply(ctx, toxics.RedisDelay{Delay: time.Hour, Requests: toxics.Requests{Share: 1, Commands: "GET"}})
		require.NoError(t, err)
		start := time.Now()
		done := make(chan error)
		go func() { done <- rdb.Get(ctx, "k").Err() }()
		time.Sleep(2 * time.Second) // under go-redis's 3s read timeout
		require.NoError(t, revert(ctx))
		require.NoError(t, <-done)
		require.Equal(t, 2*time.Second, time.Since(start), "held until the revert, in virtual time")

		require.NoError(t, kv.Clear(ctx))
		require.Empty(t, kv.Active())
		_, err = kv.Endpoint.Apply(ctx, toxics.RedisError{Reply: toxics.RedisLoading, Requests: toxics.Requests{Share: 1}})
		require.ErrorContains(t, err, "speaks no redis")
		require.NoError(t, kv.Err())
	})
}
