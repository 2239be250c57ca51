package properties

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/shakedown/shakedown/sim"
)

// Isolation holds what a bulkhead promises: while a fault holds on a
// target, the ops of every kind that does not use that target keep their
// latency bound and error rate. Uses maps each op kind to the targets it
// depends on; ops of kinds missing from Uses are not judged.
//
// An op that a fault on a target it does use touched (a fault that held
// at some moment between the op's intended start and its end, or healed
// less than Grace before it was due) is not judged either: it failed for
// its own dependency, which is what Recovery and the latency bounds
// judge, not because another one's fault spread.
type Isolation struct {
	// Uses maps an op kind to the names of the targets it uses. Required.
	Uses map[string][]string
	// Q and Max bound the latency quantile of the unaffected kinds
	// (Q defaults to 0.99; Max 0 skips the latency check).
	Q   float64
	Max time.Duration
	// MaxErrorRate bounds their error rate, in [0, 1].
	MaxErrorRate float64
	// Grace is how long after a fault on a target an op uses heals the
	// op is still its fault's, not judged (its breaker may still be
	// open; the Recovery bound is a fitting Grace). 0: none. Like
	// Recovery's Within, it runs in the machine's time: in a real run,
	// it is moved on by the time the dependencies waited for a CPU after
	// the heal (at most Grace more; see Recovery).
	Grace time.Duration
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

func (is Isolation) validate() error {
	uses := ""
	if len(is.Uses) == 0 {
		uses = "Uses is empty: map each op kind to the targets it uses"
	}
	return invalid(is.Name(), uses, kindsOK("Uses' kinds", is.kinds()), quantileOK("Q", is.q()), nonNegative("Max", is.Max),
		fraction("MaxErrorRate", is.MaxErrorRate), nonNegative("Grace", is.Grace))
}

func (is Isolation) kinds() []string { return slices.Sorted(maps.Keys(is.Uses)) }

func (is Isolation) targets() []string {
	var out []string
	for _, k := range is.kinds() {
		for _, t := range is.Uses[k] {
			if !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
	}
	return out
}

func (is Isolation) Check(h *sim.History) error {
	if err := is.validate(); err != nil {
		return err
	}
	vs, _, err := is.judge(h)
	if err != nil {
		return err
	}
	if len(vs) > 0 {
		return vs
	}
	return nil
}

// judge is Check's judgement of h, whose invariant is valid: the
// violations, and the kinds whose ops broke the bound (one entry for each
// fault they broke it over); err is a NoEvidence when nothing could be
// judged.
func (is Isolation) judge(h *sim.History) (vs Violations, broke []string, err error) {
	sps, why := spans(h, sim.During, nil)
	if why != "" {
		return nil, nil, &NoEvidence{Invariant: is.Name(), Reason: why}
	}
	kinds := is.kinds()
	judgedAny := false
	for _, sp := range sps {
		target := sp.event.Target
		for _, kind := range kinds {
			if slices.Contains(is.Uses[kind], target) {
				continue
			}
			var ops []sim.Op
			for _, op := range sp.ops {
				if op.Kind == kind && !is.ownFault(h, op) {
					ops = append(ops, op)
				}
			}
			if len(ops) == 0 {
				continue
			}
			judgedAny = true
			sub := span{label: fmt.Sprintf("%s ops %s", kind, sp.label), from: sp.from, to: sp.to, ops: ops}
			n := len(vs)
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
			if len(vs) > n {
				broke = append(broke, kind)
			}
		}
	}
	if !judgedAny {
		return nil, nil, &NoEvidence{Invariant: is.Name(), Reason: "no op of a kind independent of the faulted target ran while a fault held"}
	}
	return vs, broke, nil
}

// ownFault says whether a fault on a target op uses touched it: applied
// before the op ended, and healed less than Grace before it was due (a
// fault never reverted holds to the end of the run).
func (is Isolation) ownFault(h *sim.History, op sim.Op) bool {
	for _, f := range h.Faults {
		if !f.Applied() || !slices.Contains(is.Uses[op.Kind], f.Target) {
			continue
		}
		if f.Start < op.End && op.Intended < is.graceEnd(h, f) {
			return true
		}
	}
	return false
}

// graceEnd is when f's Grace ends in h: Grace after f healed (the run's
// end for a fault never reverted), moved on by the time the dependencies
// waited for a CPU in between, as Recovery's deadline is. A client
// recovering from its own dependency's fault on a machine that keeps that
// dependency from the CPUs recovers in the machine's time, not the
// wall's: its breaker, still open on the backlog, is its own fault's.
func (is Isolation) graceEnd(h *sim.History, f sim.FaultEvent) time.Duration {
	end := faultEnd(h, f)
	return end + is.Grace + dependenciesWaited(h, end, is.Grace)
}

// Amplification holds when the calls that reached a dependency stay at or
// under K times the ops the workload made (retries, hedges and reconnects
// do not multiply the load on a struggling dependency), and, with Rate, at
// or under Rate calls a second. The calls come from a cumulative counter
// sampled into the History under the name Counter (see [sim.Counter]).
//
// Judge it in the During window, where each fault is judged on its own: a
// retry storm while a dependency is down is not diluted by the healthy
// time around it.
//
//	properties.Amplification{Counter: "db.calls", K: 3, Rate: 10, Window: sim.During, Target: "db"}
//
// reads "at most 3 calls per op, and 10 calls a second, reach db while it
// is faulted". In each window the calls are those counted between the last
// sample at or before its start and the last at or before its end (the
// first after it, for a window shorter than the sampling interval), and the
// ops those of Kinds whose interval overlaps that stretch: every call
// counted was made by one of them, so a client that makes at most K calls
// per op never breaks it.
//
// Count the calls where every attempt passes, not where the service asks
// its client library: a library's own retries happen below its hooks. A
// go-redis ProcessHook, for one, runs once per command, around the
// retries go-redis makes itself (Options.MaxRetries, 3 by default), so a
// counter in it never sees that storm. In virtual time the fakes count
// what reaches them (FakeKV.Requests, FakeHTTP.Requests); against a real
// dependency, count at the server (Redis's INFO commandstats, the
// dependency's own Prometheus counter through sim/promscrape) or in the
// connection the client's dialer returns.
type Amplification struct {
	// Counter is the sample name of the dependency's call counter.
	Counter string
	// K is the allowed factor (such as 3 for one call plus two retries);
	// 0 bounds no factor.
	K float64
	// Rate bounds the calls a second in each window judged; 0 bounds no
	// rate. K or Rate is required.
	Rate float64
	// Window is the part of the run judged (default sim.Overall).
	Window sim.Phase
	// Target limits the During windows judged to the faults on this
	// target (default all); it needs Window sim.During.
	Target string
	// Kinds limits the ops counted to these kinds (default all).
	Kinds []string
}

func (a Amplification) Name() string {
	var bounds []string
	if a.K > 0 || a.Rate == 0 {
		bounds = append(bounds, trimFloat(a.K)+" x ops"+kindsSuffix(a.Kinds))
	}
	if a.Rate > 0 {
		bounds = append(bounds, trimFloat(a.Rate)+"/s")
	}
	s := fmt.Sprintf("calls reaching %s <= %s %s", a.Counter, strings.Join(bounds, " and "), phaseText(a.Window))
	if a.Target != "" {
		s = strings.TrimSuffix(s, " fault") + " fault of " + a.Target
	}
	return s
}

func (a Amplification) validate() error {
	bound, target := "", ""
	if a.K == 0 && a.Rate == 0 {
		bound = "K and Rate are both 0: bound the calls per op (K), the calls a second (Rate), or both"
	}
	if a.Target != "" && a.Window != sim.During {
		target = fmt.Sprintf("Target %q needs Window: sim.During", a.Target)
	}
	return invalid(a.Name(), required("Counter", a.Counter, "name the samples of the dependency's call counter"),
		nonNegative("K", a.K), nonNegative("Rate", a.Rate), bound, phaseOK(a.Window), target, kindsOK("Kinds", a.Kinds))
}

func (a Amplification) kinds() []string   { return a.Kinds }
func (a Amplification) samples() []string { return []string{a.Counter} }
func (a Amplification) targets() []string {
	if a.Target == "" {
		return nil
	}
	return []string{a.Target}
}

func (a Amplification) Check(h *sim.History) error {
	if err := a.validate(); err != nil {
		return err
	}
	ss := series(h, a.Counter)
	if len(ss) < 2 {
		return &NoEvidence{Invariant: a.Name(), Reason: fmt.Sprintf("%d samples named %q (need one at the start and one at the end; is its sampler in the run's Samplers?)", len(ss), a.Counter)}
	}
	sps, why := spans(h, a.Window, a.Kinds)
	if why != "" {
		return &NoEvidence{Invariant: a.Name(), Reason: why}
	}
	var vs Violations
	seen := false
	for _, sp := range sps {
		if a.Target != "" && sp.event.Target != a.Target {
			continue
		}
		st := bracket(ss, sp.from, windowEnd(a.Window, sp))
		if len(st) < 2 {
			continue
		}
		first, last := st[0], st[len(st)-1]
		calls := last.Value - first.Value
		stretch := sim.Window{Phase: sim.During, From: first.At, To: last.At}
		ops := 0
		for _, op := range h.Ops {
			if judgedOp(op) && kindMatch(a.Kinds, op.Kind) && stretch.Holds(op) {
				ops++
			}
		}
		where := fmt.Sprintf("%s (calls counted %v..%v)", sp.label, first.At, last.At)
		if a.K > 0 && ops > 0 {
			seen = true
			if most := a.K * float64(ops); calls > most {
				vs = append(vs, Violation{
					Invariant: a.Name(), Window: where, At: first.At,
					Got:    fmt.Sprintf("%g calls for %d ops (%sx)", calls, ops, trimFloat(calls/float64(ops))),
					Want:   fmt.Sprintf("<= %g calls (%sx)", most, trimFloat(a.K)),
					Excess: fmt.Sprintf("%g calls", calls-most),
				})
			}
		}
		if a.Rate > 0 {
			seen = true
			secs := (last.At - first.At).Seconds()
			if most := a.Rate * secs; calls > most {
				vs = append(vs, Violation{
					Invariant: a.Name(), Window: where, At: first.At,
					Got:    fmt.Sprintf("%g calls in %v (%s/s)", calls, last.At-first.At, trimFloat(calls/secs)),
					Want:   fmt.Sprintf("<= %s/s", trimFloat(a.Rate)),
					Excess: fmt.Sprintf("%s calls", trimFloat(calls-most)),
				})
			}
		}
	}
	if !seen {
		return &NoEvidence{Invariant: a.Name(), Reason: fmt.Sprintf("no window held two %q samples and ops%s to compare", a.Counter, kindsText(a.Kinds))}
	}
	if len(vs) > 0 {
		return vs
	}
	return nil
}

// windowEnd is the end of sp for the samples: the whole run and the
// recovery go on to the last sample, taken once the run is quiet.
func windowEnd(w sim.Phase, sp span) time.Duration {
	if w == sim.Overall || w == sim.After {
		return math.MaxInt64
	}
	return sp.to
}

// bracket returns the samples of ss (in time order) that measure the
// stretch [from, to]: from the last one at or before from (the first one,
// when none is) to the last one at or before to, or to the first one after
// to when that would leave a single sample.
func bracket(ss []sim.Sample, from, to time.Duration) []sim.Sample {
	if len(ss) == 0 || ss[0].At > to {
		return nil
	}
	lo := 0
	for i, s := range ss {
		if s.At <= from {
			lo = i
		}
	}
	hi := lo
	for i := lo; i < len(ss) && ss[i].At <= to; i++ {
		hi = i
	}
	if hi == lo && hi+1 < len(ss) {
		hi++
	}
	return ss[lo : hi+1]
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
