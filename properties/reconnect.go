package properties

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// The reconnect control. A fault-free control cannot show a machine that
// is slow at reconnecting: a run without faults opens no connection. But
// on a shared runner whose CPUs other work has, recovering after any
// fault that cut connections is CPU work on both sides (a database forks
// a process and runs an authentication exchange for each one), and a
// Recovery bound set for a machine with CPUs to spare is missed however
// well the client reconnects; the failure reproduces, since the machine
// stays loaded, or breaks in most runs. So beside a failure that the
// fault-free control did not explain, and that reproduced or that the
// noise test (noise.go) found breaking more often than fault-free runs,
// when all of these hold:
//
//   - every invariant it and its reruns broke is a Recovery;
//   - the machine's CPU pressure was at least starvedMachine in every run
//     that broke (an idle machine never runs it: a slow recovery there is
//     the service's);
//   - a target the schedule faulted takes a reset in the bounds;
//
// one more run is made, the reconnect control: the mildest schedule the
// bounds allow that makes the client reconnect to what the schedule
// faulted, a reset of each such target for Fault.Min ending where the
// failing schedule's last step ends. It is a schedule the search could
// draw, so it is judged by the same invariants. The failure is the
// machine's, and set aside as Unjudged, when
//
//   - the reconnect control broke every Recovery the failure broke: the
//     schedule's faults did nothing to recovery that reconnecting alone
//     did not;
//   - a reset target, after the heal, in the reconnect control and in
//     every run that broke, waited for a CPU at least starvedRatio times
//     as long, and starvedGap of the time more, as in the whole fault-free
//     control run; or, on a machine that starved it in that control too
//     (no run can wait twice as long as one that waited half of it), at
//     least as long and unscheduledWait of the time, while it used
//     starvedRatio times the CPU it used there, and starvedSlack more: it
//     was doing work, and the machine kept it from the CPUs (a client
//     whose recovery waits on its own timers, a breaker open too long or
//     a pool that never dials again, leaves the dependency idle after the
//     heal, however long its few wake-ups wait, and its failure stands);
//   - in no run that broke did that target use more CPU from the
//     schedule's first fault to the end than starvedMoreWork allows over
//     the reconnect control over the same stretch, and over what it used
//     in the same run before that fault (when that came
//     unscheduledBefore or more into the run): the faults made no more
//     work than a reset does, nor than the run did before them (a retry
//     or dial storm would). Work is counted from the first fault, not
//     from the heal, because a fault that holds requests back (a pause, a
//     latency) moves the work they ask for past the heal: a database that
//     was paused catches up after it, more than after a reset, and doing
//     late what it would have done anyway is no storm. And a database
//     starved more in the runs that broke than in the reset's works more
//     in them from the start: its clients' calls time out, are cancelled
//     and reconnect, and it forks and authenticates each new connection,
//     churn that the starving began before any fault could. Beyond
//     those, it may also have done the work that the connections it was
//     handed explain, when they are no storm (churn.go), at the greater
//     of the prices the reset's run and the fault-free control put on a
//     connection in the windows around it, and the reset's run over the
//     whole stretch after the reset (resetPrice): on a machine that
//     starves the dependency, a connection's work comes seconds late.
//     Where its Link timed its answers, more CPU on no more requests a
//     second than in the reset's run from the same moment is no storm
//     either (a starved database burns more on the same requests, a
//     storm sends more: answers.go);
//
// A reconnect control that held may have held only because it ran at a
// calmer moment than the runs that broke: a contended machine's state
// changes from one run to the next. So it is run again, in turns with
// the schedule, by the noise test's pairs (apart, noise.go; the reset
// runs are the controls, each counted when it broke every Recovery the
// failure broke): until one breaks, and is judged as the first would
// have been (set aside when its target was starved after the heal; the
// failure stands when not); the schedule is found to break more often
// than the resets (a client that reconnects at once after a reset and
// not after the schedule's fault: it stands); or it cannot be (its
// reruns stopped breaking as the machine calmed, beside resets that
// held: set aside, the machine's noise). A rerun that breaks anything
// but a Recovery makes it stand.
//
// What it cannot tell: a client that storms its dependency after every
// reset storms in the reconnect control too, and on a contended machine
// its failure is set aside; ReconnectStorm and Amplification judge
// storms themselves (a failure that broke them besides Recovery stands),
// and the same client on an idle machine is judged in full.

