package properties

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/shakedown/shakedown/sim"
)

// A fault the schedule did not contain: on a shared runner, the machine
// itself may slow a dependency that the schedule is not faulting, by
// keeping its processes from the CPUs. A resilient service can then
// break a timing bound under a benign fault of another dependency: its
// cache answers late (by the schedule), its database answers late (by
// the machine), and between the two an order waits long enough for a
// bulkhead to fill or a breaker to open, which an Isolation bound
// counts while the faults hold and a Recovery bound after they heal.
// Fault-free controls hold beside it (no cache fault), and the schedule's
// reruns break again whenever the machine starves the database once
// more: the noise test believes such a failure, and shrinking chases it
// into schedules that fault the database themselves. But no run of the
// schedule alone broke: every run that broke had a second fault, the
// machine's.
//
// So a failure, reproduced or flaky, is the machine's, and set aside as
// Unjudged (Result.Slower), when all of these hold:
//
//   - every invariant it or a rerun of it broke is a Recovery or an
//     Isolation;
//   - for every invariant it broke, in every run of it that broke that
//     invariant (the first and the reruns that broke it again), a
//     dependency that every op breaking it there uses (by the Uses of
//     the check's Isolation bounds: without them, no Recovery is set
//     aside so) had a process waiting for a CPU at least unscheduledWait
//     of the time where the invariant judges it (unscheduledScope): for
//     a Recovery, after the last heal, one that no fault touched in the
//     Within before it; for an Isolation, over the faults of other
//     targets, less its own faults and their Grace;
//   - in none of those runs did that dependency use more CPU there than
//     starvedMoreWork allows over the most it used in the fault-free
//     baseline and in the runs of the schedule that held, or over what
//     it used in the same run before the first fault (when that came
//     unscheduledBefore or more into the run): a client that storms a
//     dependency (a cache fault that sends every read to the database)
//     makes it busy from the fault on, and that is the schedule's doing;
//     a starved database whose clients time out, cancel their queries
//     and reconnect (it forks and authenticates each new connection)
//     works more from before any fault, and that is the machine's, as is
//     the work that the connections it was handed explain, when they are
//     no storm (churn.go), and the CPU a starved dependency burns on no
//     more requests than those runs asked of it (where its Link timed its
//     answers: a storm sends more requests, whatever they cost;
//     answers.go);
//   - where its Link timed its answers, that dependency kept its
//     requests waiting there, in every run that broke the invariant: on
//     average starvedRatio times as long, and lateGap more, as in those
//     runs and before the run's first fault, or held them all unanswered
//     there. A starved dependency that
//     answered as it always did, or that nobody asked anything, slowed
//     nothing: the ops failed of something else (no fallback for the
//     faulted target: they fail before they reach it);
//   - the machine's CPU pressure in every run that broke was at least
//     starvedMachine.
//
// One run that broke with every such dependency fed is enough for the
// failure to stand. The same rule judges the candidates of shrinking: a
// smaller schedule that breaks only beside a starved dependency does not
// count as failing, so shrinking does not chase the machine's fault.
//
// What the rule cannot tell: a service that is fragile only when two
// dependencies are slow at once, one by the schedule and one by the
// machine, is set aside on a contended machine (Unjudged, listed in
// summary.json, not passed); the generators' schedules with latency on
// both dependencies test that fragility on their own. And on a machine
// whose CPUs are saturated, a dependency gets about the same CPU however
// much it is asked, so a storm may look starved rather than busy;
// Amplification and ReconnectStorm judge storms themselves, and a
// failure that broke them besides stands (and where the dependencies'
// Links time their answers, a storm sends more requests, which the rule
// counts whatever the CPU). Where they do not, nor can it tell a kind
// that fails whenever another dependency is faulted (no fallback, a
// bulkhead shared between kinds) from one slowed by its own starved
// dependency, when the machine starves that one in every run that broke:
// an idle Redis's cgroup shows waits of 20% and more on a loaded runner.
// Such a failure is Unjudged there, and judged in full on a machine that
// feeds its dependencies. Where they do, the dependency must have kept
// the ops waiting: one that answered as it always did explains nothing.
const unscheduledWait = 0.15

