package properties

import (
	"errors"
	"fmt"
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
