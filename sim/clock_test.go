package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/toxics"
)

func TestClockFaultsMoveTheEndpointClock(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		ctx := t.Context()
		ep, err := n.Endpoint("db")
		require.NoError(t, err)
		require.True(t, ep.Supports(toxics.KindClockSkew) && ep.Supports(toxics.KindClockJump))
		offset := func() time.Duration { return time.Until(ep.Now()) }
		require.Equal(t, time.Duration(0), offset())

		skew, err := ep.Apply(ctx, toxics.ClockSkew{Offset: 3 * time.Second})
		require.NoError(t, err)
		require.Equal(t, 3*time.Second, offset())
		time.Sleep(time.Minute) // the clock runs at the client's rate
		require.Equal(t, 3*time.Second, offset())
		back, err := ep.Apply(ctx, toxics.ClockJump{By: -time.Hour, Back: true})
		require.NoError(t, err)
		require.Equal(t, 3*time.Second-time.Hour, offset())
		require.Len(t, ep.Active(), 2)
		require.NoError(t, back(ctx))
		require.NoError(t, skew(ctx))
		require.NoError(t, skew(ctx)) // idempotent
		require.Equal(t, time.Duration(0), offset())

		step, err := ep.Apply(ctx, toxics.ClockJump{By: 2 * time.Second})
		require.NoError(t, err)
		require.NoError(t, step(ctx))
		require.Equal(t, 2*time.Second, offset(), "a jump without Back stays after its revert")
		require.Empty(t, ep.Active())
		require.NoError(t, ep.Clear(ctx))
		require.Equal(t, time.Duration(0), offset(), "Clear sets the clock back")

		_, err = ep.Apply(ctx, toxics.ClockSkew{})
		require.ErrorContains(t, err, "clock_skew.offset")
	})
}

// A real target refuses the clock kinds when a schedule is validated
// against it, saying why.
func TestClockFaultsRefusedByOtherTargets(t *testing.T) {
	s := Schedule{Steps: []Step{{Target: "db", At: 0, For: time.Second, Fault: toxics.ClockSkew{Offset: time.Second}}}}
	err := s.Validate([]Target{linkOnly{"db"}})
	require.ErrorContains(t, err, "simulation-only")
}

// linkOnly stands for a harness Link: it takes the link kinds only.
type linkOnly struct{ name string }

func (l linkOnly) Name() string                { return l.name }
func (l linkOnly) Supports(k toxics.Kind) bool { return k.IsLink() }
func (l linkOnly) Apply(context.Context, toxics.Fault) (func(context.Context) error, error) {
	return nil, fmt.Errorf("not applied")
}

func TestFakeKVExpiryCommands(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		ctx := t.Context()
		kv, err := n.FakeKV("kv")
		require.NoError(t, err)
		rdb := redisClient(t, n, redis.Options{})

		require.NoError(t, rdb.Set(ctx, "a", "1", 1500*time.Millisecond).Err())
		require.Equal(t, 1500*time.Millisecond, rdb.PTTL(ctx, "a").Val())
		require.Equal(t, 2*time.Second, rdb.TTL(ctx, "a").Val(), "TTL rounds to the nearest second")
		require.Equal(t, time.Duration(-2), rdb.TTL(ctx, "missing").Val())
		require.NoError(t, rdb.Set(ctx, "b", "2", 0).Err())
		require.Equal(t, time.Duration(-1), rdb.TTL(ctx, "b").Val())

		require.True(t, rdb.Expire(ctx, "b", 10*time.Second).Val())
		require.True(t, rdb.PExpire(ctx, "b", 2500*time.Millisecond).Val())
		require.Equal(t, 2500*time.Millisecond, rdb.PTTL(ctx, "b").Val())
		require.False(t, rdb.ExpireNX(ctx, "b", time.Second).Val())
		require.False(t, rdb.ExpireGT(ctx, "b", time.Second).Val())
		require.True(t, rdb.ExpireLT(ctx, "b", time.Second).Val())
		require.False(t, rdb.Expire(ctx, "missing", time.Second).Val())
		require.True(t, rdb.Persist(ctx, "b").Val())
		require.Equal(t, time.Duration(-1), rdb.TTL(ctx, "b").Val())
		require.True(t, rdb.ExpireAt(ctx, "b", time.Now().Add(4*time.Second)).Val())
		require.True(t, rdb.PExpireAt(ctx, "b", time.Now().Add(3*time.Second)).Val())
		require.Equal(t, 3*time.Second, rdb.PTTL(ctx, "b").Val())
		require.NoError(t, rdb.SetArgs(ctx, "c", "3", redis.SetArgs{ExpireAt: time.Now().Add(5 * time.Second)}).Err())
		require.Equal(t, 5*time.Second, rdb.PTTL(ctx, "c").Val())
		require.True(t, rdb.SetNX(ctx, "lock", "me", 10*time.Second).Val())
		require.False(t, rdb.SetNX(ctx, "lock", "you", 10*time.Second).Val())
		require.ErrorContains(t, rdb.Do(ctx, "EXPIRE", "b", "1", "NX", "GT").Err(), "not compatible")
		require.ErrorContains(t, rdb.Do(ctx, "EXPIRE", "b", "soon").Err(), "not an integer")
		require.ErrorContains(t, rdb.Do(ctx, "SET", "d", "4", "PX", "0").Err(), "invalid expire time")
		require.ErrorContains(t, rdb.Do(ctx, "PEXPIRE", "b", "9223372036854775807").Err(), "invalid expire time")

		time.Sleep(1600 * time.Millisecond)
		_, ok := kv.Get("a")
		require.False(t, ok, "a expired")
		require.True(t, rdb.Expire(ctx, "b", -time.Second).Val(), "a past expiry deletes")
		require.Equal(t, int64(0), rdb.Exists(ctx, "b").Val())
	})
}

