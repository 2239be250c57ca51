package properties

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/shakedown/shakedown/sim"
)

// A failure that came and went, on a real machine, may have come only
// because a dependency could not get a CPU: on a shared runner, a
// database whose container the machine's other work starves answers late
// after a heal, however well the client reconnects, and a Recovery bound
// is missed in one run of four; or it answers late before any fault, a
// breaker opens on it, and the ops that use it fail while another
// dependency is faulted, which an Isolation bound counts. The fault-free
// control cannot show this (a run without faults has nothing to recover
// from, and the next one may get its CPUs), but every real run records
// each dependency's CPU waits and use (sim.Machine.Dependencies), and a
// flaky failure has its reruns beside it. So a flaky failure is the
// machine's, and set aside as Unjudged (Result.Slower, "UNJUDGED, not
// Broken"), when all of these hold:
//
//   - every invariant it broke is a Recovery or an Isolation, each with
//     its scope (scopeOf): for a Recovery, the dependencies the schedule
//     faulted (what the client had to recover from), after the last heal;
//     for an Isolation, the dependencies its judged ops use that the
//     schedule did not fault, from the start to the last heal;
//   - at least two reruns held, and ran to the end;
//   - for every invariant it broke, a dependency of its scope, in every
//     run that broke, waited for a CPU in the scope's part of the run at
//     least starvedRatio times as long, and starvedGap of the time more,
//     as in any run that held;
//   - in none of the runs that broke did that dependency use more CPU
//     there than starvedMoreWork allows over the runs that held: a client
//     that storms its dependency (a dial or retry storm) makes it busy,
//     and busy processes wait for CPUs too; a dependency that waited
//     longer while doing no more work was kept from the CPUs by something
//     outside the test (no more, beyond what the connections it was
//     handed explain, when they are no storm: churn.go); where its Link
//     timed its answers, more CPU on no more requests a second than the
//     runs that held asked of it is no storm either: a starved database
//     burns more on the same requests, a storm sends more (answers.go);
//   - where its Link timed its answers, that dependency kept its
//     requests waiting there, in every run that broke: on average
//     starvedRatio times as long, and lateGap more, as in the runs that
//     held, or held them all unanswered. One that answered as it did in
//     them, or that nobody asked anything (a client that never
//     reconnects after the heal, whose breaker stays open, leaves its
//     dependency idle, however starved), slowed nothing, and the failure
//     stands;
//   - the machine's CPU pressure in every run that broke was at least
//     starvedMachine: its CPUs were contended.
//
// A failure that reproduced is never set aside so (the controls judge
// it), nor one whose dependencies' figures are unknown, nor one on an
// idle machine. Fragility when a dependency is slow is what the
// generators' latency faults test, on schedules that reproduce.
//
// What the rule cannot tell: on a machine whose CPUs are saturated, a
// dependency gets about the same CPU however much it is asked, so a
// client that storms it in one run of four (and not in the others)
// would look starved, not busy. A storm that comes with every run of the
// schedule waits in the reruns too and is not set aside; ReconnectStorm
// and Amplification judge storms themselves, and a failure that broke
// them besides stands.
const (
	starvedRatio    = 2.0
	starvedGap      = 0.10
	starvedMachine  = 0.5
	starvedMoreWork = 1.25 // times the most the held runs used, plus starvedSlack
	starvedSlack    = 0.02 // CPUs
)

// machineInSimulation, when set (by the package's tests), gives each
// simulated run the machine record a real run has, to test what reads it.
var machineInSimulation func(h *sim.History) *sim.Machine

