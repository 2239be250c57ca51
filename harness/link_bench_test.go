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

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"

	"github.com/shakedown/shakedown/toxics"
)

// Run with, for example:
//
//	go test ./harness -run '^$' -bench 'LinkSideBySide|FaultEffect' -benchtime 5x -count 3
//
// Goals: with no fault, a Link adds at most 5 µs to a round trip at p50
// (on an idle machine), its p99 is at most twice the direct one, it carries
// at least 80% of the direct throughput, and it beats a plain Toxiproxy
// proxy on all three; a fault is in force on live connections less than
// 1 ms after Apply is called.

// reportPercentiles reports the 50th and 99th percentiles of ds in
// microseconds, under the names prefix+"p50-us" and prefix+"p99-us", and
// returns them.
func reportPercentiles(b *testing.B, prefix string, ds []time.Duration) (p50, p99 float64) {
	b.Helper()
	if len(ds) == 0 {
		return 0, 0
	}
	slices.Sort(ds)
	at := func(q float64) float64 {
		return float64(ds[int(q*float64(len(ds)-1))].Nanoseconds()) / 1e3
	}
	p50, p99 = at(0.50), at(0.99)
	b.ReportMetric(p50, prefix+"p50-us")
	b.ReportMetric(p99, prefix+"p99-us")
	return p50, p99
}

func benchDial(b *testing.B, addr string) *net.TCPConn {
	b.Helper()
	c := dial(b, addr)
	if err := c.SetDeadline(time.Time{}); err != nil {
		b.Fatal(err)
	}
	return c
}