// A step of the server's clock while a TTL runs expires the key early
// (ahead) or late (behind), as the client sees time.
func TestFakeKVExpiryOnTheEndpointClock(t *testing.T) {
	for _, tc := range []struct {
		fault toxics.Fault
		lives time.Duration // how long, on the client's clock, a key set 10s before lives
	}{
		{toxics.ClockJump{By: 4 * time.Second}, 6 * time.Second},
		{toxics.ClockJump{By: -4 * time.Second}, 14 * time.Second},
		{toxics.ClockSkew{Offset: 4 * time.Second}, 6 * time.Second},
	} {
		t.Run(tc.fault.String(), func(t *testing.T) {
			inBubble(t, 1, func(t *testing.T, n *Network) {
				ctx := t.Context()
				kv, err := n.FakeKV("kv")
				require.NoError(t, err)
				rdb := redisClient(t, n, redis.Options{})
				start := time.Now()
				require.NoError(t, rdb.Set(ctx, "k", "v", 10*time.Second).Err())
				_, err = kv.Apply(ctx, tc.fault)
				require.NoError(t, err)
				for rdb.Exists(ctx, "k").Val() == 1 {
					time.Sleep(100 * time.Millisecond)
				}
				require.Equal(t, tc.lives, time.Since(start))
			})
		})
	}
}

