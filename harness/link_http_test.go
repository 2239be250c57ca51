package harness

import (
	"context"
	"encoding/json"

	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/internal/httpfault"
	"github.com/shakedown/shakedown/toxics"
)

// httpBed is a real HTTP server (httptest) behind a Link that speaks HTTP,
// and a net/http client whose requests go through the Link.
type httpBed struct {
	link   *Link
	client *http.Client
	url    string
	hits   atomic.Int64 // requests that reached the server
}

func newHTTPBed(t *testing.T, seed int64, h http.HandlerFunc) *httpBed {
	t.Helper()
	b := &httpBed{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	b.link = NewLink(t, "api", srv.Listener.Addr().String(), WithProtocol("http"), WithSeed(seed))
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	b.client = &http.Client{Transport: tr, Timeout: ioDeadline}
	b.url = "http://" + b.link.Addr()
	return b
}

func (b *httpBed) apply(t *testing.T, f toxics.Fault) func() {
	t.Helper()
	revert, err := b.link.Apply(context.Background(), f)
	require.NoError(t, err)
	return func() { require.NoError(t, revert(context.Background())) }
}

// get does one request and returns the response with its body read, and
// whether it went over a connection used before.
func (b *httpBed) do(t *testing.T, method, path, body string) (resp *http.Response, data string, reused bool, err error) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, b.url+path, rd)
	require.NoError(t, err)
	req = req.WithContext(httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
	}))
	resp, err = b.client.Do(req)
	if err != nil {
		return nil, "", reused, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp, string(raw), reused, err
}

func okHandler(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	_, _ = io.WriteString(w, "ok "+r.URL.Path)
}

func TestLinkHTTPStatus(t *testing.T) {
	for _, status := range toxics.HTTPStatuses() {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			b := newHTTPBed(t, 1, okHandler)
			f := toxics.HTTPStatus{Status: status, Match: toxics.HTTPMatch{Nth: 1, PathPrefix: "/api"}}
			if status == 429 || status == 503 {
				f.RetryAfter = 2 * time.Second
			}
			// A first request opens the connection the others reuse.
			_, body, _, err := b.do(t, "GET", "/warm", "")
			require.NoError(t, err)
			require.Equal(t, "ok /warm", body)
			revert := b.apply(t, f)

			resp, body, reused, err := b.do(t, "POST", "/api/orders", `{"qty":1}`)
			require.NoError(t, err)
			require.Equal(t, status, resp.StatusCode)
			require.Equal(t, httpfault.StatusBody(status), body)
			require.True(t, reused, "the answer came on the kept-alive connection")
			if f.RetryAfter > 0 {
				require.Equal(t, "2", resp.Header.Get("Retry-After"))
			} else {
				require.Empty(t, resp.Header.Get("Retry-After"))
			}
			require.Equal(t, int64(1), b.hits.Load(), "the answered request never reached the server")

			// The connection stays usable: the next request, on the
			// same connection, reaches the server.
			resp, body, reused, err = b.do(t, "GET", "/other", "")
			require.NoError(t, err)
			require.Equal(t, 200, resp.StatusCode)
			require.Equal(t, "ok /other", body)
			require.True(t, reused)

			revert()
			resp, body, _, err = b.do(t, "GET", "/api/orders", "")
			require.NoError(t, err)
			require.Equal(t, 200, resp.StatusCode)
			require.Equal(t, "ok /api/orders", body)
		})
	}
}

func TestLinkHTTPStatusConnectionClose(t *testing.T) {
	b := newHTTPBed(t, 1, okHandler)
	b.apply(t, toxics.HTTPStatus{Status: 500, Match: toxics.HTTPMatch{Nth: 1}})
	req, err := http.NewRequest("GET", b.url+"/x", nil)
	require.NoError(t, err)
	req.Close = true
	resp, err := b.client.Do(req)
	require.NoError(t, err)
	_, err = io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, 500, resp.StatusCode)
	require.True(t, resp.Close, "the answer says the connection closes")
}

func TestLinkHTTPNth(t *testing.T) {
	b := newHTTPBed(t, 1, okHandler)
	b.apply(t, toxics.HTTPStatus{Status: 503, Match: toxics.HTTPMatch{Nth: 3, Method: "GET"}})
	var got []int
	for i := 0; i < 7; i++ {
		resp, _, _, err := b.do(t, "GET", "/", "")
		require.NoError(t, err)
		got = append(got, resp.StatusCode)
		// A POST does not match the method and is not counted.
		resp, _, _, err = b.do(t, "POST", "/", "x")
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode)
	}
	require.Equal(t, []int{200, 200, 503, 200, 200, 503, 200}, got)
}

