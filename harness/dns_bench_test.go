package harness

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"
)

// BenchmarkDNSDial: a TCP dial to a dependency's Link by name (a lookup
// through the Env's name server, then the connect) beside one by address,
// interleaved round by round; it reports the p50 of each and their ratio.
//
//	go test ./harness -run '^$' -bench DNSDial -benchtime 3x -count 3
func BenchmarkDNSDial(b *testing.B) {
	e := New(b, WithSeed(1))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	svc := e.Address("api", ln.Addr().String())
	d := e.DNS()
	byName, err := d.Address("api")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var direct net.Dialer
	const rounds = 300
	var named, plain []time.Duration
	for b.Loop() {
		for range rounds {
			for _, way := range []struct {
				dial func() (net.Conn, error)
				into *[]time.Duration
			}{
				{func() (net.Conn, error) { return d.DialContext(ctx, "tcp", byName) }, &named},
				{func() (net.Conn, error) { return direct.DialContext(ctx, "tcp", svc.Addr()) }, &plain},
			} {
				start := time.Now()
				c, err := way.dial()
				if err != nil {
					b.Fatal(err)
				}
				*way.into = append(*way.into, time.Since(start))
				c.Close()
			}
		}
	}
	p50 := func(ds []time.Duration) time.Duration { ds = slices.Clone(ds); slices.Sort(ds); return ds[len(ds)/2] }
	b.ReportMetric(float64(p50(named).Microseconds()), "p50-by-name-µs")
	b.ReportMetric(float64(p50(plain).Microseconds()), "p50-by-addr-µs")
	b.ReportMetric(float64(p50(named))/float64(p50(plain)), "ratio")
}
