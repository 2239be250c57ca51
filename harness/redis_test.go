package harness

import (
	"context"
	"errors"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/toxics"
)

// redisClient is a client through the Link with the given timeouts and
// no retries, so a fault shows on the first call.
func redisClient(r *Redis, timeout time.Duration) *goredis.Client {
	o := r.Options()
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout = timeout, timeout, timeout
	o.MaxRetries = -1
	o.PoolSize = 1
	o.DisableIdentity = true
	return goredis.NewClient(o)
}

// redisProbe runs one PING on a new client.
func redisProbe(ctx context.Context, r *Redis, timeout time.Duration) error {
	c := redisClient(r, timeout)
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return c.Ping(ctx).Err()
}

func TestRedis(t *testing.T) {
	forBackends(t, func(t *testing.T, b Backend) {
		e := New(t, WithBackend(b))
		r := e.Redis("cache")
		ctx := ctxFor(t, 5*time.Minute)
		addr := r.Addr()
		require.NoError(t, redisProbe(ctx, r, 5*time.Second))

		t.Run("password required", func(t *testing.T) {
			o := r.Options()
			o.Password = ""
			c := goredis.NewClient(o)
			defer c.Close()
			require.Error(t, c.Ping(ctx).Err())
		})

		t.Run("link faults", func(t *testing.T) {
			checkLinkFaults(t, ctx, e, r, func(ctx context.Context, d time.Duration) error { return redisProbe(ctx, r, d) })
		})

		t.Run("live connection sees a fault", func(t *testing.T) {
			healOnFailure(t, e)
			c := redisClient(r, 300*time.Millisecond)
			defer c.Close()
			require.NoError(t, c.Ping(ctx).Err())
			_, err := r.Apply(ctx, toxics.Blackhole{})
			require.NoError(t, err)
			require.Error(t, c.Ping(ctx).Err())
			require.NoError(t, e.Reset(ctx))
			require.NoError(t, redisProbe(ctx, r, 5*time.Second))
		})

		t.Run("crash and restart keep the address", func(t *testing.T) {
			healOnFailure(t, e)
			revert, err := r.Apply(ctx, toxics.Crash{})
			require.NoError(t, err)
			require.Error(t, redisProbe(ctx, r, 2*time.Second))
			require.NoError(t, revert(ctx))
			require.Equal(t, addr, r.Addr())
			require.NoError(t, redisProbe(ctx, r, 5*time.Second))
		})

		t.Run("pause makes calls time out", func(t *testing.T) {
			healOnFailure(t, e)
			c := redisClient(r, 300*time.Millisecond)
			defer c.Close()
			require.NoError(t, c.Ping(ctx).Err())
			revert, err := r.Apply(ctx, toxics.Pause{})
			require.NoError(t, err)
			err = c.Ping(ctx).Err()
			require.Error(t, err)
			require.True(t, errors.Is(err, context.DeadlineExceeded) || isTimeout(err), "want a timeout, got %v", err)
			require.NoError(t, revert(ctx))
			require.NoError(t, redisProbe(ctx, r, 5*time.Second))
		})

		t.Run("data survives a graceful restart", func(t *testing.T) {
			healOnFailure(t, e)
			c := redisClient(r, 5*time.Second)
			require.NoError(t, c.Set(ctx, "kept", "before", 0).Err())
			require.NoError(t, c.Close())
			require.NoError(t, r.Restart(ctx))
			c = redisClient(r, 5*time.Second)
			defer c.Close()
			v, err := c.Get(ctx, "kept").Result()
			require.NoError(t, err)
			require.Equal(t, "before", v)
		})

		t.Run("Reset brings a stopped and a paused node back", func(t *testing.T) {
			healOnFailure(t, e)
			require.NoError(t, r.Stop(ctx))
			require.Error(t, redisProbe(ctx, r, time.Second))
			require.NoError(t, e.Reset(ctx))
			require.NoError(t, redisProbe(ctx, r, 5*time.Second))
			require.NoError(t, r.Pause(ctx))
			require.NoError(t, e.Reset(ctx))
			require.NoError(t, redisProbe(ctx, r, 5*time.Second))
		})
	})
}
