package checkout_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/shakedown/shakedown/examples/checkout"
)

// The resilient variant, pointed at a Postgres and a Redis (in a test,
// the addresses of harness Links), served by httptest.
func ExampleNew() {
	pg, err := pgxpool.ParseConfig("postgres://shop@127.0.0.1:5432/shop?sslmode=disable")
	if err != nil {
		panic(err)
	}
	svc, err := checkout.New(checkout.Config{
		Variant:  checkout.Resilient,
		Postgres: pg,
		Redis:    &redis.Options{Addr: "127.0.0.1:6379"},
		Logger:   slog.New(slog.NewJSONHandler(os.Stderr, nil)),
		Seed:     1,
	})
	if err != nil {
		panic(err)
	}
	defer svc.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // set-up waits this long for the dependencies
	defer cancel()
	if err := svc.Migrate(ctx); err != nil {
		panic(err)
	}
	if err := svc.Restock(ctx, "apple", 100); err != nil {
		panic(err)
	}
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = svc.Server() // the variant's server timeouts
	ts.Start()
	defer ts.Close()
	// POST ts.URL+"/orders" {"item":"apple","qty":2} -> 201 {"id":"..."}
}

// Tighter limits for a service with a smaller latency budget. Zero fields
// keep their defaults.
func ExampleLimits() {
	_ = checkout.Config{
		Variant: checkout.Resilient,
		Limits: checkout.Limits{
			RequestTimeout: 300 * time.Millisecond,
			RedisTimeout:   20 * time.Millisecond,
			Retries:        1,
		},
	}
}

func ExampleParseTraceParent() {
	id, ok := checkout.ParseTraceParent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	fmt.Println(id, ok)
	_, ok = checkout.ParseTraceParent("not a traceparent")
	fmt.Println(ok)
	// Output:
	// 4bf92f3577b34da6a3ce929d0e0e4736 true
	// false
}
