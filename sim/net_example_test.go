package sim_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// A server registers a name with Listen; clients Dial it. In a test, do
// both inside synctest.Test, so that faults with delays take no wall time.
func ExampleNetwork_Listen() {
	n := sim.NewNetwork(1)
	defer n.Close()
	ln, err := n.Listen("echo")
	if err != nil {
		panic(err)
	}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	c, err := n.Dial(context.Background(), "tcp", "echo:7")
	if err != nil {
		panic(err)
	}
	defer c.Close()
	fmt.Fprintln(c, "hello")
	line, _ := bufio.NewReader(c).ReadString('\n')
	fmt.Print(line)
	// Output: hello
}

// Dial fits http.Transport.DialContext as it is.
func ExampleNetwork_FakeHTTP() {
	n := sim.NewNetwork(1)
	defer n.Close()
	api, err := n.FakeHTTP("api", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "stock of %s: 3", r.URL.Query().Get("item"))
	}))
	if err != nil {
		panic(err)
	}
	tr := &http.Transport{DialContext: n.Dial}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	resp, err := client.Get(api.URL() + "/stock?item=tea")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(string(body))
	fmt.Println("requests:", api.Requests())
	// Output:
	// stock of tea: 3
	// requests: 1
}

// Dial fits go-redis's Options.Dialer as it is. Turn go-redis's
// maintenance notifications off: otherwise it resolves the host of Addr
// with the real DNS, outside the simulation (and, inside a synctest
// bubble, that crashes the test binary).
func ExampleNetwork_FakeKV() {
	n := sim.NewNetwork(1)
	defer n.Close()
	kv, err := n.FakeKV("cache")
	if err != nil {
		panic(err)
	}
	rdb := redis.NewClient(&redis.Options{
		Addr:                     "cache:6379",
		Dialer:                   n.Dial,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		MaxRetries:               -1, // show the first error, not the retries'

	})
	defer rdb.Close()
	ctx := context.Background()
	rdb.Set(ctx, "visits", 41, 0)
	fmt.Println(rdb.Incr(ctx, "visits").Val())

	// A crash loses the data, as a Redis without persistence would.
	revert, err := kv.Apply(ctx, toxics.Crash{})
	if err != nil {
		panic(err)
	}
	fmt.Println(errors.Is(rdb.Get(ctx, "visits").Err(), syscall.ECONNRESET))
	revert(ctx)
	fmt.Println(rdb.Get(ctx, "visits").Err())
	// Output:
	// 42
	// true
	// redis: nil
}

// Every endpoint is a Target: link faults act on the path to it, node
// faults on its server.
func ExampleEndpoint_Apply() {
	n := sim.NewNetwork(1)
	defer n.Close()
	db, err := n.FakeTCP("db", func(c net.Conn) { io.Copy(c, c) })
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	revert, err := db.Apply(ctx, toxics.Down{})
	if err != nil {
		panic(err)
	}
	_, err = n.Dial(ctx, "tcp", "db:5432")
	fmt.Println(err)
	fmt.Println(errors.Is(err, syscall.ECONNREFUSED))
	revert(ctx)
	c, err := n.Dial(ctx, "tcp", "db:5432")
	fmt.Println(err)
	c.Close()

	_, err = db.Apply(ctx, toxics.Latency{Delay: -1})
	fmt.Println(err)
	// Output:
	// dial tcp db:5432: connect: connection refused
	// true
	// <nil>
	// sim: endpoint "db": toxics: latency.delay = -1ns: must be positive
}
