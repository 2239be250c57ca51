package properties

import (
	"fmt"
	"math"
	"strings"

	"github.com/shakedown/shakedown/sim"
)

// A failure that came and went on a contended machine is believed only
// when its schedule breaks more often than fault-free runs beside it.
//
// On a shared runner whose CPUs other work has, a resilient service's
// timing bounds (a Recovery, an Isolation, a latency quantile) break now
// and then without any fault: a dependency the machine starves answers
// late, a deadline fires, a breaker opens. A schedule that broke once and
// then in some of its reruns only may be the machine's as much as the
// schedule's, and neither its reruns nor one control run can tell which:
// the machine's state changes from one run to the next. So, when the
// starved rule and the fault-free control have not explained it, a flaky
// failure of timing bounds on a contended machine (CPU pressure at least
// starvedMachine in every run that broke) is put to a test. Its reruns
// are one sample (the run that broke first is left out: it was picked
// because it broke); fault-free control runs, each judged as the control
// judges (it broke an invariant the schedule broke, has its bound inside
// its noise floor, or breaks it with the failing run's fault times laid
// over it), are the other. One more rerun and one more control are run,
// in turns, while a one-sided Fisher exact test could still find the
// schedule's rate greater than the controls' at noiseAlpha within
// noisePairs more pairs. The failure stands, flaky, once the test finds
// it so; otherwise it is set aside as Unjudged (Result.Slower), with both
// counts: the schedule could not be told from the machine's noise.
//
// What this cannot see: a service that breaks a timing bound in some
// runs of a schedule and not others (a race in its reconnect path, say)
// looks, on a contended machine, like the machine's noise, unless it
// breaks in most of its runs. It is Unjudged there, not passed (Check
// logs it and summary.json lists it), and on an idle machine the same
// failure is flaky and fails the test. Invariants that timing does not
// decide (lost writes, linearizability, leaks, pools, storms, a user's
// Func) are never put to this test: a flaky failure of one stands.
const (
	noiseAlpha = 0.05
	noisePairs = 4
)

// noise puts it, a flaky failure (subject names it in the log) that the
// fault-free control c (nil when none ran) did not explain, to the test
// above, and returns why it is the machine's ("" when it stands).
func (x *explorer) noise(it, c *Iteration, subject string) string {
	if c == nil || !contended(it) {
		return ""
	}
	names := it.Findings.brokenNames()
	if len(names) == 0 || !x.only(it, timing) {
		return ""
	}
	noisy := func(run *Iteration) bool {
		now := measure(run.History)
		for _, name := range names {
			if x.explains(it, run, now, name) != "" {
				return true
			}
		}
		return false
	}
	first := sample{runs: 1}
	if noisy(c) {
		first.broken++
	}
	return x.apart(it, subject, "fault-free runs beside it (judged with its fault times)", names, first,
		func() bool { return x.only(it, timing) },
		func(pair int) (bool, string, bool) {
			c := x.controlRun(sim.Schedule{}, fmt.Sprintf("%s: telling it from the machine's noise, pair %d, no faults", subject, pair))
			if c == nil {
				return false, "", true
			}
			return noisy(c), "", false
		})
}

// sample counts control runs, and those that broke as the schedule did.
type sample struct{ broken, runs int }

// apart tells it's schedule from controls by the test above. Given the
// controls run so far (first), it runs one more rerun of it and one more
// control, in turns, while a one-sided Fisher exact test could still find
// the schedule's rate of breaking greater than the controls' at
// noiseAlpha within noisePairs more pairs. still says whether what it and
// its reruns broke is still what the test may judge (a rerun that broke
// more stands). next runs pair's control and says whether it broke as the
// schedule did; when done, it decided the verdict by itself (why, "" when
// the failure stands: also when no control could run). apart returns ""
// when the failure stands, and why it is the machine's when the test
// cannot find the schedule's rate the greater. subject names the failure
// in the log, controls the control runs ("fault-free runs beside it"),
// names the invariants it broke.
func (x *explorer) apart(it *Iteration, subject, controls string, names []string, first sample, still func() bool,
	next func(pair int) (bad bool, why string, done bool)) string {
	s := first
	for left := noisePairs; ; left-- {
		p, verdict := noiseLook(it.Reproduced, it.Reruns, s, left)
		if verdict == believed {
			x.t.Logf("shakedown: %s: broke again in %d of %d reruns, %s in %d of %d (p = %.3f): the schedule's, not the machine's noise",
				subject, it.Reproduced, it.Reruns, controls, s.broken, s.runs, p)
			return ""
		}
		if verdict == notApart {
			more := fmt.Sprintf("after %d more pairs", noisePairs)
			if left > 0 {
				more = fmt.Sprintf("and %d more pairs could not bring it to %.2f", left, noiseAlpha)
				if left == 1 {
					more = fmt.Sprintf("and one more pair could not bring it to %.2f", noiseAlpha)
				}
			}
			return fmt.Sprintf("the machine's noise, not the schedule: on a contended machine (CPU pressure %s in the runs that broke), the schedule (%s), which broke %s, broke again in %d of %d reruns, and %s in %d of %d: a one-sided Fisher exact test does not find the schedule's rate the greater (p = %.2f, %s)",
				pressuresOf(brokenRuns(it)), oneLineOr(it.Schedule), strings.Join(names, "; "), it.Reproduced, it.Reruns, controls, s.broken, s.runs, p, more)
		}
		pair := noisePairs - left + 1
		reruns := it.Reruns
		x.confirm(it, 1, fmt.Sprintf("%s: telling it from the machine's noise, pair %d, the schedule again", subject, pair), broke)
		if it.Reruns == reruns || !still() {
			return "" // no time left, a fatal error, or it broke more than the test judges: the failure stands
		}
		bad, why, done := next(pair)
		if done {
			return why
		}
		s.runs++
		if bad {
			s.broken++
		}
	}
}

