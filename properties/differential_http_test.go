package properties_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/harness"
	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// The HTTP differential test: the same requests, under the same HTTP
// fault, go once through a real harness.Link (started with
// harness.WithProtocol("http")) to a real net/http server, and once to a
// sim.FakeHTTP with the same handler on a simulated network with the same
// seed. Every request must end the same way on both sides: the same
// status, Retry-After and body, or the same error as net/http reports it.
// Faults whose effect is time (delay, trickle) are compared on outcome,
// and each side must take at least the fault's time.

const diffJSON = `{"items":[{"name":"a","price":5},{"name":"b","price":7}],"total":12}`

func diffHTTPHandler(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	switch {
	case strings.HasPrefix(r.URL.Path, "/json"):
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(diffJSON)))
		_, _ = io.WriteString(w, diffJSON)
	case strings.HasPrefix(r.URL.Path, "/big"):
		body := strings.Repeat("b", 2000)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = io.WriteString(w, body)
	default:
		_, _ = io.WriteString(w, "ok "+r.Method+" "+r.URL.Path)
	}
}

// diffHTTPRequests is the script both sides run, in order, on one client.
var diffHTTPRequests = func() [][2]string {
	var out [][2]string
	for i := 0; i < 4; i++ {
		out = append(out, [2]string{"GET", "/json/" + strconv.Itoa(i)}, [2]string{"POST", "/orders"}, [2]string{"GET", "/big"}, [2]string{"GET", "/"})
	}
	return out
}()

// diffHTTPRun runs the script and describes how each request ended.
func diffHTTPRun(t *testing.T, c *http.Client, base string) []string {
	var out []string
	for _, rq := range diffHTTPRequests {
		var body io.Reader
		if rq[0] == "POST" {
			body = strings.NewReader(`{"qty":1}`)
		}
		req, err := http.NewRequest(rq[0], base+rq[1], body)
		require.NoError(t, err)
		resp, err := c.Do(req)
		if err != nil {
			out = append(out, rq[0]+" "+rq[1]+": error "+httpErrClass(err))
			continue
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		shown := string(raw)
		if len(shown) > 100 {
			shown = fmt.Sprintf("%.20s… (%d bytes)", shown, len(shown))
		}
		s := fmt.Sprintf("%s %s: %d retry-after=%q len=%d body=%q", rq[0], rq[1], resp.StatusCode, resp.Header.Get("Retry-After"), resp.ContentLength, shown)
		if err != nil {
			s += " then error " + httpErrClass(err)
		}
		out = append(out, s)
	}
	return out
}

// errClass is an error as net/http reports it, without the parts that name
// an address.
func httpErrClass(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

func TestDifferentialHTTP(t *testing.T) {
	const seed = 11
	one := toxics.HTTPMatch{Nth: 1}
	cases := []toxics.Fault{
		toxics.HTTPStatus{Status: 503, RetryAfter: time.Second, Match: toxics.HTTPMatch{Nth: 2}},
		toxics.HTTPStatus{Status: 429, RetryAfter: 2 * time.Second, Match: toxics.HTTPMatch{Rate: 0.5}},
		toxics.HTTPStatus{Status: 500, Match: toxics.HTTPMatch{Nth: 1, Method: "POST"}},
		toxics.HTTPStatus{Status: 502, Match: toxics.HTTPMatch{Rate: 0.3, PathPrefix: "/json"}},
		toxics.HTTPStatus{Status: 504, Match: one},
		toxics.HTTPJSON{Op: toxics.JSONDrop, Path: "items.0.price", Match: one},
		toxics.HTTPJSON{Op: toxics.JSONNull, Path: "$.total", Match: toxics.HTTPMatch{Nth: 3}},
		toxics.HTTPJSON{Op: toxics.JSONRetype, Path: "items.1", Match: toxics.HTTPMatch{Rate: 0.5}},
		toxics.HTTPJSON{Op: toxics.JSONAdd, Path: "$.extra", Match: one},
		toxics.HTTPCut{Bytes: 100, Match: toxics.HTTPMatch{Nth: 1, PathPrefix: "/big"}},
		toxics.HTTPCut{Bytes: 5000, Match: one}, // every body fits: nothing cut
		toxics.HTTPDelay{Delay: 30 * time.Millisecond, Match: toxics.HTTPMatch{Nth: 4}},
		toxics.HTTPTrickle{BytesPerSecond: 10000, Match: toxics.HTTPMatch{Nth: 1, PathPrefix: "/big"}},
	}
	covered := map[toxics.Kind]bool{}
	for _, f := range cases {
		covered[f.Kind()] = true
		t.Run(f.String(), func(t *testing.T) {
			realOut, realTook := diffHTTPReal(t, seed, f)
			simOut, simTook := diffHTTPSim(t, seed, f)
			require.Equal(t, realOut, simOut, "real Link (first) and sim FakeHTTP (second) disagree")
			if min := diffHTTPMinTime(f); min > 0 {
				require.GreaterOrEqual(t, realTook, min, "real side")
				require.GreaterOrEqual(t, simTook, min, "sim side")
			}
		})
	}
	for _, k := range toxics.HTTPKinds() {
		require.True(t, covered[k], "no differential case for %s", k)
	}
}

// diffHTTPMinTime is the least time the script takes under f.
func diffHTTPMinTime(f toxics.Fault) time.Duration {
	switch f := f.(type) {
	case toxics.HTTPDelay:
		return f.Delay * time.Duration(len(diffHTTPRequests)/f.Match.Nth)
	case toxics.HTTPTrickle:
		// Each of the 4 bodies of 2000 bytes goes in pieces of rate/20
		// bytes, 50ms apart: 4 pieces, the last 150ms after the first.
		return 4 * 150 * time.Millisecond
	}
	return 0
}

func diffHTTPReal(t *testing.T, seed int64, f toxics.Fault) ([]string, time.Duration) {
	srv := httptest.NewServer(http.HandlerFunc(diffHTTPHandler))
	defer srv.Close()
	link, err := harness.StartLink("api", srv.Listener.Addr().String(), harness.WithProtocol("http"), harness.WithSeed(seed))
	require.NoError(t, err)
	defer func() { require.NoError(t, link.Close()) }()
	_, err = link.Apply(context.Background(), f)
	require.NoError(t, err)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	start := time.Now()
	out := diffHTTPRun(t, &http.Client{Transport: tr, Timeout: 20 * time.Second}, "http://"+link.Addr())
	return out, time.Since(start)
}

func diffHTTPSim(t *testing.T, seed int64, f toxics.Fault) (out []string, took time.Duration) {
	synctest.Test(t, func(t *testing.T) {
		n := sim.NewNetwork(seed)
		defer n.Close()
		api, err := n.FakeHTTP("api", http.HandlerFunc(diffHTTPHandler))
		require.NoError(t, err)
		_, err = api.Apply(context.Background(), f)
		require.NoError(t, err)
		tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) { return n.Dial(ctx, network, addr) }}
		defer tr.CloseIdleConnections()
		start := time.Now()
		out = diffHTTPRun(t, &http.Client{Transport: tr, Timeout: 20 * time.Second}, api.URL())
		took = time.Since(start)
	})
	return out, took
}
