package properties_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/harness"
	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// protoScript runs the same commands and Redis protocol faults on any
// target and returns what go-redis reported, one line per command.
func protoScript(ctx context.Context, t *testing.T, target sim.Target, rdb *redis.Client) []string {
	var out []string
	note := func(what string, c redis.Cmder) {
		out = append(out, fmt.Sprintf("%s: %v", what, c.Err()))
	}
	apply := func(f toxics.Fault) func(context.Context) error {
		revert, err := target.Apply(ctx, f)
		require.NoError(t, err)
		return revert
	}
	require.NoError(t, rdb.Set(ctx, "k", "v", 0).Err())
	for _, reply := range toxics.RedisReplies() {
		revert := apply(toxics.RedisError{Reply: reply, Requests: toxics.Requests{Share: 1, Commands: "GET"}})
		note("get", rdb.Get(ctx, "k"))
		note("set", rdb.Set(ctx, "k", "v", 0))
		require.NoError(t, revert(ctx))
	}
	revert := apply(toxics.RedisError{Reply: toxics.RedisBusy, Requests: toxics.Requests{Nth: 2, Commands: "INCR"}})
	cmds, _ := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for range 4 {
			p.Incr(ctx, "n")
		}
		p.Get(ctx, "n")
		return nil
	})
	for _, c := range cmds {
		out = append(out, fmt.Sprintf("%s: %v", c.Name(), c.String()))
	}
	require.NoError(t, revert(ctx))
	return out
}

// TestRedisProtocolDifferential: go-redis reports the same, command for
// command, whether FakeKV takes the Redis protocol faults in simulation
// or a real Link takes them in front of a real Redis.
func TestRedisProtocolDifferential(t *testing.T) {
	var simulated []string
	synctest.Test(t, func(t *testing.T) {
		n := sim.NewNetwork(1)
		defer n.Close()
		kv, err := n.FakeKV("cache")
		require.NoError(t, err)
		o := redisOptions(&redis.Options{Addr: "cache:6379", Dialer: n.Dial, PoolSize: 1}, 0)
		rdb := redis.NewClient(o)
		defer rdb.Close()
		simulated = protoScript(t.Context(), t, kv, rdb)
	})

	e := harness.New(t)
	r := e.Redis("cache")
	o := redisOptions(r.Options(), 0)
	o.PoolSize = 1
	rdb := redis.NewClient(o)
	defer rdb.Close()
	real := protoScript(t.Context(), t, r, rdb)
	require.Equal(t, real, simulated)
	require.Contains(t, real, "incr: incr n: "+toxics.RedisBusy)
}