// unscheduled returns why it, a failure whose reruns have run, broke only
// beside a dependency the machine starved, by the rule above, or "" when
// it stands. base is the fault-free baseline (nil when none ran: then
// only the schedule's held runs bound the dependency's work). When the
// rule was put to the dependencies (every run that broke was on a
// contended machine, and broke only bounds it covers) and none
// explained the failure, not says why of each.
func unscheduled(it, base *Iteration, invs []Invariant) (why, not string) {
	names := it.Findings.brokenNames()
	if len(names) == 0 || it.History == nil || it.History.Machine == nil {
		return "", ""
	}
	bad, good, ok := contendedRuns(it)
	if !ok {
		return "", ""
	}
	for _, r := range bad {
		for _, name := range r.Findings.brokenNames() {
			if !slices.Contains(names, name) {
				names = append(names, name) // a rerun that broke more: that too must be explained
			}
		}
	}
	if base != nil && base.History != nil && base.History.Machine != nil {
		good = append(good, base)
	}
	uses := usesOf(invs)
	scopes := make([]unscheduledSpans, len(names))
	for i, name := range names {
		inv, ok := invariantNamed(invs, name)
		if !ok {
			return "", ""
		}
		if scopes[i], ok = unscheduledScope(inv, uses); !ok {
			return "", ""
		}
		scopes[i].until = recoveriesBrokeBy(invs, []string{name})
	}
	var whys []string
	for i, name := range names {
		var broken []*Iteration // the runs that broke it
		var kinds [][]string    // the kinds of the ops that broke it there
		for _, r := range bad {
			if _, ok := r.Findings.broken(name); ok {
				broken, kinds = append(broken, r), append(kinds, scopes[i].broke(r.History))
			}
		}
		why, nots := "", []string(nil)
		for _, d := range it.History.Machine.Dependencies {
			w, n := unscheduledOne(d.Target, scopes[i], broken, kinds, good)
			if why = w; why != "" {
				break
			}
			nots = append(nots, n)
		}
		if why == "" {
			return "", name + ": " + strings.Join(nots, "; ")
		}
		whys = append(whys, name+": "+why)
	}
	return fmt.Sprintf("a dependency the schedule was not faulting was starved of CPU by the machine in every run that broke: %s; the schedule (%s) broke %s in %d of %d runs, never without that second fault",
		strings.Join(whys, "; "), oneLineOr(it.Schedule), strings.Join(names, "; "), len(bad), 1+len(it.again)), ""
}

// interval is [from, to) of a run.
type interval struct{ from, to time.Duration }

// unscheduledSpans is where a dependency the machine starved explains
// breaking an invariant: what names the part of a run ("after the last
// heal"), and spans gives, for a run, the stretches of it in which a
// dependency counts (none: it does not).
type unscheduledSpans struct {
	what  string
	spans func(h *sim.History, target string) []interval
	// broke is the kinds of the ops that broke the bound in h, and uses
	// the targets each kind uses: a dependency explains h only when every
	// one of those kinds uses it.
	broke func(h *sim.History) []string
	uses  map[string][]string
	// until is where, in a run that broke the bound, the ops that broke
	// it ended: a dependency's lateness is judged up to there.
	until func(h *sim.History) time.Duration
}

// explains says whether target can explain a run whose ops of kinds broke
// the bound: every one of them uses it.
func (sc unscheduledSpans) explains(kinds []string, target string) bool {
	for _, k := range kinds {
		if !slices.Contains(sc.uses[k], target) {
			return false
		}
	}
	return len(kinds) > 0
}

