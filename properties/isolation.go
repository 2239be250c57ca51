package properties

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/shakedown/shakedown/sim"
)

// Isolation holds what a bulkhead promises: while a fault holds on a
// target, the ops of every kind that does not use that target keep their
// latency bound and error rate. Uses maps each op kind to the targets it
// depends on; ops of kinds missing from Uses are not judged.
type Isolation struct {
	// Uses maps an op kind to the names of the targets it uses. Required.
	Uses map[string][]string
	// Q and Max bound the latency quantile of the unaffected kinds
	// (Q defaults to 0.99; Max 0 skips the latency check).
	Q   float64
	Max time.Duration
	// MaxErrorRate bounds their error rate, in [0, 1].
	MaxErrorRate float64
}

func (is Isolation) q() float64 {
	if is.Q == 0 {
		return 0.99
	}
	return is.Q
}

func (is Isolation) Name() string {
	s := "isolation: kinds that do not use a faulted target keep"
	if is.Max > 0 {
		s += fmt.Sprintf(" %s latency <= %v and", quantileName(is.q()), is.Max)
	}
	return s + fmt.Sprintf(" error rate <= %s%%", trimFloat(is.MaxErrorRate*100))
}

func (is Isolation) Check(h *sim.History) error {
	switch {
	case len(is.Uses) == 0:
		return fmt.Errorf("properties: %s: Uses is empty: map each op kind to the targets it uses", is.Name())
	case !(is.q() > 0 && is.q() <= 1):
		return fmt.Errorf("properties: %s: Q = %v must be in (0, 1]", is.Name(), is.Q)
	case is.Max < 0:
		return fmt.Errorf("properties: %s: Max = %v must not be negative", is.Name(), is.Max)
	case !(is.MaxErrorRate >= 0 && is.MaxErrorRate <= 1):
		return fmt.Errorf("properties: %s: MaxErrorRate = %v must be in [0, 1]", is.Name(), is.MaxErrorRate)
	}
	sps, why := spans(h, sim.During, nil)
	if why != "" {
		return &NoEvidence{Invariant: is.Name(), Reason: why}
	}
	kinds := slices.Sorted(maps.Keys(is.Uses))
	var vs Violations
	judgedAny := false
	for _, sp := range sps {
		target := sp.event.Target
		for _, kind := range kinds {
			if slices.Contains(is.Uses[kind], target) {
				continue
			}
			var ops []sim.Op
			for _, op := range sp.ops {
				if op.Kind == kind {
					ops = append(ops, op)
				}
			}
			if len(ops) == 0 {
				continue
			}
			judgedAny = true
			sub := span{label: fmt.Sprintf("%s ops %s", kind, sp.label), from: sp.from, to: sp.to, ops: ops}
			if is.Max > 0 {
				if q, op := quantile(ops, is.q()); q > is.Max {
					vs = append(vs, Violation{
						Invariant: is.Name(), Window: sub.label, At: sp.from,
						Got:    fmt.Sprintf("%s %v over %d ops (op %d at %v)", quantileName(is.q()), q, len(ops), op.ID, op.Intended),
						Want:   fmt.Sprintf("<= %v although %s does not use %s", is.Max, kind, target),
						Excess: (q - is.Max).String(),
					})
				}
			}
			vs = append(vs, rateViolation(is.Name(), sub, is.MaxErrorRate)...)
		}
	}
	if !judgedAny {
		return &NoEvidence{Invariant: is.Name(), Reason: "no op of a kind independent of the faulted target ran while a fault held"}
	}
	if len(vs) > 0 {
		return vs
	}
	return nil
}

// Amplification holds when the calls that reached a dependency stay at or
// under K times the ops the workload made: retries, hedges and reconnects
// do not multiply the load on a struggling dependency. The calls come from
// a cumulative counter sampled into the History under the name Counter
// (see [sim.Counter]); the invariant takes the difference between its last and
// first samples.
type Amplification struct {
	// Counter is the sample name of the dependency's call counter.
	Counter string
	// K is the allowed factor (such as 3 for one call plus two retries).
	K float64
	// Kinds limits the ops counted to these kinds (default all).
	Kinds []string
}

func (a Amplification) Name() string {
	return fmt.Sprintf("calls reaching %s <= %s x ops%s", a.Counter, trimFloat(a.K), kindsSuffix(a.Kinds))
}

func (a Amplification) Check(h *sim.History) error {
	if a.Counter == "" || !(a.K > 0) {
		return fmt.Errorf("properties: %s: need a Counter sample name and K > 0", a.Name())
	}
	ss := series(h, a.Counter)
	if len(ss) < 2 {
		return &NoEvidence{Invariant: a.Name(), Reason: fmt.Sprintf("%d samples named %q (need one at the start and one at the end; is its sampler in the run's Samplers?)", len(ss), a.Counter)}
	}
	ops := 0
	for _, op := range h.Ops {
		if kindMatch(a.Kinds, op.Kind) {
			ops++
		}
	}
	if ops == 0 {
		return &NoEvidence{Invariant: a.Name(), Reason: "no ops" + kindsText(a.Kinds)}
	}
	calls := ss[len(ss)-1].Value - ss[0].Value
	if calls <= a.K*float64(ops) {
		return nil
	}
	return Violations{{
		Invariant: a.Name(), Window: fmt.Sprintf("over the run (%v..%v)", ss[0].At, ss[len(ss)-1].At), At: ss[0].At,
		Got:    fmt.Sprintf("%g calls for %d ops (%sx)", calls, ops, trimFloat(calls/float64(ops))),
		Want:   fmt.Sprintf("<= %g calls (%sx)", a.K*float64(ops), trimFloat(a.K)),
		Excess: fmt.Sprintf("%g calls", calls-a.K*float64(ops)),
	}}
}

// series returns the samples named name, in time order.
func series(h *sim.History, name string) []sim.Sample {
	var out []sim.Sample
	for _, s := range h.Samples {
		if s.Name == name {
			out = append(out, s)
		}
	}
	slices.SortStableFunc(out, func(a, b sim.Sample) int { return cmpDur(a.At, b.At) })
	return out
}
