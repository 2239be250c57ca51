package obscheck

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/sim"
)

// DefaultLag is how long after a fault ends a metric may take to show
// it, when an invariant's Lag is zero: a scrape or two.
const DefaultLag = time.Second

// CounterRises holds when an error counter rises while a fault holds:
// for every fault during which an op failed, the counter's increase from
// the last reading at or before the fault's start to the first reading
// at or after Lag past its end is at least MinRise. A counter that
// restarts from zero (a service restarted) counts from zero, as
// Prometheus' increase() does. It is not judged when no op failed during
// a fault, or when the History has no reading of the counter.
type CounterRises struct {
	// Metric is the counter as the History names it: a sampler's series
	// such as `api.http_errors_total{code="503"}`, or a name without
	// labels, which sums every series of that name
	// (`api.http_errors_total`).
	Metric string
	// Target limits the faults judged to those aimed at this target
	// (default all).
	Target string
	// Kinds limits the failed ops that call for a rise to these kinds
	// (default all).
	Kinds []string
	// MinRise is the least increase (default 1).
	MinRise float64
	// Lag is how long after the fault's end the rise may show (default
	// DefaultLag).
	Lag time.Duration
}

func (c CounterRises) Name() string {
	on := ""
	if c.Target != "" {
		on = " on " + c.Target
	}
	return fmt.Sprintf("%s rises by >= %v while a fault%s fails ops%s", c.Metric, cmp.Or(c.MinRise, 1), on, kinds(c.Kinds))
}

func (c CounterRises) Check(h *sim.History) error {
	if c.Metric == "" || c.MinRise < 0 || c.Lag < 0 {
		return fmt.Errorf("obscheck: %s: Metric is required, MinRise and Lag may not be negative", c.Name())
	}
	series := readings(h, c.Metric)
	if len(series) == 0 {
		return &properties.NoEvidence{Invariant: c.Name(), Reason: "no reading of " + c.Metric}
	}
	lag, least := cmp.Or(c.Lag, DefaultLag), cmp.Or(c.MinRise, 1)
	var vs properties.Violations
	judged := 0
	for _, w := range h.Windows() {
		if w.Phase != sim.During || (c.Target != "" && h.Faults[w.Fault].Target != c.Target) {
			continue
		}
		failed := 0
		for _, op := range h.Ops {
			if op.Outcome != sim.OK && kindIn(op.Kind, c.Kinds) && w.Holds(op) {
				failed++
			}
		}
		if failed == 0 {
			continue
		}
		judged++
		rise := increase(series, w.From, w.To+lag)
		if rise >= least {
			continue
		}
		vs = append(vs, properties.Violation{
			Invariant: c.Name(), Window: w.Label, At: w.From,
			Got:  fmt.Sprintf("a rise of %v from %v to %v while %d ops failed", rise, w.From, w.To+lag, failed),
			Want: fmt.Sprintf(">= %v", least), Excess: fmt.Sprintf("%v", least-rise),
		})
	}
	if judged == 0 {
		return &properties.NoEvidence{Invariant: c.Name(), Reason: "no op failed while a fault held"}
	}
	if len(vs) > 0 {
		return vs
	}
	return nil
}

// reading is a metric's value at one sample tick, summed over its series.
type reading struct {
	At time.Duration
	V  float64
}

// readings returns the readings of metric in h in time order: the
// samples named metric, or, for a name without labels, the sum of every
// series of that name at each tick.
func readings(h *sim.History, metric string) []reading {
	sum := !strings.Contains(metric, "{")
	var out []reading
	for _, s := range h.Samples {
		if s.Name != metric && (!sum || !strings.HasPrefix(s.Name, metric+"{")) {
			continue
		}
		if n := len(out); n > 0 && out[n-1].At == s.At {
			out[n-1].V += s.Value
			continue
		}
		out = append(out, reading{s.At, s.Value})
	}
	slices.SortStableFunc(out, func(a, b reading) int { return cmp.Compare(a.At, b.At) })
	return out
}

// increase is how much a counter rose from the last reading at or before
// from to the first reading at or after to (the last reading when none is
// that late), a drop counting as a restart from zero.
func increase(rs []reading, from, to time.Duration) float64 {
	i := 0
	for j, r := range rs {
		if r.At <= from {
			i = j
		}
	}
	var rise float64
	for j := i + 1; j < len(rs); j++ {
		d := rs[j].V - rs[j-1].V
		if d < 0 {
			d = rs[j].V // reset
		}
		rise += d
		if rs[j].At >= to {
			break
		}
	}
	return rise
}