// starved returns why the flaky failure it is the machine's, by the rule
// above, or "" when it stands.
func starved(it *Iteration, invs []Invariant) string {
	if it.History == nil || it.History.Machine == nil {
		return ""
	}
	names := it.Findings.brokenNames()
	if len(names) == 0 {
		return ""
	}
	bad, good, ok := contendedRuns(it)
	if !ok || len(good) < 2 {
		return ""
	}
	var whys []string
	for _, name := range names {
		sc, ok := scopeOf(name, invs, it.Schedule)
		if !ok {
			return ""
		}
		sc.until = recoveriesBrokeBy(invs, []string{name})
		why := ""
		for _, d := range it.History.Machine.Dependencies {
			if slices.Contains(sc.targets, d.Target) {
				if why = starvedOne(d.Target, sc, bad, good, kindsUsing(usesOf(invs), d.Target)); why != "" {
					break
				}
			}
		}
		if why == "" {
			return ""
		}
		whys = append(whys, why)
	}
	return fmt.Sprintf("a dependency starved of CPU, not the service: %s; the schedule (%s) broke %s in %d of %d runs",
		strings.Join(whys, "; "), oneLineOr(it.Schedule), strings.Join(names, "; "), len(bad), len(bad)+len(good))
}

// contendedRuns splits it and its reruns into those that broke and those
// that held to the end (a confirming run that ended early is neither);
// ok is false when a run has no machine record (the kernel said nothing
// of it: no comparison), or one that broke was on a machine whose CPU
// pressure was under starvedMachine.
func contendedRuns(it *Iteration) (bad, good []*Iteration, ok bool) {
	bad = []*Iteration{it}
	for _, r := range it.again {
		switch {
		case r.History == nil || r.History.Machine == nil:
			return nil, nil, false
		case broke(r):
			bad = append(bad, r)
		case r.early == "":
			good = append(good, r)
		}
	}
	for _, r := range bad {
		if r.History.Machine.CPUPressure < starvedMachine {
			return nil, nil, false
		}
	}
	return bad, good, true
}

// starvedScope is where a dependency starved of CPU explains breaking an
// invariant: which dependencies, over which part of a run.
type starvedScope struct {
	targets []string
	what    string // "after the last heal"
	window  func(h *sim.History) (from, to time.Duration, ok bool)
	// until is where, in a run that broke the invariant, the ops that
	// broke it ended: its dependency's lateness is judged up to there.
	until func(h *sim.History) time.Duration
}

// scopeOf is the scope of the invariant named name, for schedule s; ok is
// false for an invariant that a starved dependency does not explain:
//
//   - a Recovery is judged after the last heal, on the client's recovery
//     from what the schedule faulted: the dependencies s faults, after
//     the last heal;
//   - an Isolation is judged while faults hold, on the ops that do not use
//     the faulted target: the dependencies those ops use that s does not
//     fault, from the start of the run to the last heal (a breaker that
//     the starved dependency opened before the fault is still open in
//     it).
func scopeOf(name string, invs []Invariant, s sim.Schedule) (starvedScope, bool) {
	for _, inv := range invs {
		if inv.Name() != name {
			continue
		}
		var sc starvedScope
		switch v := inv.(type) {
		case Recovery, *Recovery:
			sc = starvedScope{what: "after the last heal", window: func(h *sim.History) (time.Duration, time.Duration, bool) {
				heal, why := lastHeal(h)
				return heal, math.MaxInt64, why == ""
			}}
			for _, st := range s.Steps {
				if !slices.Contains(sc.targets, st.Target) {
					sc.targets = append(sc.targets, st.Target)
				}
			}
		case Isolation:
			sc = isolationScope(v, s)
		case *Isolation:
			if v == nil {
				return starvedScope{}, false
			}
			sc = isolationScope(*v, s)
		default:
			return starvedScope{}, false
		}
		return sc, len(sc.targets) > 0
	}
	return starvedScope{}, false
}

// isolationScope: the dependencies that the ops is judges use and s does
// not fault, from the start of a run to its last heal.
func isolationScope(is Isolation, s sim.Schedule) starvedScope {
	sc := starvedScope{what: "until the last heal", window: func(h *sim.History) (time.Duration, time.Duration, bool) {
		heal, why := lastHeal(h)
		return 0, heal, why == ""
	}}
	for _, t := range is.targets() {
		if !aims(s, t) {
			sc.targets = append(sc.targets, t)
		}
	}
	return sc
}

