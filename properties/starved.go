package properties

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/shakedown/shakedown/sim"
)

// A failure that came and went, on a real machine, may have come only
// because a dependency could not get a CPU: on a shared runner, a
// database whose container the machine's other work starves answers late
// after a heal, however well the client reconnects, and a Recovery bound
// is missed in one run of four. The fault-free control cannot show this
// (a run without faults has nothing to recover from), but every real run
// records each dependency's CPU waits and use (sim.Machine.Dependencies),
// and a flaky failure has its reruns beside it. So a flaky failure is the
// machine's, and set aside as Unjudged (Result.Slower, "UNJUDGED, not
// Broken"), when all of these hold:
//
//   - every invariant it broke is a Recovery: judged after the last heal,
//     where the dependency's waits are compared;
//   - at least two reruns held, and ran to the end;
//   - a dependency the schedule faulted (the one the client had to
//     recover from), in every run that broke, waited for a CPU after the
//     last heal at least starvedRatio times as long, and starvedGap of
//     the time more, as in any run that held;
//   - in none of the runs that broke did that dependency use more CPU
//     after the heal than starvedMoreWork allows over the runs that held:
//     a client that storms its dependency after a heal (a dial or retry
//     storm) makes it busy, and busy processes wait for CPUs too; a
//     dependency that waited longer while doing no more work was kept
//     from the CPUs by something outside the test;
//   - the machine's CPU pressure in every run that broke was at least
//     starvedMachine: its CPUs were contended.
//
// A failure that reproduced is never set aside so (the control judges
// it), nor one whose dependencies' figures are unknown, nor one on an
// idle machine. Fragility when a dependency is slow is what the
// generators' latency faults test, on schedules that reproduce.
//
// What the rule cannot tell: on a machine whose CPUs are saturated, a
// dependency gets about the same CPU however much it is asked, so a
// client that storms it after the heal in one run of four (and not in
// the others) would look starved, not busy. A storm that comes with
// every run of the schedule waits in the reruns too and is not set
// aside; ReconnectStorm and Amplification judge storms themselves, and a
// failure that broke them besides Recovery stands.
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
	var names []string
	for _, f := range it.Findings {
		if f.Verdict != Broken {
			continue
		}
		if !isRecovery(f.Invariant, invs) {
			return ""
		}
		names = append(names, f.Invariant)
	}
	if len(names) == 0 {
		return ""
	}
	bad, good := []*Iteration{it}, []*Iteration(nil)
	for _, r := range it.again {
		switch {
		case r.History == nil || r.History.Machine == nil:
			return "" // a rerun the kernel said nothing of: no comparison
		case broke(r):
			bad = append(bad, r)
		case r.early == "":
			good = append(good, r)
		}
	}
	if len(good) < 2 {
		return ""
	}
	for _, r := range bad {
		if r.History.Machine.CPUPressure < starvedMachine {
			return ""
		}
	}
	for _, d := range it.History.Machine.Dependencies {
		if !aims(it.Schedule, d.Target) {
			continue
		}
		if why := starvedOne(d.Target, bad, good); why != "" {
			return fmt.Sprintf("a dependency starved of CPU, not the service: %s; the schedule (%s) broke %s in %d of %d runs",
				why, oneLineOr(it.Schedule), strings.Join(names, "; "), len(bad), len(bad)+len(good))
		}
	}
	return ""
}

// starvedOne applies the rule to the dependency named target, and
// returns its figures when the runs that broke starved it.
func starvedOne(target string, bad, good []*Iteration) string {
	figures := func(runs []*Iteration) (waits, uses []float64, ok bool) {
		for _, r := range runs {
			heal, why := lastHeal(r.History)
			if why != "" {
				return nil, nil, false
			}
			var d *sim.DependencyCPU
			for i := range r.History.Machine.Dependencies {
				if r.History.Machine.Dependencies[i].Target == target {
					d = &r.History.Machine.Dependencies[i]
				}
			}
			if d == nil {
				return nil, nil, false
			}
			w, u := d.WaitedBetween(heal, math.MaxInt64), d.UsedBetween(heal, math.MaxInt64)
			if w < 0 || u < 0 {
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
	if slices.Max(bu) > starvedMoreWork*slices.Max(gu)+starvedSlack {
		return ""
	}
	return fmt.Sprintf("after the last heal, %s waited for a CPU %s of the time in the %s that broke and %s in the %d that held, and used %s CPUs against %s, while the machine's CPU pressure was %s: something outside the test had the CPUs",
		target, percents(bw), runsWord(len(bw)), percents(gw), len(gw), cpus(bu), cpus(gu), pressuresOf(bad))
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

func isRecovery(name string, invs []Invariant) bool {
	for _, inv := range invs {
		if inv.Name() != name {
			continue
		}
		switch inv.(type) {
		case Recovery, *Recovery:
			return true
		}
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
