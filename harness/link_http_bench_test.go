package harness

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shakedown/shakedown/toxics"
)

// BenchmarkLinkHTTPFault measures what parsing HTTP costs while an HTTP
// fault is armed, side by side in one run, over net/http to one httptest
// server: direct, through a Link with no fault (the fast path), and
// through a Link with an HTTP fault armed that takes no request (an
// HTTPStatus for a path no request has), so every request and response is
// parsed and passed on and nothing else changes. Each iteration is a
// round: 500 small GETs on each way in turn, then one 16 MiB GET on each
// way in turn. Reported: p50 and p99 of the small GETs and the MB/s of the
// large one for each way, and for the armed Link its p50 and MB/s over the
// Link with none armed.
//
//	go test ./harness -run '^$' -bench LinkHTTPFault -benchtime 5x -count 3
func BenchmarkLinkHTTPFault(b *testing.B) {
	if raceDetector {
		b.Skip("figures under the race detector measure the race detector")
	}
	const (
		small   = 500
		bigSize = 16 << 20
	)
	big := strings.Repeat("x", bigSize)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Header().Set("Content-Length", strconv.Itoa(bigSize))
			_, _ = io.WriteString(w, big)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	b.Cleanup(srv.Close)
	up := srv.Listener.Addr().String()
	none := NewLink(b, "none", up, WithProtocol("http"))
	armed := NewLink(b, "armed", up, WithProtocol("http"))
	revert, err := armed.Apply(context.Background(), toxics.HTTPStatus{Status: 503, Match: toxics.HTTPMatch{Rate: 1, PathPrefix: "/never"}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = revert(context.Background()) })

	type way struct {
		name   string
		url    string
		client *http.Client
		rtts   []time.Duration
		bytes  int64
		took   time.Duration
	}
	ways := []*way{{name: "direct", url: srv.URL}, {name: "link", url: "http://" + none.Addr()}, {name: "armed", url: "http://" + armed.Addr()}}
	for _, w := range ways {
		tr := &http.Transport{}
		b.Cleanup(tr.CloseIdleConnections)
		w.client = &http.Client{Transport: tr}
	}
	get := func(w *way, path string) int64 {
		resp, err := w.client.Get(w.url + path)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("%s %s: %d %v", w.name, path, resp.StatusCode, err)
		}
		return n
	}
	for _, w := range ways { // warm up
		for range 50 {
			get(w, "/small")
		}
		get(w, "/big")
	}
	b.ResetTimer()
	for range b.N {
		for _, w := range ways {
			for range small {
				start := time.Now()
				get(w, "/small")
				w.rtts = append(w.rtts, time.Since(start))
			}
		}
		for _, w := range ways {
			start := time.Now()
			w.bytes += get(w, "/big")
			w.took += time.Since(start)
		}
	}
	b.StopTimer()
	var linkP50, linkMBps float64
	for _, w := range ways {
		p50, _ := reportPercentiles(b, w.name+"-", w.rtts)
		mbps := float64(w.bytes) / w.took.Seconds() / 1e6
		b.ReportMetric(mbps, w.name+"-MB/s")
		switch w.name {
		case "link":
			linkP50, linkMBps = p50, mbps
		case "armed":
			b.ReportMetric(p50/linkP50, "armed-p50/link")
			b.ReportMetric(mbps/linkMBps, "armed-MB/s/link")
		}
	}
}