func TestLinkHTTPRateFromSeed(t *testing.T) {
	run := func(seed int64) string {
		b := newHTTPBed(t, seed, okHandler)
		b.apply(t, toxics.HTTPStatus{Status: 503, Match: toxics.HTTPMatch{Rate: 0.5}})
		var s strings.Builder
		for i := 0; i < 40; i++ {
			resp, _, _, err := b.do(t, "GET", "/", "")
			require.NoError(t, err)
			s.WriteString(map[int]string{200: ".", 503: "x"}[resp.StatusCode])
		}
		return s.String()
	}
	a, again := run(7), run(7)
	require.Equal(t, a, again, "the same seed takes the same requests")
	require.Contains(t, a, "x")
	require.Contains(t, a, ".")
	require.Len(t, a, 40)
}

func TestLinkHTTPDelay(t *testing.T) {
	b := newHTTPBed(t, 1, okHandler)
	const delay = 150 * time.Millisecond
	b.apply(t, toxics.HTTPDelay{Delay: delay, Match: toxics.HTTPMatch{Rate: 1, PathPrefix: "/slow"}})
	start := time.Now()
	resp, body, _, err := b.do(t, "GET", "/slow", "")
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(start), delay)
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "ok /slow", body)
	_, body, _, err = b.do(t, "GET", "/fast", "")
	require.NoError(t, err)
	require.Equal(t, "ok /fast", body)
}

func TestLinkHTTPDelayRevertedEarly(t *testing.T) {
	b := newHTTPBed(t, 1, okHandler)
	revert := b.apply(t, toxics.HTTPDelay{Delay: time.Hour, Match: toxics.HTTPMatch{Rate: 1}})
	done := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest("GET", b.url+"/held", nil)
		resp, err := b.client.Do(req)
		if err != nil {
			done <- err.Error()
			return
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- string(raw)
	}()
	// Revert once the server has answered (the Link then holds it).
	for b.hits.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	revert()
	require.Equal(t, "ok /held", <-done)
}

func bigHandler(n int, chunked bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body := strings.Repeat("a", n)
		if !chunked {
			w.Header().Set("Content-Length", fmt.Sprint(n))
			_, _ = io.WriteString(w, body)
			return
		}
		_, _ = io.WriteString(w, body[:n/2])
		w.(http.Flusher).Flush()
		_, _ = io.WriteString(w, body[n/2:])
	}
}

func TestLinkHTTPCut(t *testing.T) {
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			b := newHTTPBed(t, 1, bigHandler(10000, chunked))
			b.apply(t, toxics.HTTPCut{Bytes: 100, Match: toxics.HTTPMatch{Rate: 1}})
			resp, body, _, err := b.do(t, "GET", "/big", "")
			require.NotNil(t, resp, "the headers arrive")
			require.Equal(t, 200, resp.StatusCode)
			// net/http reports a body shorter than announced, or a
			// chunked body that stops, as io.ErrUnexpectedEOF.
			require.ErrorIs(t, err, io.ErrUnexpectedEOF)
			require.Equal(t, "unexpected EOF", err.Error())
			require.LessOrEqual(t, len(body), 100) // chunked: 100 bytes with the framing
		})
	}
	t.Run("body that fits", func(t *testing.T) {
		b := newHTTPBed(t, 1, bigHandler(50, false))
		b.apply(t, toxics.HTTPCut{Bytes: 100, Match: toxics.HTTPMatch{Rate: 1}})
		_, body, _, err := b.do(t, "GET", "/", "")
		require.NoError(t, err)
		require.Len(t, body, 50)
		_, _, reused, err := b.do(t, "GET", "/", "")
		require.NoError(t, err)
		require.True(t, reused)
	})
}

func TestLinkHTTPTrickle(t *testing.T) {
	b := newHTTPBed(t, 1, bigHandler(200, false))
	b.apply(t, toxics.HTTPTrickle{BytesPerSecond: 1000, Match: toxics.HTTPMatch{Rate: 1}})
	start := time.Now()
	_, body, _, err := b.do(t, "GET", "/", "")
	require.NoError(t, err)
	require.Equal(t, strings.Repeat("a", 200), body)
	// 200 bytes at 1000 B/s in 50-byte pieces: the last piece leaves at
	// least 150ms after the first.
	require.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond)
}

func TestLinkHTTPJSON(t *testing.T) {
	const doc = `{"items":[{"name":"a","price":5},{"name":"b","price":7}],"total":12}`
	tests := []struct {
		op   toxics.JSONOp
		path string
		want string
	}{
		{toxics.JSONDrop, "items.0.price", `{"items":[{"name":"a"},{"name":"b","price":7}],"total":12}`},
		{toxics.JSONNull, "$.total", `{"items":[{"name":"a","price":5},{"name":"b","price":7}],"total":null}`},
		{toxics.JSONRetype, "items.1.price", `{"items":[{"name":"a","price":5},{"name":"b","price":"7"}],"total":12}`},
		{toxics.JSONAdd, "$.currency", `{"currency":"unexpected","items":[{"name":"a","price":5},{"name":"b","price":7}],"total":12}`},
		{toxics.JSONDrop, "items.5", doc}, // nothing there: unchanged
	}
	for _, chunked := range []bool{false, true} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s %s chunked=%v", tt.op, tt.path, chunked), func(t *testing.T) {
				b := newHTTPBed(t, 1, func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					if chunked {
						_, _ = io.WriteString(w, doc[:10])
						w.(http.Flusher).Flush()
						_, _ = io.WriteString(w, doc[10:])
						return
					}
					_, _ = io.WriteString(w, doc)
				})
				b.apply(t, toxics.HTTPJSON{Op: tt.op, Path: tt.path, Match: toxics.HTTPMatch{Rate: 1}})
				resp, body, _, err := b.do(t, "GET", "/cart", "")
				require.NoError(t, err)
				require.JSONEq(t, tt.want, body)
				if tt.want != doc || !chunked {
					require.Equal(t, int64(len(body)), resp.ContentLength, "Content-Length fixed up")
				}
				require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
				// The connection goes on in step.
				_, body, reused, err := b.do(t, "GET", "/cart", "")
				require.NoError(t, err)
				require.True(t, reused)
				require.True(t, json.Valid([]byte(body)))
			})
		}
	}
}