// What a look of the noise test decides.
const (
	undecided = iota // one more pair
	believed         // the schedule's rate is the greater: the failure stands
	notApart         // no pair left could find it so: the machine's noise
)

// noiseLook is one look of the noise test at a of n1 reruns against s,
// with left more pairs allowed: the test's p and what it decides.
//
// The test may stop at any of its noisePairs+1 looks, which lets chance
// more ways to believe a schedule no worse than the machine's noise than
// one look at noiseAlpha would; the exact Fisher test is conservative
// enough on such small counts that the whole test's level stays under
// noiseAlpha all the same (TestNoiseTestLevel works it out over every
// path of the looks).
func noiseLook(a, n1 int, s sample, left int) (float64, int) {
	p := fisherGreater(a, n1, s.broken, s.runs)
	switch {
	case p <= noiseAlpha:
		return p, believed
	case left == 0 || fisherGreater(a+left, n1+left, s.broken, s.runs+left) > noiseAlpha:
		return p, notApart
	}
	return p, undecided
}

// only says whether every invariant that it or its reruns broke is one
// that kind accepts (timing, say): a rerun that lost a write stands
// however noisy the machine.
func (x *explorer) only(it *Iteration, kind func(Invariant) bool) bool {
	for _, r := range append([]*Iteration{it}, it.again...) {
		for _, f := range r.Findings {
			if f.Verdict != Broken {
				continue
			}
			if inv, ok := invariantNamed(x.cfg.Invariants, f.Invariant); !ok || !kind(inv) {
				return false
			}
		}
	}
	return true
}

// contended says whether the machine's CPU pressure was at least
// starvedMachine in every run of it that broke (false when a run's
// machine is unknown).
func contended(it *Iteration) bool {
	for _, r := range brokenRuns(it) {
		if r.History == nil || r.History.Machine == nil || r.History.Machine.CPUPressure < starvedMachine {
			return false
		}
	}
	return true
}

// brokenRuns is it and those of its reruns that broke.
func brokenRuns(it *Iteration) []*Iteration {
	runs := []*Iteration{it}
	for _, r := range it.again {
		if broke(r) {
			runs = append(runs, r)
		}
	}
	return runs
}

// invariantNamed is the invariant of invs named name.
func invariantNamed(invs []Invariant, name string) (Invariant, bool) {
	for _, inv := range invs {
		if inv.Name() == name {
			return inv, true
		}
	}
	return nil, false
}

// timing says whether inv's verdict turns on how long things took: a
// latency or recovery bound, a deadline, an error rate (timeouts are
// errors), a wait for a pool. These a machine's noise can break.
func timing(inv Invariant) bool {
	switch inv.(type) {
	case Recovery, *Recovery, Isolation, *Isolation, LatencyQuantile, *LatencyQuantile,
		MaxLatency, *MaxLatency, FailFast, *FailFast, ErrorRate, *ErrorRate, AcquireWait, *AcquireWait:
		return true
	}
	return false
}

// fisherGreater is the one-sided p-value of Fisher's exact test that the
// rate of the first sample (a of n1) is greater than the second's (b of
// n2): the chance, with the a+b events shared at random among all n1+n2
// runs, that the first sample gets a or more of them.
func fisherGreater(a, n1, b, n2 int) float64 {
	n, k := n1+n2, a+b
	p := 0.0
	for i := a; i <= min(k, n1); i++ {
		p += math.Exp(lchoose(k, i) + lchoose(n-k, n1-i) - lchoose(n, n1))
	}
	return min(p, 1)
}

// lchoose is the natural logarithm of n choose k.
func lchoose(n, k int) float64 {
	if k < 0 || k > n {
		return math.Inf(-1)
	}
	a, _ := math.Lgamma(float64(n + 1))
	b, _ := math.Lgamma(float64(k + 1))
	c, _ := math.Lgamma(float64(n - k + 1))
	return a - b - c
}
