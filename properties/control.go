package properties

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/shakedown/shakedown/sim"
)

// The control run: a machine that runs the test process, but slowly
// (every timer late by tens of milliseconds under a shared CI runner's
// load), makes a service look fragile that is not. The baseline measured
// the machine once, before any schedule; once a failing schedule has
// been rerun (whether it reproduced or was flaky), the fault-free
// baseline is run again right beside it,
// judged by the same invariants and the same noise-floor check. When the
// control breaks every invariant the schedule broke, or has the bound of
// each inside its own noise floor, the failure is the machine's, not the
// schedule's: its findings become Unjudged with that reason ("the machine
// got slower", with the invariant and the figures of both fault-free
// runs), it is not shrunk, and the search goes on. One invariant the
// control does not explain is enough for the failure to stand.
//
// A simulated run has no machine to get slower (time is virtual), so the
// control runs only for real runs; the package's tests turn it on in
// simulation (controlInSimulation) to test the mechanism.

// controlInSimulation runs the control in simulated checks too.
var controlInSimulation = false

// slower is a confirmed failure set aside as the machine's.
type slower struct {
	it         *Iteration
	invariants []string // the invariants it broke
	reason     string
}

// machine runs the controls beside it, a failure that reproduced
// (subject names it: "iteration 3"), and returns why the failure is the
// machine's ("" when it stands): the fault-free control first, then, when
// that does not explain it, the reconnect control (reconnect.go). A flaky
// failure gets its controls from explained: its reruns speak first
// (starved.go, noise.go).
func (x *explorer) machine(it *Iteration, subject string) string {
	why, c := x.control(it, "control beside "+subject+" (the baseline again, no faults)")
	if why == "" && c != nil {
		why = x.reconnect(it, c, subject)
	}
	return why
}

// control runs the fault-free baseline again beside it, a failure that
// has been rerun, and returns why the failure is the machine's ("" when it
// stands, or when no control could run), and the control run (nil when
// none ran).
func (x *explorer) control(it *Iteration, what string) (string, *Iteration) {
	if x.base == nil || x.cfg.Simulate && !controlInSimulation || x.fatal != nil {
		return "", nil
	}
	c := x.controlRun(sim.Schedule{}, what)
	if c == nil {
		return "", nil
	}
	before, now := measure(x.base.History), measure(c.History)
	var why []string
	for _, f := range it.Findings {
		if f.Verdict != Broken {
			continue
		}
		r := x.explains(it, c, now, f.Invariant)
		if r == "" {
			x.t.Logf("shakedown: %s: does not explain what the schedule broke (%s): the failure stands", what, f.Invariant)
			return "", c
		}
		why = append(why, fmt.Sprintf("%s: %s", f.Invariant, r))
	}
	if len(why) == 0 {
		return "", c
	}
	return fmt.Sprintf("the machine got slower, not the service: a fault-free control run right beside the failing schedule (%s) explains what it broke (%s); without faults, the first baseline had %s, the control %s",
		oneLineOr(it.Schedule), strings.Join(why, "; "), before, now), c
}

// controlRun runs the control schedule s, counted as a control (not in
// the coverage, its cost as the controls'); nil when no time is left for
// it before the test's deadline, or on a fatal error (recorded).
func (x *explorer) controlRun(s sim.Schedule, what string) *Iteration {
	if !x.fits(s.Horizon(), 1) {
		x.t.Logf("shakedown: no time left before the test's deadline for a control run beside the failure")
		return nil
	}
	start := time.Now()
	x.controlling = true
	c := x.run(s, what, nil)
	x.controlling = false
	x.cost.Control += time.Since(start)
	x.controls++
	return c
}

