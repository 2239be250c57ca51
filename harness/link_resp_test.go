package harness

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/toxics"
)

// TestRedisProtocolFaults: go-redis, through the Link, to a real Redis:
// each error reply exactly as go-redis reports it, replies to pipelined
// commands in order, the N-th command, a held command, and the session
// usable afterwards.
func TestRedisProtocolFaults(t *testing.T) {
	forBackends(t, func(t *testing.T, b Backend) {
		e := New(t, WithBackend(b), WithSeed(7))
		r := e.Redis("cache")
		ctx := ctxFor(t, 5*time.Minute)
		require.True(t, r.Supports(toxics.KindRedisError))
		require.False(t, r.Supports(toxics.KindPgError))
		c := redisClient(r, 5*time.Second)
		defer c.Close()
		require.NoError(t, c.Set(ctx, "k", "v", 0).Err())

		t.Run("each reply as go-redis reports it", func(t *testing.T) {
			for _, reply := range append(toxics.RedisReplies(), "ERR custom failure") {
				revert, err := r.Apply(ctx, toxics.RedisError{Reply: reply, Requests: toxics.Requests{Share: 1, Commands: "GET"}})
				require.NoError(t, err)
				err = c.Get(ctx, "k").Err()
				var rerr goredis.Error
				require.ErrorAs(t, err, &rerr, "reply %q", reply)
				require.Equal(t, reply, err.Error())
				// Commands not named pass.
				require.NoError(t, c.Set(ctx, "k", "v", 0).Err())
				require.NoError(t, revert(ctx))
				got, err := c.Get(ctx, "k").Result()
				require.NoError(t, err, "after revert")
				require.Equal(t, "v", got)
			}
		})

		t.Run("pipelined replies keep their order", func(t *testing.T) {
			revert, err := r.Apply(ctx, toxics.RedisError{Reply: toxics.RedisBusy, Requests: toxics.Requests{Share: 1, Commands: "GET"}})
			require.NoError(t, err)
			defer revert(ctx)
			cmds, _ := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
				p.Set(ctx, "a", "1", 0)
				p.Get(ctx, "a")
				p.Incr(ctx, "n")
				p.Get(ctx, "a")
				p.Incr(ctx, "n")
				return nil
			})
			require.Len(t, cmds, 5)
			require.NoError(t, cmds[0].Err())
			require.Equal(t, toxics.RedisBusy, cmds[1].Err().Error())
			require.Equal(t, int64(1), cmds[2].(*goredis.IntCmd).Val())
			require.Equal(t, toxics.RedisBusy, cmds[3].Err().Error())
			require.Equal(t, int64(2), cmds[4].(*goredis.IntCmd).Val())
		})

		t.Run("the nth command", func(t *testing.T) {
			revert, err := r.Apply(ctx, toxics.RedisError{Reply: toxics.RedisReadOnly, Requests: toxics.Requests{Nth: 2, Commands: "SET"}})
			require.NoError(t, err)
			defer revert(ctx)
			require.NoError(t, c.Set(ctx, "x", "1", 0).Err())
			require.Equal(t, toxics.RedisReadOnly, c.Set(ctx, "x", "2", 0).Err().Error())
			require.NoError(t, c.Set(ctx, "x", "3", 0).Err())
			require.Equal(t, "3", c.Get(ctx, "x").Val())
		})

		t.Run("a share of commands, from the seed", func(t *testing.T) {
			revert, err := r.Apply(ctx, toxics.RedisError{Reply: toxics.RedisOOM, Requests: toxics.Requests{Share: 0.5, Commands: "INCR"}})
			require.NoError(t, err)
			var failed, total int
			for range 200 {
				total++
				if c.Incr(ctx, "share").Err() != nil {
					failed++
				}
			}
			require.NoError(t, revert(ctx))
			require.Greater(t, failed, 0)
			require.Less(t, failed, total)
			got, err := c.Get(ctx, "share").Int64()
			require.NoError(t, err)
			require.Equal(t, int64(total-failed), got, "every INCR answered by the Link never reached the server")
		})

		t.Run("a held command", func(t *testing.T) {
			slow := redisClient(r, 200*time.Millisecond)
			defer slow.Close()
			require.NoError(t, slow.Ping(ctx).Err())
			revert, err := r.Apply(ctx, toxics.RedisDelay{Delay: time.Hour, Requests: toxics.Requests{Share: 1, Commands: "GET"}})
			require.NoError(t, err)
			err = slow.Get(ctx, "k").Err()
			var ne net.Error
			require.True(t, errors.As(err, &ne) && ne.Timeout(), "want a timeout, got %v", err)
			require.NoError(t, revert(ctx))
			// Another connection, and the named command only: PING passes.
			require.NoError(t, c.Get(ctx, "k").Err())
		})

		t.Run("a link without the protocol refuses", func(t *testing.T) {
			l := NewLink(t, "plain", r.DirectAddr())
			_, err := l.Apply(context.Background(), toxics.RedisError{Reply: toxics.RedisLoading, Requests: toxics.Requests{Share: 1}})
			require.ErrorContains(t, err, "declares no protocol")
			require.False(t, l.Supports(toxics.KindRedisError))
		})
	})
}
