package promscrape

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const exposition = `# HELP http_requests_total Requests served.
# TYPE http_requests_total counter
http_requests_total{route="/orders",code="201"} 40
http_requests_total{code="503",route="/orders"} 7
# TYPE breaker_open gauge
breaker_open{dep="db"} 1
# TYPE up untyped
up 1
# TYPE latency_seconds histogram
latency_seconds_bucket{le="0.1"} 3
latency_seconds_bucket{le="+Inf"} 5
latency_seconds_sum 1.25
latency_seconds_count 5
# TYPE rpc_seconds summary
rpc_seconds{quantile="0.99"} 0.3
rpc_seconds_sum 2
rpc_seconds_count 10
`

func serve(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL + "/metrics"
}

func TestSample(t *testing.T) {
	var accept string
	url := serve(t, func(w http.ResponseWriter, r *http.Request) {
		accept = r.Header.Get("Accept")
		io.WriteString(w, exposition)
	})
	s := New(t, "api", url)
	require.Equal(t, "api", s.Name())
	got, err := s.Sample(context.Background())
	require.NoError(t, err)
	require.Equal(t, "text/plain;version=0.0.4", accept)
	require.Equal(t, map[string]float64{
		`http_requests_total{code="201",route="/orders"}`: 40,
		`http_requests_total{code="503",route="/orders"}`: 7,
		`breaker_open{dep="db"}`:                          1,
		`up`:                                              1,
		`latency_seconds_sum`:                             1.25,
		`latency_seconds_count`:                           5,
		`rpc_seconds{quantile="0.99"}`:                    0.3,
		`rpc_seconds_sum`:                                 2,
		`rpc_seconds_count`:                               10,
	}, got)

	s.Metrics, s.Buckets = []string{"latency_seconds", "up"}, true
	got, err = s.Sample(context.Background())
	require.NoError(t, err)
	require.Equal(t, map[string]float64{
		`up`:                                1,
		`latency_seconds_bucket{le="0.1"}`:  3,
		`latency_seconds_bucket{le="+Inf"}`: 5,
		`latency_seconds_sum`:               1.25,
		`latency_seconds_count`:             5,
	}, got)
}

func TestSampleErrors(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"not found", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no metrics here", http.StatusNotFound) },
			"404 Not Found: no metrics here"},
		{"not the text format", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "http_requests_total{code=503 7\n") },
			"parse: text format parsing error"},
		{"hangs", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
			"context deadline exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t, "api", serve(t, tt.handler))
			s.Timeout = 50 * time.Millisecond
			_, err := s.Sample(context.Background())
			require.ErrorContains(t, err, tt.want)
			require.ErrorContains(t, err, "promscrape: http://")
		})
	}
}

// BenchmarkScrape is the cost of one sample tick: one GET of a /metrics
// page of 100 series over loopback, parsed.
func BenchmarkScrape(b *testing.B) {
	var page strings.Builder
	page.WriteString("# TYPE http_requests_total counter\n")
	for i := range 100 {
		fmt.Fprintf(&page, "http_requests_total{route=\"/r%d\",code=\"200\"} %d\n", i, i*10)
	}
	body := page.String()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }))
	defer srv.Close()
	s := New(b, "api", srv.URL+"/metrics")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sample(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
