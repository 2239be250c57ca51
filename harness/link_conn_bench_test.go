package harness

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/shakedown/shakedown/toxics"
)

// Run with, for example:
//
//	go test ./harness -run '^$' -bench 'LinkConnSetup' -benchtime 3x -count 3
//
// BenchmarkLinkConnSetup measures what one connection costs from dial to
// close, side by side in one run: direct to the echo server, through a
// Link with no fault, and through a Link with a connection limit armed
// that never bites (so every connection passes the gate's queue). Each
// iteration is a round of 300 connections on each way in turn: dial, one
// byte there and back, close. Reported: p50 and p99 of each way, and the
// Links' p50 over direct's.
func BenchmarkLinkConnSetup(b *testing.B) {
	if raceDetector {
		b.Skip("figures under the race detector measure the race detector")
	}
	const perRound = 300
	echoAddr := serveTCP(b, echoRW)
	plain := NewLink(b, "plain", echoAddr)
	gated := NewLink(b, "gated", echoAddr)
	if _, err := gated.Apply(context.Background(), toxics.ConnLimit{Max: 1 << 20}); err != nil {
		b.Fatal(err)
	}
	ways := []struct {
		name string
		addr string
		ds   []time.Duration
	}{{name: "direct", addr: echoAddr}, {name: "link", addr: plain.Addr()}, {name: "link-gated", addr: gated.Addr()}}
	one := func(addr string) time.Duration {
		start := time.Now()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Write([]byte{1}); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			b.Fatal(err)
		}
		_ = c.Close()
		return time.Since(start)
	}
	for i := range ways { // warm up
		for range 20 {
			one(ways[i].addr)
		}
	}
	b.ResetTimer()
	for range b.N {
		for i := range ways {
			for range perRound {
				ways[i].ds = append(ways[i].ds, one(ways[i].addr))
			}
		}
	}
	b.StopTimer()
	var direct float64
	for _, w := range ways {
		p50, _ := reportPercentiles(b, w.name+"-", w.ds)
		if w.name == "direct" {
			direct = p50
			continue
		}
		b.ReportMetric(p50/direct, w.name+"-p50/direct")
	}
}
