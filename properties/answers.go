package properties

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/shakedown/shakedown/sim"
)

// Answers: what a dependency's clients asked of it, and how long it kept
// them waiting, as its Link saw them (sim.DependencyCPU.Answered and
// AnswerTime; harness's Links time every exchange).
//
// Rule 9 (unscheduled.go) sets a failure aside as a second fault of the
// machine's: a dependency the schedule did not fault, starved of CPU,
// that slowed the ops which broke the bound; rule 6 (starved.go) sets a
// flaky failure aside when its runs that broke starved a dependency that
// its runs that held fed. Their CPU figures say the dependency was
// starved and whether it worked more than the runs it is compared with;
// its Link says two things the CPU cannot:
//
//   - whether the dependency answered late where the bound broke: its
//     requests waited at least starvedRatio times as long on average,
//     and lateGap more, as in the runs compared with (and, for rule 9,
//     in the same run before its first fault), or it held every request
//     it was asked there unanswered (none answered, some waiting at the
//     end of a 100 ms); for a Recovery, "where the bound broke" ends
//     with the last op that broke it (Recovery.brokeBy). A dependency
//     that answered as it always did, or that nobody asked anything
//     there (none answered, none waiting), slowed nothing, however
//     starved: the ops that broke failed of
//     something else (a service with no fallback for the faulted one,
//     whose ops fail before they ever reach the starved one), and the
//     failure stands;
//   - whether its clients asked more of it: requests answered a second,
//     against the runs compared with. A starved database burns more CPU
//     on the same requests (its processes contend for what CPU they get,
//     and a burst of them costs more than the same spread out), so more
//     CPU alone, on a contended machine, is no storm; a client that
//     retries or redials in a loop sends more requests, and that stands
//     whatever the CPU it cost.
//
// Where a target's Link did not time its answers (a target that is no
// sim.AnswerTimer, or a history recorded before they were), the rule goes
// by the CPU alone, as it did.

// lateGap is the least an average answer must be later than the runs
// compared with for a dependency to count as answering late: less than
// this slows no bound a check sets.
const lateGap = 5 * time.Millisecond

// askedSlack is the requests a second beyond starvedMoreWork times the
// most of the runs compared with that a dependency's clients may ask of
// it and still ask no more: a few at low rates are noise.
const askedSlack = 1.0

// answerFigures is what target's Link saw in one run, over one part of
// it: the requests answered there, a second, and their mean wait.
type answerFigures struct {
	n    float64 // requests answered; -1 unknown
	rate float64 // requests answered a second; -1 unknown
	wait time.Duration
}

// answersOver is what target's Link saw over spans of h; n and rate are
// -1 where its Link did not time them.
func answersOver(h *sim.History, target string, spans []interval) answerFigures {
	unknown := answerFigures{n: -1, rate: -1}
	d, ok := dependencyOf(h, target)
	if !ok {
		return unknown
	}
	f := unknown
	var waited float64 // seconds, summed
	var length time.Duration
	for _, sp := range spans {
		to := min(sp.to, h.Duration)
		if to <= sp.from {
			continue
		}
		c, w := d.AnsweredBetween(sp.from, to)
		if c < 0 {
			continue
		}
		f.n, waited, length = max(f.n, 0)+c, waited+c*w.Seconds(), length+to-sp.from
	}
	if f.n < 0 || length <= 0 {
		return unknown
	}
	if f.n > 0 {
		f.wait = time.Duration(waited / f.n * float64(time.Second))
	}
	f.rate = f.n / length.Seconds()
	return f
}

// waitingOver is the most requests to target that waited for their
// answers at the end of a 100 ms of spans of h, or -1 where not known.
func waitingOver(h *sim.History, target string, spans []interval) float64 {
	d, ok := dependencyOf(h, target)
	if !ok {
		return -1
	}
	most := -1.0
	for _, sp := range spans {
		most = max(most, d.WaitingBetween(sp.from, min(sp.to, h.Duration)))
	}
	return most
}

// answersBefore is answersOver before h's first fault, when that came
// unscheduledBefore or more into it (as usedBeforeFaults).
func answersBefore(h *sim.History, target string) answerFigures {
	first, ok := firstFault(h)
	if !ok || first < unscheduledBefore {
		return answerFigures{n: -1, rate: -1}
	}
	return answersOver(h, target, []interval{{0, first}})
}

// compared is the most of the known figures: the busiest rate and the
// longest wait of the runs a run that broke is compared with; known is
// false when none is known.
func compared(fs ...answerFigures) (most answerFigures, known bool) {
	most.n, most.rate = -1, -1
	for _, f := range fs {
		if f.rate < 0 {
			continue
		}
		known = true
		most.rate, most.wait = max(most.rate, f.rate), max(most.wait, f.wait)
	}
	return most, known
}

