package properties

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/shakedown/shakedown/sim"
)

// Churn: the work of a starved dependency's reconnecting clients.
//
// The rules that set a failure aside as the machine's (a dependency
// starved of CPU: rules 7 and 9, reconnect.go and unscheduled.go) hold
// only when the starved dependency did no more work than the runs they
// compare it with: a client storming its dependency keeps it busy, and
// that is the schedule's doing. But a database the machine starves is
// busier for a reason of the machine's own. Its clients' calls time out;
// each is cancelled (pgx cancels over a connection of its own) and its
// connection replaced, and the database forks and authenticates a process
// for every connection it is handed: work that rises with the
// connections, not with the requests, and that the starving set off.
//
// So the work those rules allow beside the runs they compare with also
// covers the connections the dependency was handed where they judge, at
// the price a connection cost it in the runs they compare with (the
// fault-free baseline and the runs that held: a pool filled at the start,
// the reconnects after a reset), when those connections are no storm: at
// most churnPerFailure for each op that failed there (the call's cancel
// and the connection that replaces it), beyond the most any of those runs
// was handed in the whole run. A client that dials in a loop is handed
// more than that, and one that storms with requests over its pooled
// connections does work that no connection explains: both still stand.
// Where no run compared with was handed a connection, rule 9 prices one
// by the runs that broke before their first fault (priceBeforeFaults);
// where nothing prices one, or the Link did not count them, nothing more
// is allowed.

// churnPerFailure is the most connections an op that failed may account
// for: its call's cancel and the connection that replaces its own.
const churnPerFailure = 2

// churnWindow groups the 100 ms slots in which a connection's cost is
// measured: a process forked in one slot may authenticate in the next.
const churnWindow = 3

// connPrice is what a connection handed to a dependency cost it, in CPU
// seconds, as a set of runs showed, and the most connections one of
// those runs was handed.
type connPrice struct {
	cost float64 // CPU seconds a connection cost; 0 when unknown
	most float64 // the most connections one run was handed
}

// priceConns prices a connection handed to target from the runs refs,
// over windows of churnWindow slots that were handed at least one: the
// CPU the dependency used there beyond its usual (the median of its slots
// without a connection in that run) against the connections it was
// handed, the lesser of a least-squares fit through the origin and the
// median of the windows' ratios. A window in which the dependency did
// other work besides (a service's first queries beside its pool's first
// connections) would raise the price, and with it what a storm could
// pass for; the lesser of two estimates is the one it raised less.
func priceConns(refs []*Iteration, target string) connPrice {
	var deps []sim.DependencyCPU
	for _, r := range refs {
		if d, ok := dependencyOf(r.History, target); ok {
			deps = append(deps, d)
		}
	}
	return priceDeps(deps)
}

// priceDeps is priceConns over the records of one dependency in runs.
func priceDeps(deps []sim.DependencyCPU) connPrice {
	var p connPrice
	var xy, xx float64
	var ratios []float64
	for _, d := range deps {
		if len(d.Opened) != len(d.Used) {
			continue
		}
		var quiet []float64
		total := 0.0
		for i, o := range d.Opened {
			if o >= 0 {
				total += o
			}
			if o == 0 && d.Used[i] >= 0 {
				quiet = append(quiet, d.Used[i])
			}
		}
		p.most = max(p.most, total)
		if len(quiet) == 0 {
			continue
		}
		usual := median(quiet)
		for w := 0; w < len(d.Opened); w += churnWindow {
			var o, extra float64
			known := true
			for i := w; i < min(w+churnWindow, len(d.Opened)); i++ {
				if d.Opened[i] < 0 || d.Used[i] < 0 {
					known = false
					break
				}
				o += d.Opened[i]
				extra += (d.Used[i] - usual) * sim.DependencySlot.Seconds()
			}
			if known && o > 0 {
				xy, xx = xy+o*extra, xx+o*o
				ratios = append(ratios, extra/o)
			}
		}
	}
	if xx > 0 {
		p.cost = max(min(xy/xx, median(ratios)), 0)
	}
	return p
}

// priceBeforeFaults prices a connection handed to target as priceConns
// does, from what the runs did before their first fault (those whose
// first fault came unscheduledBefore or more into them): what a
// connection cost the dependency on this machine before any fault could
// make it work. The rules take it where the runs they compare with put
// no price on a connection (a service whose pool was filled before the
// run began, on a machine that starved nothing then): a starved
// database's clients time out and redial from before the fault.
func priceBeforeFaults(runs []*Iteration, target string) float64 {
	var cut []sim.DependencyCPU
	for _, r := range runs {
		first, ok := firstFault(r.History)
		d, known := dependencyOf(r.History, target)
		if !ok || !known || first < unscheduledBefore || len(d.Opened) != len(d.Used) {
			continue
		}
		n := min(int(first/sim.DependencySlot), len(d.Used))
		d.Used, d.Opened = d.Used[:n], d.Opened[:n]
		cut = append(cut, d)
	}
	return priceDeps(cut).cost
}

