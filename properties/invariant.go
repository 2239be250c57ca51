package properties

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shakedown/shakedown/sim"
)

// Invariant is one question asked of a run. Check is a pure function of
// the History: it returns nil when the invariant held, [Violations] when it
// broke, and a [*NoEvidence] when the history could not answer (no ops in
// the window it looks at, no fault that took effect). The invariants in
// this package are plain structs; any type with these two methods will do.
type Invariant interface {
	Name() string
	Check(h *sim.History) error
}

// Func makes an Invariant of a name and a function.
func Func(name string, check func(h *sim.History) error) Invariant {
	return funcInvariant{name, check}
}

type funcInvariant struct {
	name  string
	check func(*sim.History) error
}

func (f funcInvariant) Name() string { return f.name }
func (f funcInvariant) Check(h *sim.History) error {
	if f.check == nil {
		return fmt.Errorf("properties: invariant %q has no check function", f.name)
	}
	return f.check(h)
}

// Violation is one way an invariant broke: what, when, and by how much.
type Violation struct {
	// Invariant names the invariant, with its parameters ("p99 latency
	// <= 300ms").
	Invariant string
	// Window says where on the timeline ("during fault 0: db blackhole()
	// at 1s..3s", "after the last heal at 3s", "op 17").
	Window string
	// At is the offset from the start of the run where it happened.
	At time.Duration
	// Got is what the history showed and Want the bound, both in words
	// ("2.31s over 412 ops", "<= 300ms"); Excess says by how much.
	Got, Want, Excess string
}

func (v Violation) String() string {
	s := fmt.Sprintf("%s: %s at %v: got %s, want %s", v.Invariant, v.Window, v.At, v.Got, v.Want)
	if v.Excess != "" {
		s += " (over by " + v.Excess + ")"
	}
	return s
}

// Violations is the error an invariant returns when it broke: every
// violation it found, in timeline order.
type Violations []Violation

// maxListed bounds how many violations an error message spells out.
const maxListed = 10

func (vs Violations) Error() string {
	var b strings.Builder
	for i, v := range vs {
		if i == maxListed {
			fmt.Fprintf(&b, "\n... and %d more", len(vs)-maxListed)
			break
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(v.String())
	}
	return b.String()
}

// NoEvidence is the error an invariant returns when the history holds
// nothing it could judge: it neither held nor broke.
type NoEvidence struct {
	Invariant string
	Reason    string
}

func (e *NoEvidence) Error() string {
	return fmt.Sprintf("%s: no evidence: %s", e.Invariant, e.Reason)
}

// Verdict is the outcome of one invariant on one run.
type Verdict uint8

const (
	// Held: the invariant was judged and held.
	Held Verdict = iota
	// Broken: the invariant was judged and broke.
	Broken
	// Unjudged: the history had no evidence either way (see [NoEvidence]).
	Unjudged
)

func (v Verdict) String() string {
	switch v {
	case Held:
		return "held"
	case Broken:
		return "broken"
	case Unjudged:
		return "no evidence"
	}
	return fmt.Sprintf("Verdict(%d)", uint8(v))
}

// VerdictOf classifies an error returned by [Invariant.Check]: nil is
// Held, a *NoEvidence is Unjudged, anything else (Violations, or an error
// of the invariant itself such as a bad parameter) is Broken.
func VerdictOf(err error) Verdict {
	var ne *NoEvidence
	switch {
	case err == nil:
		return Held
	case errors.As(err, &ne):
		return Unjudged
	default:
		return Broken
	}
}

// Finding is the verdict of one invariant on one run.
type Finding struct {
	Invariant string
	Verdict   Verdict
	// Err is what Check returned (nil when the invariant held).
	Err error
}

// Findings are the verdicts of every invariant on one run.
type Findings []Finding

// Evaluate checks every invariant against h. A panic inside an invariant
// is recovered and reported as a Broken finding. A nil h or invariant is
// reported as such.
func Evaluate(h *sim.History, invs []Invariant) Findings {
	out := make(Findings, 0, len(invs))
	for i, inv := range invs {
		if inv == nil {
			out = append(out, Finding{Invariant: fmt.Sprintf("invariant %d", i), Verdict: Broken, Err: fmt.Errorf("properties: invariant %d is nil", i)})
			continue
		}
		err := safeCheck(inv, h)
		out = append(out, Finding{Invariant: inv.Name(), Verdict: VerdictOf(err), Err: err})
	}
	return out
}

func safeCheck(inv Invariant, h *sim.History) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("properties: invariant %q panicked: %v", inv.Name(), p)
		}
	}()
	if h == nil {
		return fmt.Errorf("properties: invariant %q: history is nil", inv.Name())
	}
	return inv.Check(h)
}

// Broken reports whether any invariant broke.
func (fs Findings) Broken() bool {
	for _, f := range fs {
		if f.Verdict == Broken {
			return true
		}
	}
	return false
}

// brokenNames are the names of the invariants that broke, in order.
func (fs Findings) brokenNames() []string {
	var names []string
	for _, f := range fs {
		if f.Verdict == Broken {
			names = append(names, f.Invariant)
		}
	}
	return names
}

// broken returns the finding of the invariant named name when it broke.
func (fs Findings) broken(name string) (Finding, bool) {
	for _, f := range fs {
		if f.Invariant == name && f.Verdict == Broken {
			return f, true
		}
	}
	return Finding{}, false
}

