package harness

import (
	"context"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/toxics"
)

// TestLinkTargetedRedisPool: half of a go-redis pool blackholed, through a
// real Link to a real Redis. Eight PINGs at once, each on a pinned
// connection, take the eight pooled connections: exactly those the seeded
// selector picked time out. The pool replaces them with connections opened
// after the fault began, which the fault leaves alone, so the next eight
// all succeed.
func TestLinkTargetedRedisPool(t *testing.T) {
	e := New(t)
	r := e.Redis("cache")
	ctx := ctxFor(t, 5*time.Minute)
	const size = 8
	o := r.Options()
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout = 5*time.Second, 300*time.Millisecond, 300*time.Millisecond
	o.MaxRetries = -1
	o.PoolSize, o.MinIdleConns = size, size
	o.DisableIdentity = true
	// Pinned connections (c.Conn) initialised at once race on the
	// client's options in go-redis's maintenance-notification handshake
	// (one Conn's fallback writes the mode another reads): off.
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	c := redisPool(t, o)

	l := r.Link()
	// Each PING runs on its own pinned connection (c.Conn), held until all
	// eight are done: a PING that returned its connection to the pool
	// early would hand a healthy connection to a PING that started late (a
	// loaded machine starts goroutines late), and fewer than the picked
	// connections would be tried.
	burst := func() (timeouts int) {
		var wg sync.WaitGroup
		errs := make([]error, size)
		conns := make([]*goredis.Conn, size)
		for i := range size {
			conns[i] = c.Conn()
		}
		for i := range size {
			wg.Go(func() { errs[i] = conns[i].Ping(ctx).Err() })
		}
		wg.Wait()
		for _, cn := range conns {
			_ = cn.Close()
		}
		for _, err := range errs {
			if err != nil {
				require.True(t, isTimeout(err), "want a timeout, got %v", err)
				timeouts++
			}
		}
		return timeouts
	}
	require.Zero(t, burst())
	require.Eventually(t, func() bool { return l.Stats().Active == size }, 30*time.Second, 10*time.Millisecond, "the pool's connections")

	revert, err := l.Apply(ctx, toxics.Targeted{Fault: toxics.Blackhole{}, Conns: toxics.Conns{Share: 0.5, Opened: toxics.Before}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = revert(context.Background()) })
	picked := 0
	l.mu.Lock()
	a := l.faults[len(l.faults)-1]
	for lc := range l.conns {
		if a.pick(lc.id) {
			picked++
		}
	}
	l.mu.Unlock()
	t.Logf("the selector picked %d of the %d pooled connections", picked, size)

	require.Equal(t, picked, burst(), "PINGs that timed out")
	require.Zero(t, burst(), "the replacements opened after the fault began")
}

func redisPool(t *testing.T, o *goredis.Options) *goredis.Client {
	c := goredis.NewClient(o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}
