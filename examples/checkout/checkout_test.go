package checkout

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// serve starts a Service and an HTTP server in front of it; both are
// closed by t.Cleanup.
func serve(t testing.TB, cfg Config) (*Service, *httptest.Server) {
	t.Helper()
	svc, err := New(cfg)
	require.NoError(t, err)
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = svc.Server()
	ts.Start()
	t.Cleanup(ts.Close)
	t.Cleanup(func() { _ = svc.Close() }) // first: it aborts what is in flight
	return svc, ts
}

// migrated is serve plus the orders table, with a generous bound on how
// long Postgres may take to answer.
func migrated(t testing.TB, cfg Config) (*Service, *httptest.Server) {
	t.Helper()
	svc, ts := serve(t, cfg)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	require.NoError(t, svc.Migrate(ctx))
	return svc, ts
}

type reply struct {
	status int
	header http.Header
	body   string
}

// call sends one request with a traceparent header and returns the reply.
func call(t testing.TB, ts *httptest.Server, method, path, body string) reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, ts.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set(TraceParent, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	resp, err := ts.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return reply{resp.StatusCode, resp.Header, string(b)}
}

// item returns an item name no other test uses, stocked with n.
func item(t testing.TB, svc *Service, n int64) string {
	t.Helper()
	name := "item-" + newID()[:12]
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	require.NoError(t, svc.Restock(ctx, name, n))
	return name
}

// logBuffer collects JSON log lines; safe for concurrent handlers.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestService runs every test that needs a real Postgres and Redis on one
// pair of them, started once.
func TestService(t *testing.T) {
	pg, rd := deps(t)
	t.Run("endpoints", func(t *testing.T) { testEndpoints(t, pg, rd) })
	t.Run("concurrent orders never oversell", func(t *testing.T) { testNoOversell(t, pg, rd) })
	t.Run("resilient degrades without cache", func(t *testing.T) { testDegradesWithoutCache(t, pg, rd) })
	t.Run("resilient fails fast without database", func(t *testing.T) { testFailsFastWithoutDatabase(t, pg, rd) })
}

func testEndpoints(t *testing.T, pg *pgxpool.Config, rd *redis.Options) {
	for _, v := range []Variant{Naive, Resilient} {
		t.Run(v.String(), func(t *testing.T) {
			logs := &logBuffer{}
			svc, ts := migrated(t, Config{Variant: v, Postgres: pg, Redis: rd, Seed: 1,
				Logger: slog.New(slog.NewJSONHandler(logs, nil))})
			apple := item(t, svc, 10)

			r := call(t, ts, "POST", "/orders", `{"item":"`+apple+`","qty":3}`)
			require.Equal(t, http.StatusCreated, r.status, r.body)
			require.Empty(t, r.header.Get(DegradedHeader))
			var created Created
			require.NoError(t, json.Unmarshal([]byte(r.body), &created))
			require.Regexp(t, `^[0-9a-f]{32}$`, created.ID)

			r = call(t, ts, "GET", "/orders/"+created.ID, "")
			require.Equal(t, http.StatusOK, r.status, r.body)
			require.JSONEq(t, fmt.Sprintf(`{"id":%q,"item":%q,"qty":3}`, created.ID, apple), r.body)

			r = call(t, ts, "GET", "/stock/"+apple, "")
			require.Equal(t, http.StatusOK, r.status, r.body)
			require.JSONEq(t, fmt.Sprintf(`{"item":%q,"stock":7}`, apple), r.body)

			require.Contains(t, logs.String(), `"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"`)
			require.Contains(t, logs.String(), `"variant":"`+v.String()+`"`)

			for _, c := range []struct {
				name, method, path, body string
				status                   int
				errHas                   string
			}{
				{"out of stock", "POST", "/orders", `{"item":"` + apple + `","qty":8}`, 409, "fewer than 8"},
				{"unknown item", "POST", "/orders", `{"item":"no-such-item-x","qty":1}`, 404, "unknown"},
				{"qty zero", "POST", "/orders", `{"item":"` + apple + `","qty":0}`, 400, "qty 0"},
				{"qty too big", "POST", "/orders", `{"item":"` + apple + `","qty":1001}`, 400, "qty 1001"},
				{"bad item", "POST", "/orders", `{"item":"a b","qty":1}`, 400, `item "a b"`},
				{"unknown field", "POST", "/orders", `{"item":"x","qty":1,"price":3}`, 400, "price"},
				{"not JSON", "POST", "/orders", `item=x`, 400, "body"},
				{"body too large", "POST", "/orders", `{"item":"` + strings.Repeat("x", 2000) + `","qty":1}`, 400, "body"},
				{"order not found", "GET", "/orders/" + strings.Repeat("0", 32), "", 404, "not found"},
				{"bad order id", "GET", "/orders/xyz", "", 400, "32 lowercase hex"},
				{"stock unknown item", "GET", "/stock/no-such-item-x", "", 404, "unknown"},
				{"bad stock item", "GET", "/stock/a%20b", "", 400, "want 1 to 64"},
			} {
				t.Run(c.name, func(t *testing.T) {
					r := call(t, ts, c.method, c.path, c.body)
					require.Equal(t, c.status, r.status, r.body)
					var e struct{ Error string }
					require.NoError(t, json.Unmarshal([]byte(r.body), &e), r.body)
					require.Contains(t, e.Error, c.errHas)
				})
			}
			r = call(t, ts, "DELETE", "/orders/"+created.ID, "")
			require.Equal(t, http.StatusMethodNotAllowed, r.status)

			// The failed order did not take stock.
			r = call(t, ts, "GET", "/stock/"+apple, "")
			require.JSONEq(t, fmt.Sprintf(`{"item":%q,"stock":7}`, apple), r.body)
		})
	}
}

