package sim

import (
	"context"
	"flag"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/shakedown/shakedown/toxics"
)

// The figures of the simulated network are taken inside synctest bubbles,
// and synctest.Test needs a *testing.T, which a benchmark does not have.
// So TestNetFigures runs them with testing.Benchmark, only when asked:
//
//	go test ./sim -run TestNetFigures -simnet.figures -v
//
// The Benchmark functions below measure the same exchanges on the wall
// clock, outside any bubble.
var figures = flag.Bool("simnet.figures", false, "run TestNetFigures (throughput of the simulated network in synctest bubbles)")

// An exchange sets up one kind of op on a fresh network and returns it.
type exchange func(tb testing.TB, n *Network) (op func(i int) error, done func())

func echoExchange(tb testing.TB, n *Network) (func(int) error, func()) {
	if _, err := n.FakeTCP("echo", func(c net.Conn) { io.Copy(c, c) }); err != nil {
		tb.Fatal(err)
	}
	var c net.Conn
	buf := make([]byte, 1)
	// Each op is a 1-byte round trip with a 1 s deadline, on a connection
	// dialed again after an error.
	op := func(int) error {
		if c == nil {
			var err error
			if c, err = n.Dial(context.Background(), "tcp", "echo"); err != nil {
				return err
			}
		}
		err := c.SetReadDeadline(time.Now().Add(time.Second))
		if err == nil {
			_, err = c.Write(buf)
		}
		if err == nil {
			_, err = io.ReadFull(c, buf)
		}
		if err != nil {
			c.Close()
			c = nil
		}
		return err
	}
	return op, func() {
		if c != nil {
			c.Close()
		}
	}
}

func kvExchange(tb testing.TB, n *Network) (func(int) error, func()) {
	if _, err := n.FakeKV("kv"); err != nil {
		tb.Fatal(err)
	}
	rdb := redis.NewClient(kvOptions(n, time.Second))
	ctx := context.Background()
	return func(i int) error {
		if i%2 == 0 {
			return rdb.Set(ctx, "k"+strconv.Itoa(i%16), i, 0).Err()
		}
		err := rdb.Get(ctx, "k"+strconv.Itoa((i-1)%16)).Err()
		if err == redis.Nil {
			err = nil
		}
		return err
	}, func() { rdb.Close() }
}

// kvOptions are go-redis options for the figures: RESP2 and no CLIENT
// SETINFO, so a new connection costs no handshake round trips; 4 KiB
// buffers instead of 32 KiB, since connections come and go with the
// faults; and no retries, so an op is one command.
func kvOptions(n *Network, timeout time.Duration) *redis.Options {
	return &redis.Options{
		Addr: "kv:6379", Dialer: n.Dial, Protocol: 2, DisableIdentity: true,
		ReadBufferSize: 4096, WriteBufferSize: 4096,
		MaxRetries: -1, ReadTimeout: timeout, WriteTimeout: timeout,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		// More connections than ops in flight: a pool that runs out waits
		// on a timer another bubble made, a fatal error (see the package
		// doc). 100 ops/s meeting a 200ms blackhole keep about 20 waiting.
		PoolSize: 64,
	}
}