// BreakerGauge holds when a service's breaker-state gauge agrees with
// the breaker behaviour its ops show:
//
//   - an op turned away by an open breaker (its error contains Rejected)
//     ran while the gauge read open: at least one reading from the last
//     at or before the op's start to the first at or after its end is
//     Open;
//   - while the gauge read open at two readings in a row, no op of Kinds
//     that started and ended between them succeeded: an open breaker
//     lets no call through.
//
// A breaker that opens and closes again between two readings is not
// seen by the gauge: keep the breaker's open delay longer than the
// sample interval. It is not judged when the History has no reading of
// the gauge, or when no op was turned away and the gauge never read open
// twice in a row.
type BreakerGauge struct {
	// Gauge is the series as the History names it, such as
	// `api.breaker_state{dep="db"}`. Required.
	Gauge string
	// Open is the gauge's value for an open breaker (default 1; 2 for a
	// gauge of sony/gobreaker's State).
	Open float64
	// Rejected is a part of the error of an op that an open breaker
	// turned away, such as "circuit breaker open". Required.
	Rejected string
	// Kinds are the kinds of op that go through the breaker (default
	// all).
	Kinds []string
}

func (b BreakerGauge) Name() string {
	return fmt.Sprintf("%s agrees with the breaker the ops show%s", b.Gauge, kinds(b.Kinds))
}

func (b BreakerGauge) Check(h *sim.History) error {
	if b.Gauge == "" || b.Rejected == "" {
		return fmt.Errorf("obscheck: %s: Gauge and Rejected are required", b.Name())
	}
	rs := readings(h, b.Gauge)
	if len(rs) == 0 {
		return &properties.NoEvidence{Invariant: b.Name(), Reason: "no reading of " + b.Gauge}
	}
	open := cmp.Or(b.Open, 1)
	isOpen := func(r reading) bool { return r.V == open }
	var vs properties.Violations
	judged := 0
	for _, op := range h.Ops {
		if !kindIn(op.Kind, b.Kinds) {
			continue
		}
		if op.Outcome != sim.OK && strings.Contains(op.Err, b.Rejected) {
			judged++
			first, last := bracket(rs, op.Start, op.End)
			if !slices.ContainsFunc(rs[first:last+1], isOpen) {
				vs = append(vs, properties.Violation{
					Invariant: b.Name(), Window: opLabel(op), At: op.Start,
					Got:  fmt.Sprintf("turned away by an open breaker while the gauge read %s from %v to %v", values(rs[first:last+1]), rs[first].At, rs[last].At),
					Want: fmt.Sprintf("a reading of %v (open)", open),
				})
			}
		}
	}
	for i := 1; i < len(rs); i++ {
		if !isOpen(rs[i-1]) || !isOpen(rs[i]) {
			continue
		}
		judged++
		for _, op := range h.Ops {
			if op.Outcome == sim.OK && kindIn(op.Kind, b.Kinds) && op.Start > rs[i-1].At && op.End < rs[i].At {
				vs = append(vs, properties.Violation{
					Invariant: b.Name(), Window: opLabel(op), At: op.Start,
					Got:  fmt.Sprintf("succeeded while the gauge read open from %v to %v", rs[i-1].At, rs[i].At),
					Want: "no call through an open breaker",
				})
			}
		}
	}
	if judged == 0 {
		return &properties.NoEvidence{Invariant: b.Name(), Reason: "no op was turned away and the gauge never read open twice in a row"}
	}
	if len(vs) > 0 {
		slices.SortStableFunc(vs, func(x, y properties.Violation) int { return cmp.Compare(x.At, y.At) })
		return vs
	}
	return nil
}

// bracket returns the indexes of the last reading at or before from and
// the first at or after to (the first and last readings at the edges).
func bracket(rs []reading, from, to time.Duration) (first, last int) {
	last = len(rs) - 1
	for j, r := range rs {
		if r.At <= from {
			first = j
		}
		if r.At >= to {
			last = j
			break
		}
	}
	return first, max(first, last)
}

func values(rs []reading) string {
	var vs []string
	for _, r := range rs {
		vs = append(vs, fmt.Sprint(r.V))
	}
	return strings.Join(slices.Compact(vs), ", ")
}