// testNoOversell: the reservation is atomic, so 20
// concurrent orders of 1 against a stock of 5 give exactly 5 orders. (The
// naive variant, because the resilient one would take some of the 20 as
// degraded orders when its Redis bulkhead of 8 is full: a degraded order
// skips the stock check by design.)
func testNoOversell(t *testing.T, pg *pgxpool.Config, rd *redis.Options) {
	svc, ts := migrated(t, Config{Variant: Naive, Postgres: pg, Redis: rd})
	it := item(t, svc, 5)
	var wg sync.WaitGroup
	codes := make([]int, 20)
	for i := range codes {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(t.Context(), "POST", ts.URL+"/orders", strings.NewReader(`{"item":"`+it+`","qty":1}`))
			resp, err := ts.Client().Do(req)
			if err != nil {
				return
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
		})
	}
	wg.Wait()
	count := map[int]int{}
	for _, c := range codes {
		count[c]++
	}
	require.Equal(t, map[int]int{201: 5, 409: 15}, count)
}

// deadAddr returns an address on 127.0.0.1 where nothing listens: dials
// are refused at once.
func deadAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// blackHole returns an address that accepts connections and never
// answers: the fault a missing timeout turns into a hang.
func blackHole(t testing.TB) string {
	t.Helper()
	addr, _ := blackHoleNotify(t)
	return addr
}

// blackHoleNotify is blackHole, and a channel that receives once per
// connection accepted.
func blackHoleNotify(t testing.TB) (string, <-chan struct{}) {
	t.Helper()
	accepted := make(chan struct{}, 100)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case accepted <- struct{}{}:
			default:
			}
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String(), accepted
}