// starvedOne applies the rule to the dependency named target over the
// scope's part of each run, and returns its figures when the runs that
// broke starved it.
func starvedOne(target string, sc starvedScope, bad, good []*Iteration, uses func(kind string) bool) string {
	figures := func(runs []*Iteration) (waits, uses []float64, ok bool) {
		for _, r := range runs {
			from, to, ok := sc.window(r.History)
			if !ok {
				return nil, nil, false
			}
			w, u, ok := depCPU(r.History, target, from, to)
			if !ok {
				return nil, nil, false
			}
			waits, uses = append(waits, w), append(uses, u)
		}
		return waits, uses, true
	}
	bw, bu, ok := figures(bad)
	if !ok {
		return ""
	}
	gw, gu, ok := figures(good)
	if !ok {
		return ""
	}
	least, most := slices.Min(bw), slices.Max(gw)
	if least < starvedRatio*most || least-most < starvedGap {
		return ""
	}
	// Starved; but did it keep the ops waiting, and was it asked more
	// (answers.go)? Its answers in the runs that held are what it does
	// when the machine lets it.
	spansOf := func(r *Iteration) []interval {
		from, to, _ := sc.window(r.History)
		return []interval{{from, to}}
	}
	var held []answerFigures
	for _, r := range good {
		held = append(held, answersOver(r.History, target, spansOf(r)))
	}
	ref, known := compared(held...)
	// More work than the runs that held: a storm, unless the connections
	// it was handed explain it (churn.go), or its clients asked no more
	// requests of it (a starved dependency burns more CPU on the same).
	price, bound := priceConns(good, target), starvedMoreWork*slices.Max(gu)+starvedSlack
	var churned, lates, asked []string
	for i, r := range bad {
		spans := spansOf(r)
		got := answersOver(r.History, target, spans)
		broke := upTo(spans, r.History, sc.until)
		slow := answersOver(r.History, target, broke)
		if late(r.History, target, broke, slow, ref, known, sc.what, brokeRun(i), "in the runs that held") != "" {
			return ""
		}
		if slow.n > 0 && known {
			lates = append(lates, fmt.Sprintf("run %d: %v against %v", i+1, roundWait(slow.wait), roundWait(ref.wait)))
		}
		within, figures := price.within(r.History, target, spans, uses, bu[i], bound)
		if !within {
			same, figures := askedNoMore(got, ref, known)
			if !same {
				return ""
			}
			asked = append(asked, fmt.Sprintf("run %d: %s", i+1, figures))
			continue
		}
		if figures != "" {
			churned = append(churned, fmt.Sprintf("run %d: %s", i+1, figures))
		}
	}
	answered := answeredNote(lates, asked, "in the runs that held", "in them")
	return fmt.Sprintf("%s, %s waited for a CPU %s of the time in the %s that broke and %s in the %d that held%s, and used %s CPUs against %s%s, while the machine's CPU pressure was %s: something outside the test had the CPUs",
		sc.what, target, percents(bw), runsWord(len(bw)), percents(gw), len(gw), answered, cpus(bu), cpus(gu), churnNote(churned), pressuresOf(bad))
}

// aims says whether a step of s aims at target.
func aims(s sim.Schedule, target string) bool {
	for _, st := range s.Steps {
		if st.Target == target {
			return true
		}
	}
	return false
}

// recovery says whether inv is a Recovery.
func recovery(inv Invariant) bool {
	switch inv.(type) {
	case Recovery, *Recovery:
		return true
	}
	return false
}

func runsWord(n int) string {
	if n == 1 {
		return "run"
	}
	return fmt.Sprintf("%d runs", n)
}

// percents is "19%/8%/2%".
func percents(v []float64) string {
	return joined(v, func(x float64) string { return fmt.Sprintf("%.0f%%", 100*x) })
}

// cpus is "0.10/0.03".
func cpus(v []float64) string {
	return joined(v, func(x float64) string { return fmt.Sprintf("%.2f", x) })
}

func joined(v []float64, f func(float64) string) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = f(x)
	}
	return strings.Join(s, "/")
}

func pressuresOf(runs []*Iteration) string {
	var v []float64
	for _, r := range runs {
		v = append(v, r.History.Machine.CPUPressure)
	}
	return percents(v)
}
