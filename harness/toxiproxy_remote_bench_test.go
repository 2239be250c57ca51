package harness

import (
	"context"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/shakedown/shakedown/toxics"
)

// BenchmarkRemoteFaultEffect measures what a step of a schedule costs on
// a deployed Toxiproxy server (toxiproxy-server built from the pinned
// module, its API on loopback) over an embedded Link, side by side in one
// run, in front of the same echo server: apply-to-effect, the time from
// calling Apply to sending the first byte that shows the fault. Each
// iteration applies a 1 ms downstream latency to a live connection through
// each of the two, in alternating order, sends one byte as soon as Apply
// returns and checks that its round trip took at least the delay (so the
// fault was in force for the very next byte), then reverts. Reported:
// p50 and p99 of each (link-, remote-), remote p50 over link p50
// (remote/link-p50) and what the remote adds at p50, and the reverts'
// p50s.
//
//	go test ./harness -run '^$' -bench RemoteFaultEffect -benchtime 300x -count 3
func BenchmarkRemoteFaultEffect(b *testing.B) {
	if raceDetector {
		b.Skip("figures under the race detector measure the race detector")
	}
	api := startToxiproxyServer(b)
	up := serveTCP(b, func(c *net.TCPConn) {
		_ = c.SetDeadline(time.Time{})
		echo(c)
	})
	serverProxy(b, api, "bench", up)
	link := NewLink(b, "bench", up)
	remote := NewRemoteProxy(b, "bench", api, "bench")

	type path struct {
		name   string
		target interface {
			Apply(context.Context, toxics.Fault) (func(context.Context) error, error)
		}
		conn    *net.TCPConn
		effect  []time.Duration
		reverts []time.Duration
	}
	paths := []*path{
		{name: "link", target: link, conn: benchDial(b, link.Addr())},
		{name: "remote", target: remote, conn: benchDial(b, remote.Addr())},
	}
	const delay = time.Millisecond
	fault := toxics.Latency{Delay: delay, Direction: toxics.Downstream}
	ctx := context.Background()
	out, in := make([]byte, 1), make([]byte, 1)
	step := func(p *path, seq byte) {
		start := time.Now()
		revert, err := p.target.Apply(ctx, fault)
		if err != nil {
			b.Fatal(err)
		}
		out[0] = seq
		sent := time.Now()
		if _, err := p.conn.Write(out); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(p.conn, in); err != nil {
			b.Fatal(err)
		}
		if rtt := time.Since(sent); rtt < delay || in[0] != seq {
			b.Fatalf("%s: the first byte after Apply (sent %d, got %d) took %v, less than the %v delay", p.name, seq, in[0], rtt, delay)
		}
		p.effect = append(p.effect, sent.Sub(start))
		start = time.Now()
		if err := revert(ctx); err != nil {
			b.Fatal(err)
		}
		p.reverts = append(p.reverts, time.Since(start))
	}
	for i := range 10 { // warm up: connections to the API, the pipelines
		for _, p := range paths {
			step(p, byte(i))
		}
	}
	for _, p := range paths {
		p.effect, p.reverts = p.effect[:0], p.reverts[:0]
	}
	b.ResetTimer()
	for i := range b.N {
		for j := range paths {
			step(paths[(i+j)%len(paths)], byte(i))
		}
	}
	b.StopTimer()
	var p50 [2]float64
	for i, p := range paths {
		p50[i], _ = reportPercentiles(b, p.name+"-", p.effect)
		slices.Sort(p.reverts)
		b.ReportMetric(float64(p.reverts[len(p.reverts)/2].Nanoseconds())/1e3, p.name+"-revert-p50-us")
	}
	b.ReportMetric(p50[1]/p50[0], "remote/link-p50")
	b.ReportMetric(p50[1]-p50[0], "remote-added-p50-us")
}