// unscheduledScope is the scope of inv, false for an invariant that a
// starved dependency does not explain. A dependency explains a run only
// when every op that broke the bound uses it, as the check's Isolation
// bounds map kinds to targets (uses, the union of their Uses): a Redis
// kept from the CPUs says nothing of orders that fail on Postgres.
//
//   - a Recovery is judged after the last heal, when no fault holds: a
//     dependency whose faults, if any, had healed Within or more before
//     it, from the last heal to the end (one that waits for a CPU there
//     was working: a client that does not reconnect to it leaves it idle,
//     and idle processes wait for nothing); without uses, none explains;
//   - an Isolation judges the ops of kinds that do not use a faulted
//     target, while a fault holds, and leaves out those whose own
//     targets' faults touched them: a dependency those kinds use, over
//     each fault of another target, less its own faults and their Grace.
func unscheduledScope(inv Invariant, uses map[string][]string) (unscheduledSpans, bool) {
	switch v := inv.(type) {
	case Recovery:
		return recoverySpans(v, uses), true
	case *Recovery:
		if v != nil {
			return recoverySpans(*v, uses), true
		}
	case Isolation:
		return isolationSpans(v), true
	case *Isolation:
		if v != nil {
			return isolationSpans(*v), true
		}
	}
	return unscheduledSpans{}, false
}

// usesOf is the union of the Uses of the Isolation bounds in invs: which
// targets each op kind uses, as far as the check says.
func usesOf(invs []Invariant) map[string][]string {
	out := map[string][]string{}
	for _, inv := range invs {
		var is *Isolation
		switch v := inv.(type) {
		case Isolation:
			is = &v
		case *Isolation:
			is = v
		}
		if is == nil {
			continue
		}
		for kind, targets := range is.Uses {
			for _, t := range targets {
				if !slices.Contains(out[kind], t) {
					out[kind] = append(out[kind], t)
				}
			}
		}
	}
	return out
}

// recoverySpans: after the last heal, for a dependency that no fault
// touched in the Within before it (its own faults had healed with the
// client's whole recovery time to spare: what the bound judges is the
// client's recovery from the faults that healed last, which the reconnect
// control and the starved rule judge). It explains a run whose every op
// that failed after rec's deadline is of a kind that uses it.
func recoverySpans(rec Recovery, uses map[string][]string) unscheduledSpans {
	return unscheduledSpans{what: "after the last heal", spans: func(h *sim.History, target string) []interval {
		heal, why := lastHeal(h)
		if why != "" {
			return nil
		}
		for _, f := range h.Faults {
			if f.Applied() && f.Target == target && faultEnd(h, f)+rec.Within > heal {
				return nil
			}
		}
		return []interval{{heal, math.MaxInt64}}
	}, uses: uses, broke: func(h *sim.History) []string {
		heal, why := lastHeal(h)
		if why != "" {
			return nil
		}
		var kinds []string
		deadline, _ := rec.deadline(h, heal)
		for _, op := range rec.late(h, deadline) {
			if op.Outcome != sim.OK && !slices.Contains(kinds, op.Kind) {
				kinds = append(kinds, op.Kind)
			}
		}
		return kinds
	}}
}

// isolationSpans: for a dependency that kinds judged while another
// target's fault holds use, those faults, less its own faults and their
// Grace. It explains a run whose every kind found slow or failing uses it.
func isolationSpans(is Isolation) unscheduledSpans {
	return unscheduledSpans{what: "while faults of other targets held", spans: func(h *sim.History, target string) []interval {
		var out []interval
		for _, f := range h.Faults {
			if !f.Applied() || f.Target == target {
				continue
			}
			judged := false // some kind that uses target, and not f's
			for _, uses := range is.Uses {
				if slices.Contains(uses, target) && !slices.Contains(uses, f.Target) {
					judged = true
				}
			}
			if !judged {
				continue
			}
			part := []interval{{f.Start, faultEnd(h, f)}}
			for _, own := range h.Faults {
				if own.Applied() && own.Target == target {
					part = subtract(part, interval{own.Start, is.graceEnd(h, own)})
				}
			}
			out = append(out, part...)
		}
		return out
	}, uses: is.Uses, broke: func(h *sim.History) []string {
		if is.validate() != nil {
			return nil
		}
		_, broke, err := is.judge(h)
		if err != nil {
			return nil
		}
		return broke
	}}
}