// lease runs two clients that take turns holding a lock in kv for 60s of
// virtual time and returns what they did, sorted, and whether both ever
// held the lock at once. A client with absolute computes the lock's
// expiry on its own clock and sends it as a time (SET NX EXAT); the
// other sends a TTL (SET NX EX). Both then hold the lock until their
// own clock says the TTL, less a second, has passed since they asked.
func lease(t *testing.T, n *Network, skew time.Duration, absolute bool) (log []string, overlaps int) {
	t.Helper()
	ctx := t.Context()
	kv, err := n.FakeKV("kv")
	require.NoError(t, err)
	if skew != 0 {
		_, err := kv.Apply(ctx, toxics.ClockSkew{Offset: skew})
		require.NoError(t, err)
	}
	const ttl, margin, tick = 10 * time.Second, time.Second, 500 * time.Millisecond
	start := time.Now()
	var mu sync.Mutex
	var holder string
	record := func(format string, args ...any) {
		mu.Lock()
		log = append(log, fmt.Sprintf("%8v ", time.Since(start))+fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for i, me := range []string{"A", "B"} {
		rdb := redisClient(t, n, redis.Options{})
		rng := rand.New(rand.NewPCG(uint64(n.Seed()), uint64(i)))
		wg.Go(func() {
			// Goroutines woken at one instant run in no fixed order, so
			// the clients never act at one instant: A acts on whole
			// milliseconds, B half a millisecond later.
			time.Sleep(time.Duration(i) * 500 * time.Microsecond)
			for time.Since(start) < time.Minute {
				asked := time.Now()
				var ok bool
				if absolute {
					ok = rdb.SetArgs(ctx, "lock", me, redis.SetArgs{Mode: "NX", ExpireAt: asked.Add(ttl)}).Val() == "OK"
				} else {
					ok = rdb.SetNX(ctx, "lock", me, ttl).Val()
				}
				if !ok {
					time.Sleep(time.Duration(50+rng.IntN(200)) * time.Millisecond)
					continue
				}
				record("%s acquires", me)
				for time.Since(asked) < ttl-margin-tick {
					mu.Lock()
					if holder != "" && holder != me {
						overlaps++
						log = append(log, fmt.Sprintf("%8v %s and %s both hold the lock", time.Since(start), holder, me))
					}
					holder = me
					mu.Unlock()
					time.Sleep(tick)
					mu.Lock()
					if holder == me {
						holder = ""
					}
					mu.Unlock()
				}
				if rdb.Get(ctx, "lock").Val() == me {
					rdb.Del(ctx, "lock")
				}
				record("%s releases", me)
				time.Sleep(time.Duration(50+rng.IntN(200)) * time.Millisecond)
			}
		})
	}
	wg.Wait()
	slices.Sort(log)
	return log, overlaps
}

// TestLeaseUnderClockSkew: a client that computes its lock's expiry on
// its own clock and sends it as a time is caught when the server's clock
// runs 4s ahead (the server expires the lock 4s early and the other
// client takes it while the first still works); without the skew it
// holds, and so does a client that sends a TTL, skew or not.
func TestLeaseUnderClockSkew(t *testing.T) {
	for _, tc := range []struct {
		name     string
		skew     time.Duration
		absolute bool
		broken   bool
	}{
		{"absolute expiry, no skew", 0, true, false},
		{"absolute expiry, server 4s ahead", 4 * time.Second, true, true},
		{"absolute expiry, server 4s behind", -4 * time.Second, true, false},
		{"TTL, server 4s ahead", 4 * time.Second, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inBubble(t, 7, func(t *testing.T, n *Network) {
				log, overlaps := lease(t, n, tc.skew, tc.absolute)
				require.GreaterOrEqual(t, strings.Count(strings.Join(log, "\n"), "acquires"), 4, "the clients took turns: %s", log)
				if tc.broken {
					require.Positive(t, overlaps, "the skew was not caught:\n%s", strings.Join(log, "\n"))
				} else {
					require.Zero(t, overlaps, "%s", strings.Join(log, "\n"))
				}
			})
		})
	}
}

func TestLeaseUnderClockSkewIsDeterministic(t *testing.T) {
	run := func(seed int64) (log []string) {
		inBubble(t, seed, func(t *testing.T, n *Network) { log, _ = lease(t, n, 4*time.Second, true) })
		return log
	}
	a, b, c := run(3), run(3), run(4)
	require.Equal(t, a, b, "the same seed gives the same lease history")
	require.NotEqual(t, a, c, "another seed gives another history (the clients' backoffs are drawn from it)")
}

// A FakeHTTP handler reads its endpoint's clock, so a server that checks
// a token's expiry against it is skewed with it.
func TestFakeHTTPHandlerReadsTheEndpointClock(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, n *Network) {
		ctx := t.Context()
		var api *FakeHTTP
		api, err := n.FakeHTTP("api", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			notAfter, err := time.Parse(time.RFC3339, r.URL.Query().Get("token_not_after"))
			if err != nil || !api.Now().Before(notAfter) {
				http.Error(w, "token expired", http.StatusUnauthorized)
			}
		}))
		require.NoError(t, err)
		client := &http.Client{Transport: &http.Transport{DialContext: n.Dial}}
		defer client.CloseIdleConnections()
		status := func() int {
			url := "http://api/?token_not_after=" + time.Now().Add(5*time.Second).Format(time.RFC3339)
			resp, err := client.Get(url)
			require.NoError(t, err)
			resp.Body.Close()
			return resp.StatusCode
		}
		require.Equal(t, http.StatusOK, status())
		revert, err := api.Apply(ctx, toxics.ClockSkew{Offset: 10 * time.Second})
		require.NoError(t, err)
		require.Equal(t, http.StatusUnauthorized, status(), "a token the client thinks valid for 5s is expired on a server 10s ahead")
		require.NoError(t, revert(ctx))
		require.Equal(t, http.StatusOK, status())
	})
}