// reconnect runs the reconnect control beside it (subject names it:
// "iteration 3"), whose fault-free control c did not explain it, and
// returns why the failure is the machine's ("" when it stands, or when
// the rule does not apply).
func (x *explorer) reconnect(it *Iteration, c *Iteration, subject string) string {
	if x.fatal != nil || it.History == nil || it.History.Machine == nil || c.History == nil || c.History.Machine == nil {
		return ""
	}
	names := it.Findings.brokenNames()
	if len(names) == 0 || !x.only(it, recovery) {
		return ""
	}
	if !contended(it) {
		return ""
	}
	s := reconnectSchedule(it, x.cfg.Bounds.withDefaults())
	if len(s.Steps) == 0 {
		return ""
	}
	// judge says how the reconnect control r, run beside the failure,
	// decides it: it broke every Recovery the failure broke (bad), and
	// then, when a reset target was starved after the heal, why the
	// failure is the machine's; when not, the failure stands (done).
	judge := func(r *Iteration, label string) (bad bool, why string, done bool) {
		for _, name := range names {
			if _, ok := r.Findings.broken(name); !ok {
				x.t.Logf("shakedown: %s: held %s where the schedule broke it%s", label, name, afterHeal(r, s))
				return false, "", false
			}
		}
		if r.History == nil || r.History.Machine == nil {
			return true, "", true
		}
		var nots []string
		for _, st := range s.Steps {
			why, not := reconnectStarved(st.Target, r, c, brokenRuns(it), kindsUsing(usesOf(x.cfg.Invariants), st.Target), recoveriesBrokeBy(x.cfg.Invariants, names))
			if why != "" {
				return true, fmt.Sprintf("the machine's cost of reconnecting, not the schedule: resetting %s alone where the schedule (%s) healed broke %s too (%s); %s",
					st.Target, oneLineOr(it.Schedule), strings.Join(names, "; "), oneLineOr(s), why), true
			}
			nots = append(nots, not)
		}
		x.t.Logf("shakedown: %s: broke %s too, but no reset target was both starved of CPU after the heal and no busier than the reset made it (%s): the failure stands", label, strings.Join(names, "; "), strings.Join(nots, "; "))
		return true, "", true
	}
	label := "reconnect control beside " + subject
	r := x.controlRun(s, label)
	if r == nil {
		return ""
	}
	if _, why, done := judge(r, label); done {
		return why
	}
	// The reconnect control held. On a contended machine it may have
	// held only because it ran at a calmer moment than the runs that
	// broke: it is run again, in turns with the schedule, until one of
	// them meets the machine in the same state (it breaks, and judge
	// decides), or the schedule is found to break more often than it
	// (the failure stands), or cannot be (the machine's noise).
	resets := fmt.Sprintf("a reset of what it faulted healing where it healed (%s)", oneLineOr(s))
	return x.apart(it, subject, resets, names, sample{runs: 1},
		func() bool { return x.only(it, recovery) },
		func(pair int) (bool, string, bool) {
			label := fmt.Sprintf("%s, pair %d", label, pair)
			r := x.controlRun(s, label)
			if r == nil {
				return false, "", true
			}
			return judge(r, label)
		})
}

// afterHeal is ", db waited for a CPU 12% of the time after the heal,
// using 0.05 CPUs" for each target s resets, as the reconnect control r
// recorded it ("" where the kernel did not say): the log shows the
// machine each reconnect control met.
func afterHeal(r *Iteration, s sim.Schedule) string {
	if r.History == nil || r.History.Machine == nil {
		return ""
	}
	heal, why := lastHeal(r.History)
	if why != "" {
		return ""
	}
	var out string
	for _, st := range s.Steps {
		if w, u, ok := depCPU(r.History, st.Target, heal, math.MaxInt64); ok {
			out += fmt.Sprintf(", %s waited for a CPU %.0f%% of the time after the heal, using %.2f CPUs", st.Target, 100*w, u)
		}
	}
	return out
}