// explains says how the control run c (with its noise floor now) explains
// the invariant name that it, the failing run, broke ("" when it does
// not): c broke it too, the invariant's bound now sits inside c's noise
// floor, or c breaks it when judged with it's fault times laid over it.
func (x *explorer) explains(it, c *Iteration, now floor, name string) string {
	inv, known := invariantNamed(x.cfg.Invariants, name)
	if known && x.hangsStand(it, c, inv) {
		return ""
	}
	if f, ok := append(c.Steady[:len(c.Steady):len(c.Steady)], c.Findings...).broken(name); ok {
		msg, _, _ := strings.Cut(f.Err.Error(), "\n")
		return "the control broke it too (" + msg + ")"
	}
	if !known {
		return ""
	}
	if why := now.tooTight(inv); why != "" {
		return "its bound now sits inside the control's noise floor (" + strings.TrimPrefix(why, "too tight to judge on this machine: ") + ")"
	}
	// An invariant judged only around faults (Recovery, FailFast) has no
	// evidence in a fault-free run: judge the control with the failing
	// run's fault times laid over it, none of them applied. The first
	// baseline, judged the same way, must hold: if it breaks too, the
	// system does not hold without faults, which is no news of the
	// machine, and the failure stands.
	g := graft(c, it)
	if f := Evaluate(g, []Invariant{inv})[0]; f.Verdict == Broken {
		if Evaluate(graft(x.base, it), []Invariant{inv})[0].Verdict == Broken {
			x.t.Logf("shakedown: %s: the first baseline breaks it too when judged with the failing run's fault times: not the machine's", name)
			return ""
		}
		if away := stayedAway(g, inv, usesOf(x.cfg.Invariants)); away != "" {
			x.t.Logf("shakedown: %s: the control broke it too, judged with the failing run's fault times, but %s: a slower machine does not explain it", name, away)
			return ""
		}
		msg, _, _ := strings.Cut(f.Err.Error(), "\n")
		return "the control broke it too, judged with the failing run's fault times laid over it, though no fault was applied, where the first baseline judged so held (" + msg + ")"
	}
	return ""
}

// stayedAway says how h, a run that breaks inv, a Recovery (a failing
// run, or a control judged with a failing run's fault times laid over
// it), shows the client staying away from its dependencies on its own
// ("" when it does not, when inv is no Recovery, or where the Links did
// not time their answers): the ops that broke it were still failing at
// the last of them, refused at once (each that began in the Within
// before it ended within a tenth of Within), and for that whole Within
// no request reached any dependency those ops use (none answered there,
// none waiting at its Link). A slower machine makes a dependency answer
// late, or freezes the service so that its ops time out; it does not
// make a running service refuse its ops without asking. A client whose
// breaker, tripped by a slow spell of the machine, stays open long after
// it (the slow-recovery bug), or whose pool never dials again, does. A
// client that recovers probes its dependency again within its recovery
// bound, and a probe is a request. The dependencies an op uses are those
// Isolation.Uses names for its kind; an op of a kind it names none for
// might use any, and then every target whose Link timed its answers must
// have been asked nothing.
func stayedAway(h *sim.History, inv Invariant, uses map[string][]string) string {
	r, ok := asRecovery(inv)
	if !ok || r.Within <= 0 || h == nil || h.Machine == nil {
		return ""
	}
	heal, why := lastHeal(h)
	if why != "" {
		return ""
	}
	deadline, _ := r.deadline(h, heal)
	late := r.late(h, deadline)
	last := time.Duration(-1)
	for _, op := range late {
		if op.Outcome != sim.OK {
			last = max(last, op.End)
		}
	}
	if last < r.Within {
		return ""
	}
	// The service answered them at once, refusing: every one that began
	// in the stretch ended within a tenth of Within. A process that the
	// machine froze answers nothing, and its ops fail late, on their
	// own timeouts.
	from, kinds := last-r.Within, map[string]bool{}
	for _, op := range late {
		if op.Outcome == sim.OK || op.Start < from {
			continue
		}
		if op.End-op.Start > r.Within/10 {
			return ""
		}
		kinds[op.Kind] = true
	}
	var targets []string
	for kind := range kinds {
		if len(uses[kind]) == 0 {
			targets = nil
			for _, d := range h.Machine.Dependencies {
				targets = append(targets, d.Target)
			}
			break
		}
		targets = append(targets, uses[kind]...)
	}
	if len(targets) == 0 {
		return ""
	}
	slices.Sort(targets)
	targets = slices.Compact(targets)
	span := []interval{{from, last}}
	for _, t := range targets {
		if f := answersOver(h, t, span); f.n != 0 || waitingOver(h, t, span) != 0 {
			return "" // asked, or not known
		}
	}
	names := slices.Sorted(maps.Keys(kinds))
	return fmt.Sprintf("its %s ops were still failing at %v, refused at once, and in the %v before, nothing was asked of %s (no request answered or waiting at its Link): the client stayed away on its own",
		strings.Join(names, ", "), last.Round(time.Millisecond), r.Within, strings.Join(targets, " or "))
}