// echoRW copies everything back through a buffer: an echo whose own cost
// is two plain system calls per message, on every path alike.
func echoRW(c *net.TCPConn) {
	_ = c.SetDeadline(time.Time{})
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// countingSink reads an 8-byte length, then that many bytes, then answers
// one byte: the client knows every byte has arrived.
func countingSink(c *net.TCPConn) {
	_ = c.SetDeadline(time.Time{})
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

// plainToxiproxy starts an in-process Toxiproxy proxy with no toxics in
// front of upstream, as Toxiproxy's own server would, and returns its
// address; b.Cleanup stops it.
func plainToxiproxy(b *testing.B, upstream string) string {
	b.Helper()
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	proxy := toxiproxy.NewProxy(server, "plain", "127.0.0.1:0", upstream)
	if err := proxy.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(proxy.Stop)
	return proxy.Listen
}

// bareRelay starts the least a relay in user space can be in front of
// upstream: per connection, one goroutine each way in io.Copy between the
// two TCP connections (splice(2) on Linux, as the Link's fast path), no
// fault, no bookkeeping. It is the floor of any proxy that moves bytes
// through a process, the Link's included; b.Cleanup stops it.
func bareRelay(b *testing.B, upstream string) string {
	b.Helper()
	return serveTCP(b, func(c *net.TCPConn) {
		_ = c.SetDeadline(time.Time{})
		up, err := net.Dial("tcp", upstream)
		if err != nil {
			return
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = io.Copy(up, c)
			_ = up.Close()
		}()
		_, _ = io.Copy(c, up)
		_ = c.Close()
		<-done
	})
}

// benchPath is one way to the benchmark's servers.
type benchPath struct {
	name       string
	echo, sink *net.TCPConn
	rtts       []time.Duration
	bytes      int64
	took       time.Duration
}

// roundTrips does n 1-byte round trips and records each.
func (p *benchPath) roundTrips(b *testing.B, n int) {
	out, in := []byte{1}, make([]byte, 1)
	for range n {
		start := time.Now()
		if _, err := p.echo.Write(out); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(p.echo, in); err != nil {
			b.Fatal(err)
		}
		p.rtts = append(p.rtts, time.Since(start))
	}
}

// bulk writes n bytes in 64 KiB writes and waits until the server has read
// them all.
func (p *benchPath) bulk(b *testing.B, n int64) {
	const size = 64 << 10
	buf := make([]byte, size)
	var hdr [8]byte
	binary.BigEndian.PutUint64(hdr[:], uint64(n))
	start := time.Now()
	if _, err := p.sink.Write(hdr[:]); err != nil {
		b.Fatal(err)
	}
	for left := n; left > 0; left -= size {
		if _, err := p.sink.Write(buf[:min(left, size)]); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := io.ReadFull(p.sink, hdr[:1]); err != nil {
		b.Fatal(err)
	}
	p.took += time.Since(start)
	p.bytes += n
}

// BenchmarkLinkSideBySide measures four ways to the same echo server and
// the same counting sink, side by side in one run: direct loopback, a bare
// relay (bareRelay: the floor of any proxy in user space), a plain
// in-process Toxiproxy v2.12.0 proxy with no toxics, and a Link with no
// fault. Each iteration is a round: 2,000 1-byte round trips on each way
// in turn, then 64 MiB in 64 KiB writes on each way in turn, so that a
// change of load between rounds hits all alike. Reported over all rounds:
// p50 and p99 of the round trips and the throughput of each way, and for
// the others what they add to direct at p50, their p99 over direct's, and
// their throughput over direct's; and the Link's p50 over the bare
// relay's (link-added-over-relay-p50-us) and its throughput over the
// relay's (link-MB/s/relay): what the Link costs beyond moving the bytes.
func BenchmarkLinkSideBySide(b *testing.B) {
	if raceDetector {
		// Its instrumentation of every channel operation and lock would be
		// measured, not the paths (it tripled the old Link's round trip).
		b.Skip("figures under the race detector measure the race detector")
	}
	const (
		roundTrips = 2000
		bulkBytes  = 64 << 20
	)
	echoAddr, sinkAddr := serveTCP(b, echoRW), serveTCP(b, countingSink)
	echoLink, sinkLink := NewLink(b, "echo", echoAddr), NewLink(b, "sink", sinkAddr)
	paths := []*benchPath{
		{name: "direct", echo: benchDial(b, echoAddr), sink: benchDial(b, sinkAddr)},
		{name: "relay", echo: benchDial(b, bareRelay(b, echoAddr)), sink: benchDial(b, bareRelay(b, sinkAddr))},
		{name: "toxiproxy", echo: benchDial(b, plainToxiproxy(b, echoAddr)), sink: benchDial(b, plainToxiproxy(b, sinkAddr))},
		{name: "link", echo: benchDial(b, echoLink.Addr()), sink: benchDial(b, sinkLink.Addr())},
	}
	for _, p := range paths { // warm up: connections set up, buffers grown
		p.roundTrips(b, 100)
		p.bulk(b, 1<<20)
		p.rtts, p.bytes, p.took = p.rtts[:0], 0, 0
	}
	b.ResetTimer()
	for range b.N {
		for _, p := range paths {
			p.roundTrips(b, roundTrips)
		}
		for _, p := range paths {
			p.bulk(b, bulkBytes)
		}
	}
	b.StopTimer()
	type figures struct{ p50, p99, mbps float64 }
	var direct, relay figures
	for _, p := range paths {
		var f figures
		f.p50, f.p99 = reportPercentiles(b, p.name+"-", p.rtts)
		f.mbps = float64(p.bytes) / p.took.Seconds() / 1e6
		b.ReportMetric(f.mbps, p.name+"-MB/s")
		if p.name == "direct" {
			direct = f
			continue
		}
		b.ReportMetric(f.p50-direct.p50, p.name+"-added-p50-us")
		b.ReportMetric(f.p99/direct.p99, p.name+"-p99/direct")
		b.ReportMetric(f.mbps/direct.mbps, p.name+"-MB/s/direct")
		switch p.name {
		case "relay":
			relay = f
		case "link":
			b.ReportMetric(f.p50-relay.p50, "link-added-over-relay-p50-us")
			b.ReportMetric(f.mbps/relay.mbps, "link-MB/s/relay")
		}
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