// TestCloseAbortsHangingCalls: the naive variant hangs on a dependency
// that never answers, and Close still returns and ends those requests.
func TestCloseAbortsHangingCalls(t *testing.T) {
	pgAddr, pgAccepted := blackHoleNotify(t)
	rdAddr, rdAccepted := blackHoleNotify(t)
	pg, err := pgxpool.ParseConfig("postgres://u@" + pgAddr + "/db?sslmode=disable")
	require.NoError(t, err)
	svc, err := New(Config{Variant: Naive, Postgres: pg, Redis: &redis.Options{Addr: rdAddr}})
	require.NoError(t, err)
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = svc.Server()
	ts.Start()
	defer ts.Close()

	done := make(chan int, 2)
	for _, path := range []string{"/stock/apple", "/orders/" + strings.Repeat("a", 32)} {
		go func() {
			resp, err := ts.Client().Get(ts.URL + path)
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
	}
	<-pgAccepted
	<-rdAccepted // both requests now wait on a dependency that never answers
	select {
	case code := <-done:
		t.Fatalf("a request returned %d before Close", code)
	default:
	}
	closed := make(chan error, 1)
	go func() { closed <- svc.Close() }()
	// Bound: Close and the aborted requests take milliseconds; 10 s is a
	// generous margin for a loaded machine.
	timeout := time.After(10 * time.Second)
	for range 2 {
		select {
		case code := <-done:
			require.Equal(t, http.StatusServiceUnavailable, code)
		case <-timeout:
			t.Fatal("a request still hangs after Close")
		}
	}
	select {
	case <-closed:
	case <-timeout:
		t.Fatal("Close did not return")
	}
}

// testDegradesWithoutCache: with Redis unreachable, the
// resilient variant still answers stock lookups (degraded) and still
// takes orders, which land in Postgres.
func testDegradesWithoutCache(t *testing.T, pg *pgxpool.Config, rd *redis.Options) {
	for name, addr := range map[string]string{"refused": deadAddr(t), "black hole": blackHole(t)} {
		t.Run(name, func(t *testing.T) {
			down := *rd
			down.Addr = addr
			_, ts := migrated(t, Config{Variant: Resilient, Postgres: pg, Redis: &down})

			start := time.Now()
			r := call(t, ts, "GET", "/stock/apple", "")
			require.Equal(t, http.StatusOK, r.status, r.body)
			require.Equal(t, "1", r.header.Get(DegradedHeader))
			require.JSONEq(t, `{"item":"apple","stock":null,"degraded":true}`, r.body)

			r = call(t, ts, "POST", "/orders", `{"item":"apple","qty":1}`)
			require.Equal(t, http.StatusCreated, r.status, r.body)
			require.Equal(t, "1", r.header.Get(DegradedHeader))
			var created Created
			require.NoError(t, json.Unmarshal([]byte(r.body), &created))
			require.True(t, created.Degraded)

			r = call(t, ts, "GET", "/orders/"+created.ID, "")
			require.Equal(t, http.StatusOK, r.status, r.body)
			// Bound: each call waits at most 3 Redis attempts of 50 ms
			// plus backoff; 2 s is a generous margin for 3 calls on a
			// loaded machine.
			require.Less(t, time.Since(start), 2*time.Second)
		})
	}
}

// testFailsFastWithoutDatabase: with Postgres a black hole,
// orders fail within the request budget, the breaker opens, and stock
// lookups are untouched.
func testFailsFastWithoutDatabase(t *testing.T, pg *pgxpool.Config, rd *redis.Options) {
	good, _ := serve(t, Config{Variant: Resilient, Postgres: pg, Redis: rd})
	it := item(t, good, 100)

	down := pg.Copy()
	host, port, err := net.SplitHostPort(blackHole(t))
	require.NoError(t, err)
	down.ConnConfig.Host = host
	_, err = fmt.Sscan(port, &down.ConnConfig.Port)
	require.NoError(t, err)
	down.ConnConfig.Fallbacks = nil
	_, ts := serve(t, Config{Variant: Resilient, Postgres: down, Redis: rd})

	var last reply
	for range 4 {
		start := time.Now()
		last = call(t, ts, "POST", "/orders", `{"item":"`+it+`","qty":1}`)
		require.Equal(t, http.StatusServiceUnavailable, last.status, last.body)
		require.Equal(t, "1", last.header.Get("Retry-After"))
		// Bound: RequestTimeout (800 ms) plus a generous 1.2 s margin.
		require.Less(t, time.Since(start), 2*time.Second)
	}
	// Three timed-out attempts per request: the breaker (5 failures of
	// 10) is open by the third request.
	require.Contains(t, last.body, "circuit breaker open")

	start := time.Now()
	r := call(t, ts, "GET", "/stock/"+it, "")
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.Empty(t, r.header.Get(DegradedHeader))
	// Bound: a local Redis GET; 500 ms is a generous margin.
	require.Less(t, time.Since(start), 500*time.Millisecond)
}

func TestNewRejectsBadConfig(t *testing.T) {
	pg, err := pgxpool.ParseConfig("postgres://u@127.0.0.1:1/db")
	require.NoError(t, err)
	rd := &redis.Options{Addr: "127.0.0.1:1"}
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no postgres", Config{Redis: rd}, "Config.Postgres is nil"},
		{"no redis", Config{Postgres: pg}, "Config.Redis is nil"},
		{"empty postgres config", Config{Postgres: &pgxpool.Config{}, Redis: rd}, "ConnConfig is nil"},
		{"postgres config not parsed", Config{Postgres: &pgxpool.Config{ConnConfig: pg.ConnConfig}, Redis: rd}, "use pgxpool.ParseConfig"},
		{"bad variant", Config{Postgres: pg, Redis: rd, Variant: 7}, "Config.Variant is 7"},
		{"negative timeout", Config{Postgres: pg, Redis: rd, Limits: Limits{RedisTimeout: -1}}, "Limits.RedisTimeout"},
		{"breaker window", Config{Postgres: pg, Redis: rd, Limits: Limits{BreakerFailures: 20}}, "BreakerFailures (20) exceeds"},
		{"retries", Config{Postgres: pg, Redis: rd, Limits: Limits{Retries: 11}}, "Limits.Retries is 11"},
		{"backoff", Config{Postgres: pg, Redis: rd, Limits: Limits{RetryBackoff: time.Second}}, "RetryBackoffMax"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.cfg)
			require.ErrorContains(t, err, c.want)
		})
	}
}
