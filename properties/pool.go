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

func (p PoolReleased) Check(h *sim.History) error {
	if p.Pool == "" || p.Max < 0 {
		return fmt.Errorf("properties: %s: need a Pool name and Max >= 0", p.Name())
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

func (a AcquireWait) Check(h *sim.History) error {
	if a.Pool == "" || a.Max < 0 {
		return fmt.Errorf("properties: %s: need a Pool name and Max >= 0", a.Name())
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

// ReconnectStorm holds when, after the last fault was reverted, the pool
// opens at most Max connections in any stretch of Per (default 1s): the
// client reconnects at a measured pace instead of stampeding the
// dependency that just came back. It reads <Pool>.dials (see [sim.Dials],
// [PgxPool], [RedisPool]).
type ReconnectStorm struct {
	Pool string
	Max  float64
	Per  time.Duration
}

func (r ReconnectStorm) per() time.Duration {
	if r.Per == 0 {
		return time.Second
	}
	return r.Per
}

func (r ReconnectStorm) Name() string {
	return fmt.Sprintf("%s: at most %g dials per %v after the last heal", r.Pool, r.Max, r.per())
}

func (r ReconnectStorm) Check(h *sim.History) error {
	if r.Pool == "" || !(r.Max >= 0) || r.per() < 0 {
		return fmt.Errorf("properties: %s: need a Pool name, Max >= 0 and Per >= 0", r.Name())
	}
	heal, why := lastHeal(h)
	if why != "" {
		return &NoEvidence{Invariant: r.Name(), Reason: why}
	}
	all := series(h, r.Pool+".dials")
	// Start from the last sample at or before the heal, the baseline.
	start := -1
	for i, s := range all {
		if s.At <= heal {
			start = i
		}
	}
	if start < 0 || start == len(all)-1 {
		return &NoEvidence{Invariant: r.Name(), Reason: fmt.Sprintf("need %s.dials samples at or before the heal at %v and after it (have %d)", r.Pool, heal, len(all))}
	}
	ss := all[start:]
	var worst Violation
	var worstN float64
	lo := 0
	for hi := 1; hi < len(ss); hi++ {
		for ss[hi].At-ss[lo].At > r.per() && lo < hi-1 {
			lo++
		}
		n := ss[hi].Value - ss[lo].Value
		if n > r.Max && n > worstN {
			worstN = n
			worst = Violation{
				Invariant: r.Name(), Window: fmt.Sprintf("between %v and %v after the heal at %v", ss[lo].At, ss[hi].At, heal), At: ss[lo].At,
				Got: fmt.Sprintf("%g dials", n), Want: fmt.Sprintf("<= %g per %v", r.Max, r.per()), Excess: fmt.Sprintf("%g dials", n-r.Max),
			}
		}
	}
	if worstN > 0 {
		return Violations{worst}
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
