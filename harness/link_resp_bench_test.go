package harness

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/shakedown/shakedown/toxics"
)

// respOK answers every RESP command with +OK: a server whose own cost is
// the same on every path.
func respOK(c *net.TCPConn) {
	_ = c.SetDeadline(time.Time{})
	in := make([]byte, 0, 64<<10)
	buf := make([]byte, 64<<10)
	w := bufio.NewWriterSize(c, 64<<10)
	for {
		n, err := c.Read(buf)
		in = append(in, buf[:n]...)
		for {
			m, _, perr := redisCommand(in)
			if perr != nil || m == 0 {
				break
			}
			in = in[m:]
			_, _ = w.WriteString("+OK\r\n")
		}
		in = append(in[:0:0], in...)
		if w.Flush() != nil || err != nil {
			return
		}
	}
}

// BenchmarkProtocolFaultCost measures what an armed protocol fault costs,
// side by side in one run, on three Links in front of the same RESP
// server: none armed (the fast path), a byte fault armed that changes
// nothing (Bandwidth at 1 TB/s: the pipeline alone), and a redis_error
// armed for a command never sent (the pipeline, and every command and
// reply cut and queued, none answered). Each iteration is a round of
// 2,000 PING round trips on each Link in turn, then 20,000 pipelined
// SETs of 1 KiB on each in turn. Reported: p50 of the round trips and the
// pipelined throughput of each, and each armed Link's over none.
func BenchmarkProtocolFaultCost(b *testing.B) {
	if raceDetector {
		b.Skip("figures under the race detector measure the race detector")
	}
	const (
		roundTrips = 2000
		pipelined  = 20000
	)
	addr := serveTCP(b, respOK)
	type path struct {
		name  string
		c     *net.TCPConn
		rtts  []time.Duration
		bytes int64
		took  time.Duration
	}
	var paths []*path
	for _, p := range []struct {
		name  string
		fault toxics.Fault
	}{
		{"none", nil},
		{"pipeline", toxics.Bandwidth{Rate: 1 << 40}},
		{"protocol", toxics.RedisError{Reply: toxics.RedisLoading, Requests: toxics.Requests{Share: 1, Commands: "NEVERSENT"}}},
	} {
		l := NewLink(b, p.name, addr, WithProtocol(toxics.ProtocolRedis))
		if p.fault != nil {
			if _, err := l.Apply(context.Background(), p.fault); err != nil {
				b.Fatal(err)
			}
		}
		paths = append(paths, &path{name: p.name, c: benchDial(b, l.Addr())})
	}
	ping := []byte("*1\r\n$4\r\nPING\r\n")
	val := make([]byte, 1024)
	for i := range val {
		val[i] = 'x'
	}
	set := fmt.Appendf(nil, "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$%d\r\n%s\r\n", len(val), val)
	reply := make([]byte, 5)
	roundTrip := func(p *path) {
		start := time.Now()
		if _, err := p.c.Write(ping); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(p.c, reply); err != nil {
			b.Fatal(err)
		}
		p.rtts = append(p.rtts, time.Since(start))
	}
	bulk := func(p *path, n int) {
		start := time.Now()
		done := make(chan error, 1)
		go func() {
			_, err := io.CopyN(io.Discard, p.c, int64(5*n))
			done <- err
		}()
		batch := make([]byte, 0, 64*len(set))
		for i := 0; i < n; i += 64 {
			batch = batch[:0]
			for j := i; j < min(n, i+64); j++ {
				batch = append(batch, set...)
			}
			if _, err := p.c.Write(batch); err != nil {
				b.Fatal(err)
			}
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		p.took += time.Since(start)
		p.bytes += int64(n * len(set))
	}
	for _, p := range paths { // warm up
		for range 100 {
			roundTrip(p)
		}
		bulk(p, 1000)
		p.rtts, p.bytes, p.took = p.rtts[:0], 0, 0
	}
	b.ResetTimer()
	for range b.N {
		for _, p := range paths {
			for range roundTrips {
				roundTrip(p)
			}
		}
		for _, p := range paths {
			bulk(p, pipelined)
		}
	}
	b.StopTimer()
	var p50None, mbpsNone float64
	for _, p := range paths {
		p50, _ := reportPercentiles(b, p.name+"-", p.rtts)
		mbps := float64(p.bytes) / p.took.Seconds() / 1e6
		b.ReportMetric(mbps, p.name+"-MB/s")
		if p.name == "none" {
			p50None, mbpsNone = p50, mbps
			continue
		}
		b.ReportMetric(p50/p50None, p.name+"-p50/none")
		b.ReportMetric(mbps/mbpsNone, p.name+"-MB/s/none")
	}
}