// faultEnd is when f was reverted, or the run's end.
func faultEnd(h *sim.History, f sim.FaultEvent) time.Duration {
	if f.End == 0 {
		return h.Duration
	}
	return f.End
}

// subtract is the parts of ivs outside cut.
func subtract(ivs []interval, cut interval) []interval {
	var out []interval
	for _, iv := range ivs {
		if iv.from < cut.from {
			out = append(out, interval{iv.from, min(iv.to, cut.from)})
		}
		if iv.to > cut.to {
			out = append(out, interval{max(iv.from, cut.to), iv.to})
		}
	}
	return out
}

// spanCPU is how long the dependency named target waited for a CPU, and
// how much it used, over spans of h, weighted by their lengths; false
// when nothing of it is known there.
func spanCPU(h *sim.History, target string, spans []interval) (waited, used float64, ok bool) {
	var w, u, total float64
	for _, sp := range spans {
		to := min(sp.to, h.Duration)
		if to <= sp.from {
			continue
		}
		sw, su, known := depCPU(h, target, sp.from, to)
		if !known {
			continue
		}
		d := float64(to - sp.from)
		w, u, total = w+sw*d, u+su*d, total+d
	}
	if total == 0 {
		return 0, 0, false
	}
	return w / total, u / total, true
}

// spanConns is the number of connections handed to target in h over
// spans, or -1 where its Link did not count them.
func spanConns(h *sim.History, target string, spans []interval) float64 {
	n, known := 0.0, false
	for _, sp := range spans {
		if c := depConns(h, target, sp.from, min(sp.to, h.Duration)); c >= 0 {
			n, known = n+c, true
		}
	}
	if !known {
		return -1
	}
	return n
}