func TestLinkHTTPNeedsProtocol(t *testing.T) {
	up := serveTCP(t, func(c *net.TCPConn) {})
	plain := NewLink(t, "plain", up)
	require.False(t, plain.Supports(toxics.KindHTTPStatus))
	require.True(t, plain.Supports(toxics.KindLatency))
	_, err := plain.Apply(context.Background(), toxics.HTTPStatus{Status: 503, Match: toxics.HTTPMatch{Rate: 1}})
	require.ErrorContains(t, err, `harness: link "plain": apply http_status(503 rate=1): http_status is an HTTP fault and the link was not started with harness.WithProtocol("http")`)

	web := NewLink(t, "web", up, WithProtocol("http"))
	for _, k := range toxics.HTTPKinds() {
		require.True(t, web.Supports(k), k)
	}
	_, err = web.Apply(context.Background(), toxics.HTTPStatus{Status: 418, Match: toxics.HTTPMatch{Rate: 1}})
	var fe *toxics.FieldError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, "status", fe.Field)

	_, err = StartLink("x", up, WithProtocol("gopher"))
	require.ErrorContains(t, err, `harness: link "x": protocol "gopher" is not one of`)
}

// TestLinkHTTPNotHTTP: bytes that are not HTTP pass through a Link with an
// HTTP fault armed, untouched.
func TestLinkHTTPNotHTTP(t *testing.T) {
	up := serveTCP(t, func(c *net.TCPConn) { _, _ = io.Copy(c, c) })
	l := NewLink(t, "echo", up, WithProtocol("http"))
	revert, err := l.Apply(context.Background(), toxics.HTTPStatus{Status: 503, Match: toxics.HTTPMatch{Rate: 1}})
	require.NoError(t, err)
	defer func() { require.NoError(t, revert(context.Background())) }()
	c, err := net.Dial("tcp", l.Addr())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(ioDeadline)))
	msg := []byte("\x00\x01 not http at all\r\n\r\nmore")
	_, err = c.Write(msg)
	require.NoError(t, err)
	got := make([]byte, len(msg))
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	require.Equal(t, msg, got)
}

// TestLinkHTTPWithOtherFaults: an HTTP fault and a byte fault act together,
// and revert of both returns the connection to the fast path in step.
func TestLinkHTTPWithOtherFaults(t *testing.T) {
	b := newHTTPBed(t, 1, okHandler)
	revLat := b.apply(t, toxics.Latency{Delay: 5 * time.Millisecond})
	revStatus := b.apply(t, toxics.HTTPStatus{Status: 502, Match: toxics.HTTPMatch{Nth: 2}})
	var got []int
	for i := 0; i < 4; i++ {
		resp, _, _, err := b.do(t, "GET", "/", "")
		require.NoError(t, err)
		got = append(got, resp.StatusCode)
	}
	require.Equal(t, []int{200, 502, 200, 502}, got)
	revStatus()
	revLat()
	for i := 0; i < 3; i++ {
		resp, body, _, err := b.do(t, "GET", "/after", "")
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode)
		require.Equal(t, "ok /after", body)
	}
}

// TestLinkHTTPHead: a HEAD request's response has no body, whatever its
// Content-Length says: the Link stays in step, and an HTTPStatus answer
// to a HEAD has no body either.
func TestLinkHTTPHead(t *testing.T) {
	b := newHTTPBed(t, 1, bigHandler(500, false))
	b.apply(t, toxics.HTTPStatus{Status: 503, Match: toxics.HTTPMatch{Nth: 3}})
	b.apply(t, toxics.HTTPCut{Bytes: 10, Match: toxics.HTTPMatch{Rate: 1, Method: "GET"}})
	for i, want := range []int{200, 200, 503, 200} {
		resp, body, _, err := b.do(t, "HEAD", "/", "")
		require.NoError(t, err, "request %d", i)
		require.Equal(t, want, resp.StatusCode, "request %d", i)
		require.Empty(t, body)
	}
	resp, _, _, err := b.do(t, "GET", "/", "")
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.Equal(t, 200, resp.StatusCode)
}