// late says why target did not answer late where got was seen, over
// spans of h (what names them: "after the heal"; which names h: "run 2
// of those that broke"), against ref, the runs compared with (named by
// against: "in the runs that held"); "" when it did, or when its answers
// were not timed (the rule then goes by the CPU alone).
func late(h *sim.History, target string, spans []interval, got, ref answerFigures, known bool, what, which, against string) string {
	switch {
	case got.n < 0 || !known:
		return ""
	case got.n == 0 && waitingOver(h, target, spans) > 0:
		return "" // asked, and held every request unanswered there: late
	case got.n == 0:
		return fmt.Sprintf("%s: answered no request %s, and none waited (%s): the ops that broke did not wait for it", target, what, which)
	case float64(got.wait) < starvedRatio*float64(ref.wait) || got.wait-ref.wait < lateGap:
		return fmt.Sprintf("%s: answered in %v on average %s (%s), against %v %s: not late, so it slowed nothing", target, roundWait(got.wait), what, which, roundWait(ref.wait), against)
	}
	return ""
}

// answeredNote is what a rule's reason says of the answers: ", kept its
// requests waiting (on average run 1: 80ms against 5ms <against>) while
// asked no more than <than> (...)", or "" where they were not timed.
func answeredNote(lates, asked []string, against, than string) string {
	note := ""
	if len(lates) > 0 {
		note = ", kept its requests waiting (on average " + strings.Join(lates, "; ") + " " + against + ")"
	}
	if len(asked) > 0 {
		note += " while asked no more than " + than + " (" + strings.Join(asked, "; ") + ")"
	}
	return note
}

// brokeRun is "run 2 of those that broke".
func brokeRun(i int) string { return fmt.Sprintf("run %d of those that broke", i+1) }

// askedNoMore says whether target's clients asked no more of it where got
// was seen than ref, the runs compared with, allows, and the figures that
// say so ("" when its answers were not timed there or in ref).
func askedNoMore(got, ref answerFigures, known bool) (bool, string) {
	if got.rate < 0 || !known {
		return false, ""
	}
	bound := starvedMoreWork*ref.rate + askedSlack
	if got.rate > bound {
		return false, fmt.Sprintf("asked %.1f requests a second, more than the %.1f the runs compared with allow: more work", got.rate, bound)
	}
	return true, fmt.Sprintf("asked %.1f requests a second against %.1f in the runs compared with, answering each in %v on average against %v: the same work, dearer on a starved CPU", got.rate, ref.rate, roundWait(got.wait), roundWait(ref.wait))
}

func roundWait(d time.Duration) time.Duration {
	if d >= 10*time.Millisecond {
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Microsecond)
}

// brokeBy is when the last op that broke r in h ended: up to there the
// client had not recovered, and its dependencies' answers there are what
// it waited on (after it, a recovered client's quick answers would water
// a slow reconnect's down); h.Duration when none broke it.
func (r Recovery) brokeBy(h *sim.History) time.Duration {
	heal, why := lastHeal(h)
	if why != "" {
		return h.Duration
	}
	deadline, _ := r.deadline(h, heal)
	end := time.Duration(-1)
	for _, op := range r.late(h, deadline) {
		if op.Outcome != sim.OK {
			end = max(end, op.End)
		}
	}
	if end < 0 {
		return h.Duration
	}
	return end
}

// recoveriesBrokeBy is the latest brokeBy in h of the Recovery bounds
// among invs named in names (h.Duration when none is one).
func recoveriesBrokeBy(invs []Invariant, names []string) func(h *sim.History) time.Duration {
	return func(h *sim.History) time.Duration {
		end, found := time.Duration(0), false
		for _, name := range names {
			inv, ok := invariantNamed(invs, name)
			if !ok {
				continue
			}
			if rec, ok := asRecovery(inv); ok {
				end, found = max(end, rec.brokeBy(h)), true
			}
		}
		if !found {
			return h.Duration
		}
		return end
	}
}

// upTo is the parts of spans before until(h), the end of what broke
// (all of them when until is nil).
func upTo(spans []interval, h *sim.History, until func(h *sim.History) time.Duration) []interval {
	if until == nil {
		return spans
	}
	return subtract(spans, interval{until(h), math.MaxInt64})
}

// wholeRun is a run's every moment: the span of a baseline, which has no
// faults.
var wholeRun = []interval{{0, math.MaxInt64}}