func httpExchange(tb testing.TB, n *Network) (func(int) error, func()) {
	api, err := n.FakeHTTP("api", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	if err != nil {
		tb.Fatal(err)
	}
	tr := &http.Transport{DialContext: n.Dial}
	c := &http.Client{Transport: tr, Timeout: time.Second}
	url := api.URL() + "/x"
	return func(int) error {
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return err
	}, tr.CloseIdleConnections
}

// withLatency wraps an exchange so that every op crosses a 1 ms ± 0.5 ms
// latency each way: the cost of timers in virtual time.
func withLatency(x exchange) exchange {
	return func(tb testing.TB, n *Network) (func(int) error, func()) {
		op, done := x(tb, n)
		for _, ep := range n.Endpoints() {
			if _, err := ep.Apply(context.Background(), toxics.Latency{Delay: time.Millisecond, Jitter: 500 * time.Microsecond}); err != nil {
				tb.Fatal(err)
			}
		}
		return op, done
	}
}

// opsOnWallClock runs b.N ops outside any bubble.
func opsOnWallClock(b *testing.B, x exchange) {
	n := NewNetwork(1)
	defer n.Close()
	op, done := x(b, n)
	defer done()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := op(i); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

func BenchmarkNetEcho(b *testing.B) { opsOnWallClock(b, echoExchange) }
func BenchmarkNetKV(b *testing.B)   { opsOnWallClock(b, kvExchange) }
func BenchmarkNetHTTP(b *testing.B) { opsOnWallClock(b, httpExchange) }

// opsInBubble runs b.N ops of x in one bubble. The setup of the bubble
// is timed too: b's timer cannot be touched inside a bubble, where
// time.Now is virtual.
func opsInBubble(t *testing.T, x exchange) func(*testing.B) {
	return func(b *testing.B) {
		b.ReportAllocs()
		synctest.Test(t, func(t *testing.T) {
			n := NewNetwork(1)
			defer n.Close()
			op, done := x(t, n)
			defer done()
			for i := range b.N {
				if err := op(i); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// bubbles runs b.N bubbles, each a fresh network where a 100-op
// exchange meets a latency, a blackhole and a reset.
func bubbles(t *testing.T, x exchange) func(*testing.B) {
	return func(b *testing.B) {
		b.ReportAllocs()
		for seed := range b.N {
			synctest.Test(t, func(t *testing.T) { hundredOps(t, int64(seed), x) })
		}
	}
}

func hundredOps(t *testing.T, seed int64, x exchange) {
	n := NewNetwork(seed)
	defer n.Close()
	op, done := x(t, n)
	defer done()
	ep := n.Endpoints()[0]
	var revert func(context.Context) error
	var err error
	for i := range 100 {
		switch i {
		case 20:
			revert, err = ep.Apply(context.Background(), toxics.Latency{Delay: 5 * time.Millisecond, Jitter: time.Millisecond})
		case 50:
			revert, err = ep.Apply(context.Background(), toxics.Blackhole{Direction: toxics.Downstream})
		case 55:
			revert, err = ep.Apply(context.Background(), toxics.Reset{})
		case 40, 53, 57:
			err = revert(context.Background())
		}
		if err != nil {
			t.Fatal(err)
		}
		op(i) // errors are expected during the faults
	}
}

// bubblesParallel is bubbles on every P at once.
func bubblesParallel(t *testing.T, x exchange) func(*testing.B) {
	return func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for seed := int64(0); pb.Next(); seed++ {
				synctest.Test(t, func(t *testing.T) { hundredOps(t, seed, x) })
			}
		})
	}
}

// schedules runs b.N bubbles, each a Run of a 3-step schedule against a
// FakeKV with an open-loop go-redis workload of 100 ops.
func schedules(t *testing.T) func(*testing.B) {
	return func(b *testing.B) {
		b.ReportAllocs()
		for seed := range b.N {
			synctest.Test(t, func(t *testing.T) {
				h := runSchedule(t, int64(seed))
				if len(h.Ops) != 100 {
					t.Fatalf("%d ops, want 100", len(h.Ops))
				}
			})
		}
	}
}

func runSchedule(t *testing.T, seed int64) *History {
	n := NewNetwork(seed)
	defer n.Close()
	if _, err := n.FakeKV("kv"); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(kvOptions(n, 200*time.Millisecond))
	defer rdb.Close()
	h, err := Run(context.Background(), Plan{
		World: World{
			Targets: n.Targets(),
			Workload: Workload{
				Driver: OpenLoop{Rate: 100},
				Kinds: []OpKind{{
					Name:  "incr",
					Input: func(r *rand.Rand) string { return "k" + strconv.Itoa(r.IntN(8)) },
					Do: func(ctx context.Context, key string) (string, error) {
						v, err := rdb.Incr(ctx, key).Result()
						return strconv.FormatInt(v, 10), err
					},
				}},
			},
		},
		Settings: Settings{
			Cooldown: 300 * time.Millisecond,
		},
		Seed: seed,
		Schedule: Schedule{Steps: []Step{
			{At: 100 * time.Millisecond, For: 200 * time.Millisecond, Target: "kv", Fault: toxics.Latency{Delay: 20 * time.Millisecond, Jitter: 10 * time.Millisecond}},
			{At: 350 * time.Millisecond, For: 100 * time.Millisecond, Target: "kv", Fault: toxics.Blackhole{}},
			{At: 600 * time.Millisecond, For: 100 * time.Millisecond, Target: "kv", Fault: toxics.Crash{}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestGoRedisAtOneProc: go-redis runs in bubble after bubble at
// GOMAXPROCS=1 with a pool larger than the ops in flight. With its default
// pool (10 per GOMAXPROCS), the ops waiting on the blackhole take every
// connection, and the next waits on a timer another bubble made: the
// runtime's fatal error "select on synctest channel from outside bubble".
func TestGoRedisAtOneProc(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for seed := range 4 {
		synctest.Test(t, func(t *testing.T) {
			if h := runSchedule(t, int64(seed)); len(h.Ops) != 100 {
				t.Fatalf("%d ops, want 100", len(h.Ops))
			}
		})
	}
}

func TestNetFigures(t *testing.T) {
	if !*figures {
		t.Skip("run with -simnet.figures to measure (go test ./sim -run TestNetFigures -simnet.figures -v)")
	}
	report := func(name string, f func(t *testing.T) func(*testing.B)) {
		t.Run(name, func(t *testing.T) {
			// The CPU time is the process's in the last round, the one r
			// reports: on a loaded machine it tells the cost apart from
			// the wait for a core.
			var cpu time.Duration
			bench := f(t)
			r := testing.Benchmark(func(b *testing.B) {
				cpu0 := cpuTime()
				bench(b)
				cpu = cpuTime() - cpu0
			})
			perOp := float64(r.T.Nanoseconds()) / float64(r.N)
			t.Logf("N=%-7d %9.0f ns/op %9.0f /s %7d B/op %5d allocs/op %9.0f cpu-ns/op", r.N, perOp, 1e9/perOp, r.AllocedBytesPerOp(), r.AllocsPerOp(), float64(cpu)/float64(r.N))
		})
	}
	oneBubble := func(x exchange) func(t *testing.T) func(*testing.B) {
		return func(t *testing.T) func(*testing.B) { return opsInBubble(t, x) }
	}
	perBubble := func(x exchange) func(t *testing.T) func(*testing.B) {
		return func(t *testing.T) func(*testing.B) { return bubbles(t, x) }
	}
	// Simulated ops per wall second: b.N ops in one bubble (echo: a 1-byte
	// round trip; kv: go-redis SET or GET on a FakeKV; http: net/http GET
	// on a FakeHTTP; _latency: with a 1ms±0.5ms latency each way).
	report("echo", oneBubble(echoExchange))
	report("echo_latency", oneBubble(withLatency(echoExchange)))
	report("kv", oneBubble(kvExchange))
	report("kv_latency", oneBubble(withLatency(kvExchange)))
	report("http", oneBubble(httpExchange))
	report("http_latency", oneBubble(withLatency(httpExchange)))
	// Bubbles per wall second: each a fresh network, fake and client,
	// 100 ops meeting a latency, a blackhole and a reset; run_schedule is
	// a sim.Run of a 3-step schedule with an open-loop go-redis workload
	// of 100 ops.
	report("bubble_echo", perBubble(echoExchange))
	report("bubble_kv", perBubble(kvExchange))
	report("bubble_http", perBubble(httpExchange))
	report("bubble_kv_parallel", func(t *testing.T) func(*testing.B) { return bubblesParallel(t, kvExchange) })
	report("run_schedule", schedules)
	// The same on every core at once: one bubble per P, as an
	// exploration that runs independent bubbles side by side does.
	report("bubble_http_parallel", func(t *testing.T) func(*testing.B) { return bubblesParallel(t, httpExchange) })
	report("run_schedule_parallel", schedulesParallel)
}

// schedulesParallel is schedules on every P at once.
func schedulesParallel(t *testing.T) func(*testing.B) {
	return func(b *testing.B) {
		b.ReportAllocs()
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				seed := next.Add(1)
				synctest.Test(t, func(t *testing.T) {
					h := runSchedule(t, seed)
					if len(h.Ops) != 100 {
						t.Errorf("%d ops, want 100", len(h.Ops))
					}
				})
			}
		})
	}
}
