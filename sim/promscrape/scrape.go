package promscrape

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// DefaultTimeout bounds one scrape when [Scraper].Timeout is zero. The
// runner reads its samplers one after the other on one goroutine, so a
// scrape that hangs (a paused container) must not hold the others long.
const DefaultTimeout = 200 * time.Millisecond

// Scraper is a sim.Sampler of a Prometheus endpoint: each reading GETs
// URL, parses the text exposition format with Prometheus' own parser
// (expfmt.TextParser) and returns one value per series. Build one with
// [New], or fill the struct (with a Client of your own, such as one that
// dials through a sim.Network).
type Scraper struct {
	// Label prefixes the series' names in the History (the sampler's
	// Name): series http_errors_total{code="503"} of a Scraper labelled
	// "api" is recorded as api.http_errors_total{code="503"}.
	Label string
	// URL is the endpoint, such as "http://127.0.0.1:8080/metrics". Scrape
	// the service directly rather than through a harness Link, so that
	// the faults of a schedule do not cut the scrape.
	URL string
	// Client does the GETs. Nil is http.DefaultClient.
	Client *http.Client
	// Timeout bounds one scrape (zero: [DefaultTimeout]).
	Timeout time.Duration
	// Metrics are the metric families to keep, by name; empty keeps
	// every family.
	Metrics []string
	// Buckets keeps the buckets of histograms (name_bucket{le="0.1"});
	// without it a histogram gives its _count and _sum only.
	Buckets bool
}

// New returns a Scraper of url labelled label, with an HTTP client of its
// own whose idle connections are closed when t ends.
func New(t testing.TB, label, url string) *Scraper {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 1}
	t.Cleanup(tr.CloseIdleConnections)
	return &Scraper{Label: label, URL: url, Client: &http.Client{Transport: tr}}
}

// Name is the Label (sim.Sampler).
func (s *Scraper) Name() string { return s.Label }

// Sample scrapes the endpoint once (sim.Sampler). Counters, gauges and
// untyped series give their value under their name and labels; a summary
// gives each quantile (name{quantile="0.99"}), name_sum and name_count; a
// histogram name_sum and name_count (and its buckets, with Buckets).
// Labels are written sorted by name, as Prometheus does.
func (s *Scraper) Sample(ctx context.Context) (map[string]float64, error) {
	fams, err := s.scrape(ctx)
	if err != nil {
		return nil, fmt.Errorf("promscrape: %s: %w", s.URL, err)
	}
	out := make(map[string]float64, len(fams))
	for name, f := range fams {
		if len(s.Metrics) > 0 && !slices.Contains(s.Metrics, name) {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := m.GetLabel()
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[Series(name, labels)] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[Series(name, labels)] = m.GetGauge().GetValue()
			case dto.MetricType_SUMMARY:
				sm := m.GetSummary()
				for _, q := range sm.GetQuantile() {
					out[Series(name, labels, "quantile", strconv.FormatFloat(q.GetQuantile(), 'g', -1, 64))] = q.GetValue()
				}
				out[Series(name+"_sum", labels)] = sm.GetSampleSum()
				out[Series(name+"_count", labels)] = float64(sm.GetSampleCount())
			case dto.MetricType_HISTOGRAM:
				hm := m.GetHistogram()
				if s.Buckets {
					for _, b := range hm.GetBucket() {
						out[Series(name+"_bucket", labels, "le", formatLe(b.GetUpperBound()))] = float64(b.GetCumulativeCount())
					}
				}
				out[Series(name+"_sum", labels)] = hm.GetSampleSum()
				out[Series(name+"_count", labels)] = float64(hm.GetSampleCount())
			default:
				out[Series(name, labels)] = m.GetUntyped().GetValue()
			}
		}
	}
	return out, nil
}

func (s *Scraper) scrape(ctx context.Context) (map[string]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(s.Timeout, DefaultTimeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL, nil)
	if err != nil {
		return nil, err
	}
	// The text format: the one expfmt.TextParser reads.
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	c := s.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	return fams, nil
}

// Series is the name a series has in the History (after the Scraper's
// label): the metric's name and its labels sorted by name, with extra
// label pairs (name, value, name, value...) added, as Prometheus writes
// them: http_errors_total{code="503",route="/orders"}.
func Series(name string, labels []*dto.LabelPair, extra ...string) string {
	if len(labels) == 0 && len(extra) == 0 {
		return name
	}
	type pair struct{ k, v string }
	ps := make([]pair, 0, len(labels)+len(extra)/2)
	for _, l := range labels {
		ps = append(ps, pair{l.GetName(), l.GetValue()})
	}
	for i := 0; i+1 < len(extra); i += 2 {
		ps = append(ps, pair{extra[i], extra[i+1]})
	}
	slices.SortFunc(ps, func(a, b pair) int { return strings.Compare(a.k, b.k) })
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(p.v))
	}
	b.WriteByte('}')
	return b.String()
}

func formatLe(v float64) string {
	if math.IsInf(v, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