// reconnectSchedule is the reconnect control's schedule beside it: a
// reset of each target its schedule faulted that takes one in the bounds
// b, for b.Fault.Min, healing where its schedule's last fault heals (no
// steps when no such target, or nothing heals after the start).
func reconnectSchedule(it *Iteration, b Bounds) sim.Schedule {
	heal := it.Schedule.Horizon()
	if heal <= 0 {
		return sim.Schedule{}
	}
	d := min(b.Fault.Min, heal)
	var s sim.Schedule
	for _, t := range b.Targets {
		if aims(it.Schedule, t.Name) && slices.Contains(t.Kinds, toxics.KindReset) {
			s.Steps = append(s.Steps, sim.Step{At: heal - d, For: d, Target: t.Name, Fault: toxics.Reset{}})
		}
	}
	return s
}

// reconnectStarved applies the rule to target: its CPU waits after the
// heal in the reconnect control r and in the runs that broke against the
// whole fault-free control c, and its CPU use from the first fault of
// the schedule to the end in the runs that broke against r over the same
// stretch. It returns the figures as why when the rule holds, and as
// not, saying which part failed, when it does not.
func reconnectStarved(target string, r, c *Iteration, bad []*Iteration, uses func(kind string) bool, until func(h *sim.History) time.Duration) (why, not string) {
	after := func(it *Iteration) (waited, used float64, ok bool) {
		heal, why := lastHeal(it.History)
		if why != "" {
			return 0, 0, false
		}
		return depCPU(it.History, target, heal, math.MaxInt64)
	}
	unknown := target + ": its CPU after the faults is not known"
	cw, cu, ok := depCPU(c.History, target, 0, math.MaxInt64)
	if !ok {
		return "", unknown
	}
	// kept says whether a run in which target waited w and used u
	// after the heal kept it from the CPUs while it worked: it waited
	// twice as long as without faults, and 10 points more; or, where the
	// fault-free control was starved too (the machine starves it all the
	// time), at least as long and unscheduledWait of the time, while it
	// used twice the CPU it did there (a client waiting on its own
	// timers leaves it idle, however starved).
	kept := func(w, u float64) bool {
		return w >= starvedRatio*cw && w-cw >= starvedGap ||
			w >= max(cw, unscheduledWait) && u >= starvedRatio*cu+starvedSlack
	}
	from, ok := firstFault(bad[0].History)
	if !ok {
		return "", unknown
	}
	rw, rau, ok := after(r)
	if !ok {
		return "", unknown
	}
	fed := !kept(rw, rau)
	_, ru, ok := depCPU(r.History, target, from, math.MaxInt64)
	if !ok {
		return "", unknown
	}
	rc := depConns(r.History, target, from, math.MaxInt64)
	price := priceConns([]*Iteration{r, c}, target)
	price.cost = max(price.cost, resetPrice(r, target))
	// Where the Link timed its answers: how long it kept its requests
	// waiting after the heal, in the reset's run and in every run that
	// broke, against a whole run without faults (for the figures), and
	// whether it was asked no more from the first fault on than in the
	// reset's run (a starved database burns more CPU on the same
	// requests; a storm sends more).
	ref, known := compared(answersOver(c.History, target, wholeRun))
	var slow []string
	for _, x := range append([]*Iteration{r}, bad...) {
		heal, why := lastHeal(x.History)
		if why != "" {
			return "", unknown
		}
		spans := upTo([]interval{{heal, math.MaxInt64}}, x.History, until)
		got := answersOver(x.History, target, spans)
		// Not required: on a machine that starves the database in the
		// fault-free control too, that control's answers are as late as
		// any (a loaded suite run saw 2.7 s there against 1.5 s after the
		// heal), and a reset that broke Recovery beside it is the
		// machine's all the same. Said in the figures only.
		if got.n > 0 && known {
			slow = append(slow, roundWait(got.wait).String())
		}
	}
	resetAsked, resetKnown := compared(answersOver(r.History, target, []interval{{from, math.MaxInt64}}))
	waits, used, befores, opens := []float64{rw}, []float64(nil), []float64(nil), []float64(nil)
	more := false // a run that broke worked more than the reset, than before its faults, and than its connections explain
	var churned, asked []string
	afterUse := []float64{rau}
	for i, b := range bad {
		w, au, ok := after(b)
		first, known := firstFault(b.History)
		if !ok || !known {
			return "", unknown
		}
		fed = fed || !kept(w, au)
		afterUse = append(afterUse, au)
		_, u, ok := depCPU(b.History, target, first, math.MaxInt64)
		if !ok {
			return "", unknown
		}
		before, ok := usedBeforeFaults(b.History, target)
		if !ok {
			before = -1
		}
		// More work: a storm, unless the connections it was handed
		// explain it (churn.go).
		within, figures := price.within(b.History, target, []interval{{first, math.MaxInt64}}, uses, u, starvedMoreWork*max(ru, before)+starvedSlack)
		if !within {
			same, figures := askedNoMore(answersOver(b.History, target, []interval{{first, math.MaxInt64}}), resetAsked, resetKnown)
			within = same
			if figures != "" {
				asked = append(asked, fmt.Sprintf("run %d: %s", i+1, figures))
			}
		}
		more = more || !within
		if figures != "" {
			churned = append(churned, fmt.Sprintf("run %d: %s", i+1, figures))
		}
		waits, used, befores = append(waits, w), append(used, u), append(befores, before)
		opens = append(opens, depConns(b.History, target, first, math.MaxInt64))
	}
	figures := fmt.Sprintf("%s waited for a CPU %.0f%% of the time after the reset and %s in the %s that broke (using %s CPUs), against %.0f%% in a whole run without faults (using %.2f), and used %s CPUs in those from the first fault on%s against %.2f in the reset's run from then on%s and %s before their first fault",
		target, 100*rw, percents(waits[1:]), runsWord(len(bad)), cpus(afterUse), 100*cw, cu, cpus(used), opened(opens...), ru, opened(rc), cpusOrNone(befores))
	figures += churnNote(churned)
	if len(slow) > 0 {
		figures += fmt.Sprintf(", and kept its requests waiting after the heal %s on average in the reset's run and in those that broke, against %v in a whole run without faults", strings.Join(slow, "/"), roundWait(ref.wait))
	}
	if len(asked) > 0 {
		figures += " (from the first fault on, against the reset's run: " + strings.Join(asked, "; ") + ")"
	}
	if fed {
		return "", "not starved: " + figures
	}
	if more {
		return "", "more work than the reset made, and than before the faults: " + figures
	}
	return fmt.Sprintf("after the heal, %s, while the machine's CPU pressure was %s", figures, pressuresOf(bad)), ""
}

// depConns is the number of connections handed to target in h from
// `from` to `to`, or -1 where its Link did not count them.
func depConns(h *sim.History, target string, from, to time.Duration) float64 {
	d, ok := dependencyOf(h, target)
	if !ok {
		return -1
	}
	return d.OpenedBetween(from, to)
}

// opened is " (14/3 connections opened)", with "-" where not counted,
// or "" when none was.
func opened(v ...float64) string {
	if slices.Max(append([]float64{-1}, v...)) < 0 {
		return ""
	}
	return " (" + joined(v, func(x float64) string {
		if x < 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f", x)
	}) + " connections opened)"
}

// depCPU is the share of the time from `from` to `to` during which
// target waited for a CPU in h, and the CPUs it used; ok is false when
// the kernel did not say.
func depCPU(h *sim.History, target string, from, to time.Duration) (waited, used float64, ok bool) {
	d, ok := dependencyOf(h, target)
	if !ok {
		return 0, 0, false
	}
	w, u := d.WaitedBetween(from, to), d.UsedBetween(from, to)
	return w, u, w >= 0 && u >= 0
}
