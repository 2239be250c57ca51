package harness_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/shakedown/shakedown/harness"
	"github.com/shakedown/shakedown/toxics"
)

// echoServer stands in for a real dependency: a TCP server on 127.0.0.1:0
// that echoes what it reads. stop closes it and waits for its goroutines.
func echoServer() (addr string, stop func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String(), func() { _ = ln.Close(); wg.Wait() }
}

// A Link sits between a client and its dependency. A fault applied to it
// acts on the live connection at once, and its revert heals it.
func ExampleNewLink() {
	upstream, stop := echoServer()
	defer stop()

	// In a test, NewLink starts the Link and closes it in t.Cleanup:
	//
	//	link := harness.NewLink(t, "db", upstream, harness.WithSeed(seed))
	//
	// StartLink does the same without a test; the caller closes the Link.
	link, err := harness.StartLink("db", upstream, harness.WithSeed(1))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer link.Close()

	// The client dials the Link instead of the dependency.
	conn, err := net.Dial("tcp", link.Addr())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	buf := make([]byte, 5)
	roundTrip := func(msg string) string {
		_, _ = conn.Write([]byte(msg))
		_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := io.ReadFull(conn, buf[:len(msg)])
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return "nothing within 100ms"
		}
		return fmt.Sprintf("%q", buf[:n])
	}
	fmt.Println("healthy:", roundTrip("hello"))

	ctx := context.Background()
	revert, err := link.Apply(ctx, toxics.Blackhole{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("active:", link.Active())
	fmt.Println("blackholed:", roundTrip("lost!"))

	if err := revert(ctx); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("reverted:", roundTrip("again"))

	// Bad faults are refused before anything reaches the proxy.
	_, err = link.Apply(ctx, toxics.Slicer{AverageSize: 0})
	fmt.Println(err)
	// Output:
	// healthy: "hello"
	// active: [blackhole()]
	// blackholed: nothing within 100ms
	// reverted: "again"
	// harness: link "db": apply slicer(0B): toxics: slicer.average_size = 0: must be at least 1 byte
}
