package properties

import (
	"fmt"
	"time"

	"github.com/shakedown/shakedown/sim"
)

// Pool samplers record the same values under the sampler's name, so one
// set of invariants fits every client:
//
//	<name>.in_use        connections checked out now
//	<name>.idle          idle connections now
//	<name>.open          open connections now
//	<name>.wait_count    acquires that had to wait (cumulative)
//	<name>.wait_seconds  time those acquires waited (cumulative)
//	<name>.dials         connections opened (cumulative), where known
//
// A client reports the values it has; [PoolReleased], [AcquireWait] and

// PoolReleased holds when, once the run is quiet (at the last sample taken
// after the last op ended), at most Max connections of the pool are still
// checked out: no leaked or stuck connections.
type PoolReleased struct {
	// Pool is the pool sampler's name; the invariant reads <Pool>.in_use.
	Pool string
	// Max is the most connections allowed in use at the end (default 0).
	Max int
}

func (p PoolReleased) Name() string {
	return fmt.Sprintf("%s: at most %d connections in use once quiet", p.Pool, p.Max)
}

func (p PoolReleased) validate() error {
	return invalid(p.Name(), required("Pool", p.Pool, "name the pool sampler"), nonNegative("Max", p.Max))
}

func (p PoolReleased) samples() []string { return []string{p.Pool + ".in_use"} }

func (p PoolReleased) Check(h *sim.History) error {
	if err := p.validate(); err != nil {
		return err
	}
	var quiet time.Duration
	for _, op := range h.Ops {
		quiet = max(quiet, op.End)
	}
	ss := series(h, p.Pool+".in_use")
	if len(ss) == 0 || ss[len(ss)-1].At < quiet {
		return &NoEvidence{Invariant: p.Name(), Reason: fmt.Sprintf("no %s.in_use sample after the last op ended at %v", p.Pool, quiet)}
	}
	last := ss[len(ss)-1]
	if last.Value <= float64(p.Max) {
		return nil
	}
	return Violations{{
		Invariant: p.Name(), Window: "once the run was quiet", At: last.At,
		Got: fmt.Sprintf("%g in use", last.Value), Want: fmt.Sprintf("<= %d", p.Max), Excess: fmt.Sprintf("%g connections", last.Value-float64(p.Max)),
	}}
}

// AcquireWait holds when, between any two consecutive samples, the
// acquires that waited for a connection waited at most Max on average:
// the pool is not exhausted. It reads <Pool>.wait_count and
// <Pool>.wait_seconds.
type AcquireWait struct {
	Pool string
	Max  time.Duration
}

func (a AcquireWait) Name() string {
	return fmt.Sprintf("%s: acquire waits <= %v", a.Pool, a.Max)
}

func (a AcquireWait) validate() error {
	return invalid(a.Name(), required("Pool", a.Pool, "name the pool sampler"), nonNegative("Max", a.Max))
}

func (a AcquireWait) samples() []string { return []string{a.Pool + ".wait_count", a.Pool + ".wait_seconds"} }

func (a AcquireWait) Check(h *sim.History) error {
	if err := a.validate(); err != nil {
		return err
	}
	counts, secs := series(h, a.Pool+".wait_count"), series(h, a.Pool+".wait_seconds")
	if len(counts) < 2 || len(secs) != len(counts) {
		return &NoEvidence{Invariant: a.Name(), Reason: fmt.Sprintf("%d %s.wait_count and %d %s.wait_seconds samples (need two or more of each, taken together)",
			len(counts), a.Pool, len(secs), a.Pool)}
	}
	var vs Violations
	for i := 1; i < len(counts); i++ {
		n := counts[i].Value - counts[i-1].Value
		w := secs[i].Value - secs[i-1].Value
		if n <= 0 {
			continue
		}
		mean := time.Duration(w / n * float64(time.Second))
		if mean > a.Max {
			vs = append(vs, Violation{
				Invariant: a.Name(), Window: fmt.Sprintf("between samples at %v and %v", counts[i-1].At, counts[i].At), At: counts[i-1].At,
				Got: fmt.Sprintf("%g acquires waited %v on average", n, mean), Want: fmt.Sprintf("<= %v", a.Max), Excess: (mean - a.Max).String(),
			})
		}
	}
	if len(vs) > 0 {
		return vs
	}
	return nil
}