// String is a multi-line text of the findings, broken ones with their
// violations.
func (fs Findings) String() string {
	var b strings.Builder
	for i, f := range fs {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s: %s", f.Invariant, f.Verdict)
		if f.Err != nil && f.Verdict != Held {
			msg := f.Err.Error()
			b.WriteString("\n    " + strings.ReplaceAll(msg, "\n", "\n    "))
		}
	}
	return b.String()
}

// Hooks an invariant of this package offers so that a check can find its
// mistakes before any run (see checkInvariant). Each is optional; a Func
// or a user's own Invariant has none.
type (
	// validator: the invariant's parameters alone are sound (a fraction
	// in [0, 1], a positive bound, a known window). Check calls it first
	// too, so that Evaluate reports the same error.
	validator interface{ validate() error }
	// kindNamer: the op kinds the invariant names; each must be a kind of
	// the workload.
	kindNamer interface{ kinds() []string }
	// targetNamer: the targets the invariant names; each must be a
	// target of the World.
	targetNamer interface{ targets() []string }
	// sampleReader: the sample names the invariant reads; each must come
	// from a sampler of the World (sampler "pg" records "pg" and
	// "pg.<key>").
	sampleReader interface{ samples() []string }
	// kindChecker: the invariant must interpret every op kind it judges
	// (Linearizable); it says which of the workload's kinds it cannot.
	kindChecker interface{ checkKinds(workload []string) error }
)

// checkInvariant returns the mistakes of inv that show before any run,
// given the op kinds of the World's workload, the names of its targets and
// of its samplers: bad parameters, kinds, targets or samples the World
// lacks, kinds the invariant cannot interpret. A nil slice skips the
// checks against it (an unknown World). The errors name the invariant.
func checkInvariant(inv Invariant, kinds, targets, samplers []string) []error {
	if inv == nil {
		return []error{errors.New("properties: an invariant is nil")}
	}
	var errs []error
	if v, ok := inv.(validator); ok {
		if err := v.validate(); err != nil {
			return []error{err} // the rest reads the parameters just found wrong
		}
	}
	missing := func(what string, named, have []string, hint string) {
		if have == nil {
			return
		}
		for _, n := range named {
			if !slices.Contains(have, n) {
				errs = append(errs, fmt.Errorf("properties: %s: %s %q is not one of the World's %v%s", inv.Name(), what, n, have, hint))
			}
		}
	}
	if k, ok := inv.(kindNamer); ok {
		missing("op kind", k.kinds(), kinds, "")
	}
	if t, ok := inv.(targetNamer); ok {
		missing("target", t.targets(), targets, "")
	}
	if s, ok := inv.(sampleReader); ok && samplers != nil {
		for _, name := range s.samples() {
			if !slices.ContainsFunc(samplers, func(s string) bool { return name == s || strings.HasPrefix(name, s+".") }) {
				errs = append(errs, fmt.Errorf("properties: %s: reads samples %q, but no sampler of the World records them (samplers: %v)", inv.Name(), name, samplers))
			}
		}
	}
	if c, ok := inv.(kindChecker); ok && kinds != nil {
		if err := c.checkKinds(kinds); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// invalid makes the error of an invariant's bad parameters: each non-empty
// problem, under the invariant's name. It returns nil when there is none.
func invalid(name string, problems ...string) error {
	var ps []string
	for _, p := range problems {
		if p != "" {
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		return nil
	}
	return fmt.Errorf("properties: %s: %s", name, strings.Join(ps, "; "))
}

// fraction checks that v, a share of ops, is in [0, 1]; a percentage is
// the usual mistake.
func fraction(field string, v float64) string {
	switch {
	case v >= 0 && v <= 1:
		return ""
	case v > 1 && v <= 100:
		return fmt.Sprintf("%s = %v is not a fraction in [0, 1]: did you mean %v?", field, v, v/100)
	}
	return fmt.Sprintf("%s = %v is not a fraction in [0, 1]", field, v)
}

// quantileOK checks a quantile in (0, 1].
func quantileOK(field string, q float64) string {
	switch {
	case q > 0 && q <= 1:
		return ""
	case q >= 10 && q <= 100:
		return fmt.Sprintf("%s = %v is not in (0, 1]: did you mean %v?", field, q, q/100)
	}
	return fmt.Sprintf("%s = %v is not in (0, 1]: 0.99 for p99, 1 for the maximum", field, q)
}

// positive and nonNegative check durations and counts.
func positive[T int | float64 | time.Duration](field string, v T) string {
	if v > 0 {
		return ""
	}
	return fmt.Sprintf("%s = %v must be positive", field, v)
}

func nonNegative[T int | float64 | time.Duration](field string, v T) string {
	if v >= 0 {
		return ""
	}
	return fmt.Sprintf("%s = %v must not be negative", field, v)
}

// phaseOK checks a window.
func phaseOK(w sim.Phase) string {
	if w <= sim.After {
		return ""
	}
	return fmt.Sprintf("Window = %v is not one of sim.Overall, sim.Before, sim.During, sim.After", w)
}

// kindsOK checks a list of op kinds.
func kindsOK(field string, kinds []string) string {
	for i, k := range kinds {
		if k == "" {
			return fmt.Sprintf("%s[%d] is empty", field, i)
		}
	}
	return ""
}

// required checks a name the invariant cannot do without.
func required(field, v, what string) string {
	if v != "" {
		return ""
	}
	return fmt.Sprintf("%s is empty: %s", field, what)
}
