package harness

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/shakedown/shakedown/toxics"
)

// Run with, for example:
//
//	go test ./harness -run '^$' -bench 'Link|FaultEffect' -benchtime 2000x
//
// Goals: a Link adds at most 30 µs to a round trip at p50, carries at
// least 40% of the direct throughput, and a fault is in force on live
// connections less than 1 ms after Apply is called.

// reportPercentiles reports the 50th and 99th percentiles of ds in
// microseconds, under the names prefix+"p50-us" and prefix+"p99-us".
func reportPercentiles(b *testing.B, prefix string, ds []time.Duration) {
	b.Helper()
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	at := func(q float64) float64 {
		return float64(ds[int(q*float64(len(ds)-1))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(at(0.50), prefix+"p50-us")
	b.ReportMetric(at(0.99), prefix+"p99-us")
}

func benchDial(b *testing.B, addr string) *net.TCPConn {
	b.Helper()
	c := dial(b, addr)
	if err := c.SetDeadline(time.Time{}); err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkLinkRoundTrip measures a 1-byte request and its 1-byte echo,
// straight to the server and through a Link.
func BenchmarkLinkRoundTrip(b *testing.B) {
	up := serveTCP(b, echo)
	l := NewLink(b, "bench", up)
	for _, bc := range []struct{ name, addr string }{{"direct", up}, {"link", l.Addr()}} {
		b.Run(bc.name, func(b *testing.B) {
			c := benchDial(b, bc.addr)
			out, in := []byte{1}, make([]byte, 1)
			rtts := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				if _, err := c.Write(out); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, in); err != nil {
					b.Fatal(err)
				}
				rtts = append(rtts, time.Since(start))
			}
			b.StopTimer()
			reportPercentiles(b, "", rtts)
		})
	}
}

// countingSink reads an 8-byte length, then that many bytes, then answers
// one byte: the client knows every byte has arrived.
func countingSink(c *net.TCPConn) {
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		n := int64(binary.BigEndian.Uint64(hdr[:]))
		if _, err := io.CopyN(io.Discard, c, n); err != nil {
			return
		}
		if _, err := c.Write([]byte{1}); err != nil {
			return
		}
	}
}

// BenchmarkLinkThroughput measures 64 KiB writes, straight to the server
// and through a Link, until the server has read every byte.
func BenchmarkLinkThroughput(b *testing.B) {
	const size = 64 << 10
	up := serveTCP(b, func(c *net.TCPConn) {
		_ = c.SetDeadline(time.Time{})
		countingSink(c)
	})
	l := NewLink(b, "bench", up)
	for _, bc := range []struct{ name, addr string }{{"direct", up}, {"link", l.Addr()}} {
		b.Run(bc.name, func(b *testing.B) {
			c := benchDial(b, bc.addr)
			buf := make([]byte, size)
			var hdr [8]byte
			binary.BigEndian.PutUint64(hdr[:], uint64(b.N)*size)
			b.SetBytes(size)
			b.ResetTimer()
			if _, err := c.Write(hdr[:]); err != nil {
				b.Fatal(err)
			}
			for range b.N {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := io.ReadFull(c, hdr[:1]); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkFaultEffect measures how long Apply takes to put a fault in
// force on a live connection: the time from calling Apply to its return,
// after which every iteration checks that the very next byte is affected
// (latency: its round trip takes at least the delay; blackhole: no echo
// within 1 ms, where an unaffected echo takes tens of µs). The time to
// revert is reported as revert-p50-us and revert-p99-us.
func BenchmarkFaultEffect(b *testing.B) {
	up := serveTCP(b, func(c *net.TCPConn) {
		_ = c.SetDeadline(time.Time{})
		echo(c)
	})
	ctx := context.Background()
	const delay = time.Millisecond
	for _, bc := range []struct {
		name  string
		fault toxics.Fault
		check func(b *testing.B, c *net.TCPConn, seq byte)
	}{
		{"latency", toxics.Latency{Delay: delay, Direction: toxics.Downstream}, func(b *testing.B, c *net.TCPConn, seq byte) {
			start := time.Now()
			if _, err := c.Write([]byte{seq}); err != nil {
				b.Fatal(err)
			}
			in := make([]byte, 1)
			if _, err := io.ReadFull(c, in); err != nil {
				b.Fatal(err)
			}
			if rtt := time.Since(start); rtt < delay {
				b.Fatalf("the first byte after Apply (sent %d, got %d) took %v, less than the %v delay", seq, in[0], rtt, delay)
			}
		}},
		{"blackhole", toxics.Blackhole{Direction: toxics.Upstream}, func(b *testing.B, c *net.TCPConn, seq byte) {
			if _, err := c.Write([]byte{seq}); err != nil {
				b.Fatal(err)
			}
			if err := c.SetReadDeadline(time.Now().Add(time.Millisecond)); err != nil {
				b.Fatal(err)
			}
			n, err := c.Read(make([]byte, 1))
			if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
				b.Fatalf("the first byte after Apply came back (%d bytes, err %v)", n, err)
			}
			if err := c.SetReadDeadline(time.Time{}); err != nil {
				b.Fatal(err)
			}
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l := NewLink(b, "bench", up)
			c := benchDial(b, l.Addr())
			in := make([]byte, 1)
			applied := make([]time.Duration, 0, b.N)
			reverted := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				seq := byte(2 * i)
				start := time.Now()
				revert, err := l.Apply(ctx, bc.fault)
				took := time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				applied = append(applied, took)
				bc.check(b, c, seq)
				start = time.Now()
				if err := revert(ctx); err != nil {
					b.Fatal(err)
				}
				reverted = append(reverted, time.Since(start))
				// The connection carries data again (a blackholed byte
				// is lost, so the next echo is the next byte).
				if _, err := c.Write([]byte{seq + 1}); err != nil {
					b.Fatal(err)
				}
				for {
					if _, err := io.ReadFull(c, in); err != nil {
						b.Fatal(err)
					}
					if in[0] == seq+1 {
						break
					}
				}
			}
			b.StopTimer()
			reportPercentiles(b, "", applied)
			reportPercentiles(b, "revert-", reverted)
		})
	}
}