// ReconnectStorm holds when the pool opens at most Max connections in any
// stretch of Per within a window: the client reuses and bounds its
// connections, and reconnects at a measured pace instead of stampeding a
// dependency that struggles or just came back. It reads <Pool>.dials (see
// [sim.Dials], pgxcheck.Pool, redischeck.Pool).
//
//	properties.ReconnectStorm{Pool: "db", Max: 8, Window: sim.During}                  // at most 8 connections opened during each fault
//	properties.ReconnectStorm{Pool: "db", Max: 8, Per: time.Second, Window: sim.After} // no stampede after the heal
//
// A pool of 8 that waits for its connections under a slow dependency holds
// the first; a client that opens a connection for every call it gave up on
// breaks it. A window's dials are counted from the last sample at or before
// its start.
type ReconnectStorm struct {
	// Pool is the pool sampler's name.
	Pool string
	// Max is the most dials allowed in any stretch of Per.
	Max float64
	// Per is the stretch (default: the whole window).
	Per time.Duration
	// Window is the part of the run judged (default sim.Overall); in the
	// During window each fault is judged on its own.
	Window sim.Phase
}

func (r ReconnectStorm) Name() string {
	per := "in each window"
	if r.Per > 0 {
		per = fmt.Sprintf("per %v", r.Per)
	}
	return fmt.Sprintf("%s: at most %g dials %s %s", r.Pool, r.Max, per, r.Window)
}

func (r ReconnectStorm) validate() error {
	return invalid(r.Name(), required("Pool", r.Pool, "name the pool sampler"), nonNegative("Max", r.Max), nonNegative("Per", r.Per), phaseOK(r.Window))
}

func (r ReconnectStorm) samples() []string { return []string{r.Pool + ".dials"} }

func (r ReconnectStorm) Check(h *sim.History) error {
	if err := r.validate(); err != nil {
		return err
	}
	sps, why := spans(h, r.Window, nil)
	if why != "" {
		return &NoEvidence{Invariant: r.Name(), Reason: why}
	}
	all := series(h, r.Pool+".dials")
	var vs Violations
	seen := false
	for _, sp := range sps {
		ss := bracket(all, sp.from, windowEnd(r.Window, sp))
		if len(ss) < 2 {
			continue
		}
		seen = true
		per := r.Per
		if per == 0 {
			per = ss[len(ss)-1].At - ss[0].At
		}
		var worst Violation
		var worstN float64
		lo := 0
		for hi := 1; hi < len(ss); hi++ {
			for ss[hi].At-ss[lo].At > per && lo < hi-1 {
				lo++
			}
			if n := ss[hi].Value - ss[lo].Value; n > r.Max && n > worstN {
				worstN = n
				worst = Violation{
					Invariant: r.Name(), Window: fmt.Sprintf("%s: between %v and %v", sp.label, ss[lo].At, ss[hi].At), At: ss[lo].At,
					Got: fmt.Sprintf("%g dials", n), Want: fmt.Sprintf("<= %g", r.Max), Excess: fmt.Sprintf("%g dials", n-r.Max),
				}
			}
		}
		if worstN > 0 {
			vs = append(vs, worst)
		}
	}
	if !seen {
		return &NoEvidence{Invariant: r.Name(), Reason: fmt.Sprintf("no window held two %s.dials samples (have %d in the run)", r.Pool, len(all))}
	}
	if len(vs) > 0 {
		return vs
	}
	return nil
}

// NoGoroutineLeak holds when the goroutine count at the end of the run is
// at most Slack above its count at the start. It reads the samples of
// sim.Goroutines() ("goroutines"). Give the run a cooldown so that
// connections closing after the last op have finished.
type NoGoroutineLeak struct {
	Slack int
}

func (g NoGoroutineLeak) Name() string {
	return fmt.Sprintf("goroutines back to the start count + %d", g.Slack)
}

func (g NoGoroutineLeak) Check(h *sim.History) error {
	if g.Slack < 0 {
		return fmt.Errorf("properties: %s: Slack = %d must not be negative", g.Name(), g.Slack)
	}
	ss := series(h, "goroutines")
	if len(ss) < 2 {
		return &NoEvidence{Invariant: g.Name(), Reason: fmt.Sprintf("%d \"goroutines\" samples (add sim.Goroutines() to the run's samplers)", len(ss))}
	}
	first, last := ss[0], ss[len(ss)-1]
	if last.Value <= first.Value+float64(g.Slack) {
		return nil
	}
	return Violations{{
		Invariant: g.Name(), Window: "at the end of the run", At: last.At,
		Got:  fmt.Sprintf("%g goroutines (at %v: %g)", last.Value, first.At, first.Value),
		Want: fmt.Sprintf("<= %g", first.Value+float64(g.Slack)), Excess: fmt.Sprintf("%g goroutines", last.Value-first.Value-float64(g.Slack)),
	}}
}
