package harness_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"

	"github.com/shakedown/shakedown/harness"
	"github.com/shakedown/shakedown/toxics"
)

// t stands for the *testing.T of the test an example would live in. The
// examples are compiled, not run: they need Docker or local servers, and
// a test's t.Cleanup to tear down.
var t testing.TB = &testing.T{}

// A Postgres behind a Link, crashed and brought back.
func ExampleEnv_Postgres() {
	env := harness.New(t)
	db := env.Postgres("db")
	ctx := context.Background()

	pool, err := pgxpool.NewWithConfig(ctx, db.PoolConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	revert, err := db.Apply(ctx, toxics.Crash{})
	if err != nil {
		t.Fatal(err)
	}
	// Queries fail here...
	if err := revert(ctx); err != nil { // ...and work again here, at the same db.Addr().
		t.Fatal(err)
	}
}

// A Redis behind a Link with 100 ms of latency on every reply.
func ExampleEnv_Redis() {
	env := harness.New(t)
	cache := env.Redis("cache")
	ctx := context.Background()

	rdb := goredis.NewClient(cache.Options())
	defer rdb.Close()
	if _, err := cache.Apply(ctx, toxics.Latency{Delay: 100 * time.Millisecond, Direction: toxics.Downstream}); err != nil {
		t.Fatal(err)
	}
	_ = rdb.Ping(ctx).Err() // takes at least 100 ms
}

// Two containers on the Env's network, cut apart and healed.
func ExampleEnv_Partition() {
	env := harness.New(t)
	spec := harness.ContainerSpec{
		Image: "shakedown.local/testserver:latest",
		Port:  "8080",
		Ready: func(ctx context.Context, addr string) error {
			resp, err := http.Get("http://" + addr + "/healthz")
			if err != nil {
				return err
			}
			return resp.Body.Close()
		},
	}
	env.Container("a", spec)
	env.Container("b", spec) // a reaches it as b:7000
	ctx := context.Background()

	heal, err := env.Partition(ctx, []string{"a"}, []string{"b"})
	if err != nil {
		t.Fatal(err)
	}
	// a cannot reach b here.
	if err := heal(ctx); err != nil {
		t.Fatal(err)
	}
}

// An existing server fronted by a Link: link faults only.
func ExampleEnv_Address() {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	env := harness.New(t)
	api := env.Address("api", srv.Listener.Addr().String())

	fmt.Println(api.Supports(toxics.KindDown), api.Supports(toxics.KindCrash)) // true false
}

// An existing HTTP server, declared as such: its Link takes the HTTP
// faults too.
func ExampleEnv_Address_protocol() {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	env := harness.New(t)
	api := env.Address("api", srv.Listener.Addr().String(), harness.WithProtocol("http"))

	revert, err := api.Apply(context.Background(), toxics.HTTPStatus{Status: 503, Match: toxics.HTTPMatch{Rate: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer revert(context.Background())
	resp, err := http.Get("http://" + api.Addr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode) // 503
}

// Reset between iterations: clears faults, restarts what is down.
func ExampleEnv_Reset() {
	env := harness.New(t)
	cache := env.Redis("cache")
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := cache.Apply(ctx, toxics.Crash{}); err != nil {
			t.Fatal(err)
		}
		if err := env.Reset(ctx); err != nil { // cache is up again
			t.Fatal(err)
		}
	}
}