// unscheduledOne applies the rule to the dependency named target, and
// returns its figures when every run that broke (bad, whose ops of
// kinds[i] broke the bound in bad[i]) used it and starved it while it did
// no more work than the fault-free baseline and the held runs did, or
// than it did itself before the run's first fault (a client whose calls
// time out against a starved database cancels them and reconnects, and
// the database forks and authenticates each new connection: work that
// the machine's starving began, before any fault could); not says why
// not, when not.
func unscheduledOne(target string, sc unscheduledSpans, bad []*Iteration, kinds [][]string, good []*Iteration) (why, not string) {
	most := -1.0
	var goodAnswers []answerFigures
	for _, r := range good {
		spans := sc.spans(r.History, target)
		if len(spans) == 0 {
			spans = wholeRun // the baseline has no faults: its whole run
		}
		if _, u, ok := spanCPU(r.History, target, spans); ok {
			most = max(most, u)
		}
		goodAnswers = append(goodAnswers, answersOver(r.History, target, spans))
	}
	price, usesTarget := priceConns(good, target), kindsUsing(sc.uses, target)
	if price.cost <= 0 {
		price.cost = priceBeforeFaults(bad, target)
	}
	var waits, uses, befores []float64
	var churned, lates, asked []string
	for i, r := range bad {
		if !sc.explains(kinds[i], target) {
			return "", fmt.Sprintf("%s: not every op that broke it uses it (run %d of those that broke)", target, i+1)
		}
		spans := sc.spans(r.History, target)
		if len(spans) == 0 {
			return "", fmt.Sprintf("%s: does not count %s (its own fault had not healed a recovery time before, or no op judged there uses it; run %d of those that broke)", target, sc.what, i+1)
		}
		w, u, ok := spanCPU(r.History, target, spans)
		if !ok {
			return "", fmt.Sprintf("%s: nothing is known of it %s (run %d of those that broke)", target, sc.what, i+1)
		}
		if w < unscheduledWait {
			return "", fmt.Sprintf("%s: waited for a CPU %.0f%% of the time %s (run %d of those that broke)", target, 100*w, sc.what, i+1)
		}
		// Starved, but did it keep the ops waiting (answers.go)?
		ref, known := compared(append(slices.Clip(goodAnswers), answersBefore(r.History, target))...)
		got := answersOver(r.History, target, spans)
		broke := upTo(spans, r.History, sc.until)
		slow := answersOver(r.History, target, broke)
		if why := late(r.History, target, broke, slow, ref, known, sc.what, brokeRun(i), "before the first fault and in the runs compared with"); why != "" {
			return "", why
		}
		if slow.n > 0 && known {
			lates = append(lates, fmt.Sprintf("run %d: %v against %v", i+1, roundWait(slow.wait), roundWait(ref.wait)))
		}
		before, ok := usedBeforeFaults(r.History, target)
		if !ok {
			before = -1
		}
		bound, also := max(most, before), ""
		over := bound < 0 // no run to say how much work it does
		if !over {
			// More work than the runs compared with: a storm, unless the
			// connections it was handed explain it (churn.go).
			within, figures := price.within(r.History, target, spans, usesTarget, u, starvedMoreWork*bound+starvedSlack)
			switch {
			case !within:
				over = true
				if figures != "" {
					also = "; " + figures
				}
			case figures != "":
				churned = append(churned, fmt.Sprintf("run %d: %s", i+1, figures))
			}
		}
		if over {
			// More CPU; but more asked of it? A starved dependency burns
			// more on the same requests (answers.go).
			if same, figures := askedNoMore(got, ref, known); same {
				over = false
				asked = append(asked, fmt.Sprintf("run %d: %s", i+1, figures))
			} else if figures != "" {
				also += "; " + figures
			}
		}
		if over {
			return "", fmt.Sprintf("%s: used %.2f CPUs %s (run %d of those that broke) against %s before the first fault and %s without faults and in the runs that held%s",
				target, u, sc.what, i+1, cpusOrNone([]float64{before}), cpusOrNone([]float64{most}), also)
		}
		waits, uses, befores = append(waits, w), append(uses, u), append(befores, before)
	}
	without := "nothing"
	if most >= 0 {
		without = fmt.Sprintf("at most %.2f", most)
	}
	answered := answeredNote(lates, asked, "before the first fault and in the runs compared with", "before")
	return fmt.Sprintf("%s, %s waited for a CPU %s of the time in the %s that broke (at least %.0f%%)%s, and used %s CPUs there against %s before the first fault and %s without faults and in the runs that held%s, while the machine's CPU pressure was %s",
		sc.what, target, percents(waits), runsWord(len(waits)), 100*unscheduledWait, answered, cpus(uses), cpusOrNone(befores), without, churnNote(churned), pressuresOf(bad)), ""
}

// unscheduledBefore is the least time before a run's first fault over
// which a dependency's work before it is measured.
const unscheduledBefore = 500 * time.Millisecond

// usedBeforeFaults is the CPU the dependency named target used in h
// before the first fault took effect; false when no fault did, or when
// the first came within unscheduledBefore.
func usedBeforeFaults(h *sim.History, target string) (float64, bool) {
	first, ok := firstFault(h)
	if !ok || first < unscheduledBefore {
		return 0, false
	}
	_, u, ok := depCPU(h, target, 0, first)
	return u, ok
}

// cpusOrNone is cpus with "-" for the unknown (negative) ones.
func cpusOrNone(v []float64) string {
	return joined(v, func(x float64) string {
		if x < 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", x)
	})
}
