package properties

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// dump is a runtime.Stack(all) of a run: the test, a sim worker idle and
// one stuck in the service, the Link, an httptest server and its
// connection, an http.Transport's keep-alive loops, a service's own loop
// and a goroutine of the standard library it started.
const dump = `goroutine 1 [chan receive]:
testing.(*T).Run(0xc0001, {0x1, 0x5}, 0x2)
	/usr/local/go/src/testing/testing.go:1750 +0x3ab
main.main()
	_testmain.go:47 +0x9b

goroutine 20 [select]:
github.com/shakedown/shakedown/sim.(*workRun).worker(0xc0002)
	/w/sim/workload.go:300 +0x1
created by github.com/shakedown/shakedown/sim.ClosedLoop.drive in goroutine 19
	/w/sim/workload.go:280 +0x1

goroutine 21 [select]:
net/http.(*persistConn).roundTrip(0xc0003, 0xc0004)
	/usr/local/go/src/net/http/transport.go:2800 +0x1
net/http.(*Client).Do(0xc0005, 0xc0006)
	/usr/local/go/src/net/http/client.go:590 +0x1
example.com/checkout.(*Service).Order(0xc0007, {0x1, 0x2})
	/w/checkout/checkout.go:40 +0x1
github.com/shakedown/shakedown/sim.(*workRun).worker(0xc0002)
	/w/sim/workload.go:300 +0x1
created by github.com/shakedown/shakedown/sim.ClosedLoop.drive in goroutine 19
	/w/sim/workload.go:280 +0x1

goroutine 30 [IO wait]:
io.Copy(...)
	/usr/local/go/src/io/io.go:388
created by github.com/Shopify/toxiproxy/v2.(*Proxy).server in goroutine 29
	/w/toxiproxy/proxy.go:150 +0x1

goroutine 8 [IO wait]:
net/http.(*Server).Serve(0xc0008, {0x1, 0x2})
	/usr/local/go/src/net/http/server.go:3434 +0x30c
net/http/httptest.(*Server).goServe.func1()
	/usr/local/go/src/net/http/httptest/server.go:341 +0x55
created by net/http/httptest.(*Server).goServe in goroutine 1
	/usr/local/go/src/net/http/httptest/server.go:339 +0x65

goroutine 10 [IO wait]:
net/http.(*conn).serve(0xc0009, {0x1, 0x2})
	/usr/local/go/src/net/http/server.go:2103 +0x7f3
created by net/http.(*Server).Serve in goroutine 8
	/usr/local/go/src/net/http/server.go:3464 +0x485

goroutine 11 [IO wait]:
net/http.(*persistConn).readLoop(0xc0010)
	/usr/local/go/src/net/http/transport.go:2330 +0x172
created by net/http.(*Transport).dialConn in goroutine 9
	/usr/local/go/src/net/http/transport.go:1994 +0x16ac

goroutine 40 [sleep]:
time.Sleep(0x1)
	/usr/local/go/src/runtime/time.go:300 +0x1
example.com/checkout.(*Service).refresh(0xc0007)
	/w/checkout/checkout.go:80 +0x1
created by example.com/checkout.New in goroutine 1
	/w/checkout/checkout.go:20 +0x1

goroutine 41 [chan receive]:
time.(*Timer).Stop(...)
	/usr/local/go/src/time/sleep.go:1
created by example.com/checkout.New.func1 in goroutine 40
	/w/checkout/checkout.go:22 +0x1

goroutine 42 [chan receive]:
sync.(*WaitGroup).Wait(0xc0011)
	/usr/local/go/src/sync/waitgroup.go:1 +0x1
created by os/signal.Notify.func1 in goroutine 41
	/usr/local/go/src/os/signal/signal.go:1 +0x1

goroutine 43 [select]:
example.com/lib.Map[...](...)
	/w/lib/lib.go:1 +0x1
...additional frames elided...
created by net/http.(*Transport).dialConn in goroutine 99
	/usr/local/go/src/net/http/transport.go:1995 +0x16fe
`

func TestServiceGoroutines(t *testing.T) {
	cases := []struct {
		name     string
		packages []string
		want     int
		why      string
	}{
		{"every package but the framework's", nil, 5,
			"the worker stuck in checkout (21), checkout's loop (40), what it started (41, 42), a library's goroutine (43)"},
		{"checkout alone", []string{"example.com/checkout"}, 3, "21, 40 and 41 have a frame or a creator in checkout"},
		{"a prefix of a path element is not a package", []string{"example.com/check"}, 0, ""},
		{"a library listed", []string{"example.com/lib", "net/http"}, 5, "43, and every goroutine with a net/http frame: 8, 10, 11, 21, 43"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := &goroutineCounter{packages: c.packages, class: map[string]frameClass{}}
			require.Equal(t, c.want, g.countIn([]byte(dump)), c.why)
			require.Equal(t, c.want, g.countIn([]byte(dump)), "the cache changes nothing")
		})
	}
}

// The sampler of a service that started 100 goroutines counts them, and
// counts none of the framework's.
func TestServiceGoroutinesLive(t *testing.T) {
	g := &goroutineCounter{packages: []string{"github.com/shakedown/shakedown/properties.parked"}, class: map[string]frameClass{}}
	stop, wg := park(100)
	require.Equal(t, 100, g.count())
	close(stop)
	wg.Wait()
	// A goroutine that has run its deferred wg.Done may still be on its
	// way out of parked when the stacks are read: wait for it to go.
	require.Eventually(t, func() bool { return g.count() == 0 }, 10*time.Second, time.Millisecond,
		"the 100 goroutines ended, and the counter still sees some of them")
}

// parked is a service's goroutine.
func parked(stop chan struct{}, started, wg *sync.WaitGroup) {
	defer wg.Done()
	started.Done()
	<-stop
}

// park starts n goroutines in parked and returns once they all run.
func park(n int) (chan struct{}, *sync.WaitGroup) {
	stop, wg, started := make(chan struct{}), &sync.WaitGroup{}, &sync.WaitGroup{}
	for range n {
		wg.Add(1)
		started.Add(1)
		go parked(stop, started, wg)
	}
	started.Wait()
	return stop, wg
}

// BenchmarkServiceGoroutines is the cost of one reading of the sampler
// with n goroutines of the service besides the test's own: runtime.Stack
// of every goroutine, then the parse.
func BenchmarkServiceGoroutines(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		for _, mode := range []string{"runtime.Stack alone", "framework excluded", "packages"} {
			b.Run(fmt.Sprintf("%d goroutines/%s", n, strings.ReplaceAll(mode, " ", "_")), func(b *testing.B) {
				stop, wg := park(n)
				defer func() { close(stop); wg.Wait() }()
				g := &goroutineCounter{class: map[string]frameClass{}}
				if mode == "packages" {
					g.packages = []string{"github.com/shakedown/shakedown/properties.parked"}
				}
				if mode == "runtime.Stack alone" {
					buf := make([]byte, 1<<20)
					for b.Loop() {
						if runtime.Stack(buf, true) == len(buf) {
							b.Fatal("buffer too small")
						}
					}
					return
				}
				for b.Loop() {
					if got := g.count(); mode == "packages" && got != n {
						b.Fatalf("counted %d of %d", got, n)
					}
				}
			})
		}
	}
}
