// Package promscrape samples a service's Prometheus metrics during a run:
// a [Scraper] is a sim.Sampler that scrapes a /metrics endpoint at every
// sample tick and parses it with Prometheus' own text-format parser, so
// the report draws each series beside the ops and the invariants of
// package properties/obscheck can judge them:
//
//	api := promscrape.New(t, "api", "http://"+svc.DirectAddr()+"/metrics")
//	api.Metrics = []string{"http_errors_total", "breaker_open"} // empty: every family
//	world := sim.World{
//		Targets:  []sim.Target{db},
//		Workload: load,
//		Samplers: []sim.Sampler{api},
//	}
//
// A series is recorded under the Scraper's label, its metric name and its
// labels sorted by name ([Series]):
//
//	api.http_errors_total{code="503",route="/orders"}
//
// Counters, gauges and untyped series give their value; summaries their
// quantiles, _sum and _count; histograms their _sum and _count (and
// buckets with [Scraper].Buckets).
//
// In simulation, give the Scraper a Client that dials through the
// sim.Network:
//
//	api := &promscrape.Scraper{Label: "api", URL: fake.URL() + "/metrics",
//		Client: &http.Client{Transport: &http.Transport{DialContext: n.Dial}}}
//
// This package imports github.com/prometheus/common/expfmt; the core
// packages (sim, properties) do not.
package promscrape