// resetPrice is what a connection cost target in r, a run whose only
// fault is a reset of it (the reconnect control, reconnect.go), from
// the reset to the end against the time before it: the CPUs it used
// more than before, over the connections a second it was handed more
// than before (its pool's first among those). On a machine that starves
// the dependency, a new connection's work (a process forked and
// authenticated, its first queries against cold caches, a cancelled
// call's process ending) comes seconds later than the connection, not
// in the windows priceConns measures by, and this price, over the whole
// stretch, is what reconnecting costs this machine now: the experiment
// the reconnect control runs. 0 when it cannot say (nothing before the
// reset to compare with, no more connections or no more work after it).
func resetPrice(r *Iteration, target string) float64 {
	reset, ok := firstFault(r.History)
	if !ok || reset < unscheduledBefore || reset >= r.History.Duration {
		return 0
	}
	_, before, ok := depCPU(r.History, target, 0, reset)
	if !ok {
		return 0
	}
	_, after, ok := depCPU(r.History, target, reset, math.MaxInt64)
	if !ok {
		return 0
	}
	nb, na := depConns(r.History, target, 0, reset), depConns(r.History, target, reset, math.MaxInt64)
	if nb < 0 || na < 0 {
		return 0
	}
	rate := na/(r.History.Duration-reset).Seconds() - nb/reset.Seconds()
	if rate <= 0 || after <= before {
		return 0
	}
	return (after - before) / rate
}

// allowance is the CPUs, averaged over spans of h, that the connections
// target was handed there explain at p's price, when they are no storm:
// no more than churnPerFailure for each op of the kinds uses (nil: every
// kind) that failed there, beyond the most one run of p's was handed. It
// returns 0 and says why when none is allowed ("" when the connections
// were not counted), and the figures when some is.
func (p connPrice) allowance(h *sim.History, target string, spans []interval, uses func(kind string) bool) (cpus float64, figures string) {
	n := spanConns(h, target, spans)
	if n < 0 {
		return 0, "" // its Link did not count them
	}
	if p.cost <= 0 {
		return 0, fmt.Sprintf("%.0f connections opened, but the runs compared with put no price on one", n)
	}
	failed := 0
	var length time.Duration
	for _, sp := range spans {
		to := min(sp.to, h.Duration)
		if to <= sp.from {
			continue
		}
		length += to - sp.from
		for _, op := range h.Ops {
			if op.End >= sp.from && op.End < to && (op.Outcome == sim.Failed || op.Outcome == sim.Unknown) && (uses == nil || uses(op.Kind)) {
				failed++
			}
		}
	}
	if length <= 0 {
		return 0, "no time to judge"
	}
	if bound := churnPerFailure*float64(failed) + p.most; n > bound {
		return 0, fmt.Sprintf("%.0f connections opened, more than %d for each of the %d ops that failed there beyond the most a run compared with opened (%.0f): a storm of dials", n, churnPerFailure, failed, p.most)
	}
	cpus = p.cost * n / length.Seconds()
	return cpus, fmt.Sprintf("%.0f connections opened (%d ops failed there) at %.1f ms of CPU each, as the runs compared with paid, explain %.2f CPUs", n, failed, 1000*p.cost, cpus)
}

// within says whether the u CPUs target used over spans of h stay
// within bound once the connections it was handed there take their share
// (allowance, asked only when u is over bound), with the allowance's
// figures.
func (p connPrice) within(h *sim.History, target string, spans []interval, uses func(kind string) bool, u, bound float64) (bool, string) {
	if u <= bound {
		return true, ""
	}
	a, figures := p.allowance(h, target, spans, uses)
	return u <= bound+a, figures
}

// churnNote is " (beyond those, the connections it was handed: run 1:
// ...; run 2: ...)" for the allowances that rules quote, "" for none.
func churnNote(churned []string) string {
	if len(churned) == 0 {
		return ""
	}
	return " (beyond those, the connections it was handed: " + strings.Join(churned, "; ") + ")"
}

// kindsUsing says which kinds of op use target, as the check's Isolation
// bounds map them (uses, usesOf); nil, every kind, when none does.
func kindsUsing(uses map[string][]string, target string) func(kind string) bool {
	if len(uses) == 0 {
		return nil
	}
	return func(kind string) bool { return slices.Contains(uses[kind], target) }
}

// dependencyOf is the CPU record of target in h.
func dependencyOf(h *sim.History, target string) (sim.DependencyCPU, bool) {
	if h == nil || h.Machine == nil {
		return sim.DependencyCPU{}, false
	}
	for _, d := range h.Machine.Dependencies {
		if d.Target == target {
			return d, true
		}
	}
	return sim.DependencyCPU{}, false
}

// median of v, which is not empty.
func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
