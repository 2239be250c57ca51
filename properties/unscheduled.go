package properties

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/shakedown/shakedown/sim"
)

// A fault the schedule did not contain: on a shared runner, the machine
// itself may slow a dependency that the schedule never touched, by
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
//   - every invariant it broke is a Recovery or an Isolation;
//   - for every invariant it broke, in every run of it that broke that
//     invariant (the first and the reruns that broke it again), a
//     dependency that the schedule does not fault (for an Isolation, one
//     that its judged ops use), over the invariant's part of the run (an
//     Isolation until the last heal, a Recovery the whole run: a breaker
//     the starved dependency opened during the fault is still open after
//     the heal), had a process waiting for a CPU at least unscheduledWait
//     of the time;
//   - in none of those runs did that dependency use more CPU there than
//     starvedMoreWork allows over the most it used in the fault-free
//     baseline and in the runs of the schedule that held, or over what
//     it used in the same run before the first fault (when that came
//     unscheduledBefore or more into the run): a client that storms a
//     dependency (a cache fault that sends every read to the database)
//     makes it busy from the fault on, and that is the schedule's doing;
//     a starved database whose clients time out, cancel their queries
//     and reconnect (it forks and authenticates each new connection)
//     works more from before any fault, and that is the machine's;
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
// failure that broke them besides stands.
const unscheduledWait = 0.15

// unscheduled returns why it, a failure whose reruns have run, broke only
// beside a dependency the machine starved, by the rule above, or "" when
// it stands. base is the fault-free baseline (nil when none ran: then
// only the schedule's held runs bound the dependency's work).
func unscheduled(it, base *Iteration, invs []Invariant) string {
	names := it.Findings.brokenNames()
	if len(names) == 0 || it.History == nil || it.History.Machine == nil {
		return ""
	}
	bad, good := []*Iteration{it}, []*Iteration(nil)
	for _, r := range it.again {
		if r.History == nil || r.History.Machine == nil {
			return ""
		}
		if broke(r) {
			bad = append(bad, r)
		} else if r.early == "" {
			good = append(good, r)
		}
	}
	for _, r := range bad {
		if r.History.Machine.CPUPressure < starvedMachine {
			return ""
		}
	}
	if base != nil && base.History != nil && base.History.Machine != nil {
		good = append(good, base)
	}
	var whys []string
	for _, name := range names {
		sc, ok := unscheduledScope(name, invs, it.Schedule, it.History)
		if !ok {
			return ""
		}
		var broken []*Iteration // the runs that broke it
		for _, r := range bad {
			if _, ok := r.Findings.broken(name); ok {
				broken = append(broken, r)
			}
		}
		why := ""
		for _, target := range sc.targets {
			if why = unscheduledOne(target, sc, broken, good); why != "" {
				break
			}
		}
		if why == "" {
			return ""
		}
		whys = append(whys, name+": "+why)
	}
	return fmt.Sprintf("a dependency the schedule did not fault was starved of CPU by the machine in every run that broke: %s; the schedule (%s) broke %s in %d of %d runs, never without that second fault",
		strings.Join(whys, "; "), oneLineOr(it.Schedule), strings.Join(names, "; "), len(bad), 1+len(it.again))
}

// unscheduledScope is where a dependency the machine starved explains
// breaking the invariant named name: the dependencies that s does not
// fault (an Isolation's: those its judged ops use), over the invariant's
// part of a run. h names the dependencies a run measured.
func unscheduledScope(name string, invs []Invariant, s sim.Schedule, h *sim.History) (starvedScope, bool) {
	inv, ok := invariantNamed(invs, name)
	if !ok {
		return starvedScope{}, false
	}
	switch v := inv.(type) {
	case Recovery, *Recovery:
		sc := starvedScope{what: "over the run", window: func(*sim.History) (time.Duration, time.Duration, bool) {
			return 0, math.MaxInt64, true
		}}
		for _, d := range h.Machine.Dependencies {
			if !aims(s, d.Target) {
				sc.targets = append(sc.targets, d.Target)
			}
		}
		return sc, len(sc.targets) > 0
	case Isolation:
		sc := isolationScope(v, s)
		return sc, len(sc.targets) > 0
	case *Isolation:
		if v == nil {
			return starvedScope{}, false
		}
		sc := isolationScope(*v, s)
		return sc, len(sc.targets) > 0
	}
	return starvedScope{}, false
}

// unscheduledOne applies the rule to the dependency named target, and
// returns its figures when every run that broke starved it while it did
// no more work than the fault-free baseline and the held runs did, or
// than it did itself before the run's first fault (a client whose calls
// time out against a starved database cancels them and reconnects, and
// the database forks and authenticates each new connection: work that
// the machine's starving began, before any fault could).
func unscheduledOne(target string, sc starvedScope, bad, good []*Iteration) string {
	most := -1.0
	for _, r := range good {
		from, to, ok := sc.window(r.History)
		if !ok {
			from, to = 0, math.MaxInt64 // the baseline has no heal: its whole run
		}
		if _, u, ok := depCPU(r.History, target, from, to); ok {
			most = max(most, u)
		}
	}
	var waits, uses, befores []float64
	for _, r := range bad {
		from, to, ok := sc.window(r.History)
		if !ok {
			return ""
		}
		w, u, ok := depCPU(r.History, target, from, to)
		if !ok || w < unscheduledWait {
			return ""
		}
		before, ok := usedBeforeFaults(r.History, target)
		if !ok {
			before = -1
		}
		if bound := max(most, before); bound < 0 || u > starvedMoreWork*bound+starvedSlack {
			return "" // no run to say how much work it does, or it did more: a storm
		}
		waits, uses, befores = append(waits, w), append(uses, u), append(befores, before)
	}
	without := "nothing"
	if most >= 0 {
		without = fmt.Sprintf("at most %.2f", most)
	}
	return fmt.Sprintf("%s, %s waited for a CPU %s of the time in the %s that broke (at least %.0f%%), and used %s CPUs there against %s before the first fault and %s without faults and in the runs that held, while the machine's CPU pressure was %s",
		sc.what, target, percents(waits), runsWord(len(waits)), 100*unscheduledWait, cpus(uses), cpusOrNone(befores), without, pressuresOf(bad))
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
