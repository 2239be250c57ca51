package harness

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/toxics"
)

// TestHeadScannerSplits: the request heads of a stream, and the
// traceparent of each, are found wherever the stream is cut into pieces.
func TestHeadScannerSplits(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	stream := "POST /pay HTTP/1.1\r\nHost: x\r\ntraceparent: " + tp + "\r\nContent-Length: 31\r\n\r\n" +
		"GET /inside-a-body HTTP/1.1\r\n\r\n" + // a body of 31 bytes that looks like a request
		"GET /a HTTP/1.1\r\nHost: x\r\n\r\n" +
		"get /lowercase HTTP/1.1\r\n\r\n" + // not a request line
		"POST /chunked HTTP/1.1\r\nTransfer-Encoding: chunked\r\ntraceparent: " + tp + "\r\n\r\n" +
		"5;ext=1\r\nhello\r\n20\r\nGET /inside-a-chunk HTTP/1.1\r\n\r\n\r\n0\r\nX-Trailer: 1\r\n\r\n" +
		"DELETE /b HTTP/1.0\r\nTRACEPARENT:" + tp + "\r\n\r\n" +
		"PUT /" + strings.Repeat("x", maxHeadLine) + " HTTP/1.1\r\n\r\n" + // too long to be kept
		"HEAD /c HTTP/1.1\r\nx-traceparent: no\r\n\r\n"
	want := []string{tp, "", tp, tp, ""}
	scan := func(pieces ...string) []string {
		var s headScanner
		var got []string
		for _, p := range pieces {
			s.feed([]byte(p), func(v string) { got = append(got, v) })
		}
		return got
	}
	require.Equal(t, want, scan(stream))
	for i := range len(stream) {
		require.Equal(t, want, scan(stream[:i], stream[i:]), "cut at %d", i)
	}
	var bytewise []string
	for i := range len(stream) {
		bytewise = append(bytewise, stream[i:i+1])
	}
	require.Equal(t, want, scan(bytewise...))
}

// TestLinkOnTraceparent: the Link reports the traceparent of every request
// it delivers upstream, on a keep-alive connection opened before the tap
// was set, on the fast path and while a fault is armed, and stops when the
// tap is cleared.
func TestLinkOnTraceparent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") }))
	defer srv.Close()
	l := NewLink(t, "api", srv.Listener.Addr().String())
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()

	var mu sync.Mutex
	var seen []string
	get := func(i int, traced bool) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://"+l.Addr()+"/", nil)
		require.NoError(t, err)
		if traced {
			req.Header.Set("Traceparent", fmt.Sprintf("00-%032x-00f067aa0ba902b7-01", i+1))
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
	}
	tp := func(i int) string { return fmt.Sprintf("00-%032x-00f067aa0ba902b7-01", i+1) }

	get(0, true) // opens the keep-alive connection, untapped
	l.OnTraceparent(func(v string) { mu.Lock(); seen = append(seen, v); mu.Unlock() })
	get(1, true)
	get(2, false)
	revert, err := l.Apply(context.Background(), toxics.Latency{Delay: 10 * time.Millisecond, Direction: toxics.Upstream})
	require.NoError(t, err)
	get(3, true) // through the pipeline
	require.NoError(t, revert(context.Background()))
	get(4, true)
	l.OnTraceparent(nil)
	get(5, true)

	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{tp(1), "", tp(3), tp(4)}, seen)
	require.False(t, slices.Contains(seen, tp(0)) || slices.Contains(seen, tp(5)))
}