// asRecovery is inv as a Recovery, whether held by value or by pointer.
func asRecovery(inv Invariant) (Recovery, bool) {
	switch v := inv.(type) {
	case Recovery:
		return v, true
	case *Recovery:
		if v != nil {
			return *v, true
		}
	}
	return Recovery{}, false
}

// hangsStand reports whether the ops that it, the failing run, left
// without an answer through the whole drain break inv, where the control
// c left none so: judged on them alone, or on the run without them, they
// make the difference. A slower machine delays answers; a fault-free
// control right beside, whose every op ended before its drain did, shows
// that this one does not withhold them for seconds. However far its
// noise floor rose, the control does not explain a client that hangs.
func (x *explorer) hangsStand(it, c *Iteration, inv Invariant) bool {
	h := it.History
	hs := hangs(h)
	if len(hs) == 0 || len(hangs(c.History)) > 0 {
		return false
	}
	judge := func(keep bool) Verdict {
		g := *h
		g.Ops = nil
		for _, op := range h.Ops {
			if hung(op) == keep {
				g.Ops = append(g.Ops, op)
			}
		}
		return Evaluate(&g, []Invariant{inv})[0].Verdict
	}
	if judge(true) != Broken && judge(false) == Broken {
		return false
	}
	x.t.Logf("shakedown: %s: the schedule left %d op(s) without an answer through the whole drain (op %d, %s, due at %v, cancelled by the run at %v), the control beside it none: a slower machine does not explain it",
		inv.Name(), len(hs), hs[0].ID, hs[0].Kind, hs[0].Intended.Round(time.Millisecond), hs[0].End.Round(time.Millisecond))
	return true
}

// hangs are the ops of h that had no answer through the whole drain.
func hangs(h *sim.History) []sim.Op {
	var hs []sim.Op
	for _, op := range h.Ops {
		if hung(op) {
			hs = append(hs, op)
		}
	}
	return hs
}

// hung reports whether op had no answer through the whole drain: of a
// workload with no Timeout, it returned only when the run cancelled it
// (sim.ErrHung), or it ignored the cancellation too and was abandoned.
func hung(op sim.Op) bool {
	return op.Outcome != sim.Missed &&
		(strings.HasPrefix(op.Err, sim.ErrHung.Error()) || strings.HasPrefix(op.Err, sim.ErrAbandoned.Error()))
}

// graft is the control run c's history with the fault events of it, the
// failing run, laid over it: shifted earlier by its schedule's horizon, so
// that its last heal falls as far before the control's end as it fell
// before the failing run's (both runs end a cooldown after their
// horizon). No fault was applied in c: judged on this history, an
// invariant that breaks says that the machine alone breaks it.
func graft(c, it *Iteration) *sim.History {
	g := *c.History
	shift := it.Schedule.Horizon()
	g.Faults = nil
	for _, e := range it.History.Faults {
		if !e.Applied() {
			continue
		}
		e.Start = max(e.Start-shift, 0)
		if e.End != 0 {
			e.End = max(e.End-shift, e.Start+1)
		}
		g.Faults = append(g.Faults, e)
	}
	return &g
}

// setAside turns a confirmed failure into the machine's: every finding
// it and its whole reruns broke becomes Unjudged for the reason, and the
// coverage counts them as not judged.
func (x *explorer) setAside(it *Iteration, reason string) {
	x.t.Logf("shakedown: UNJUDGED: %s", reason)
	names := it.Findings.brokenNames()
	for _, r := range append([]*Iteration{it}, it.again...) {
		for i, f := range r.Findings {
			if f.Verdict != Broken {
				continue
			}
			if r.early == "" && x.cov.Broken[f.Invariant] > 0 {
				x.cov.Broken[f.Invariant]--
				x.cov.Judged[f.Invariant]--
			}
			r.Findings[i] = Finding{Invariant: f.Invariant, Verdict: Unjudged, Err: &NoEvidence{Invariant: f.Invariant, Reason: reason}}
			if _, ok := x.tight[f.Invariant]; !ok {
				x.tight[f.Invariant] = "not judged: " + reason
			}
		}
	}
	x.slower = append(x.slower, slower{it: it, invariants: names, reason: reason})
}
