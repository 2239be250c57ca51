package sim

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/shakedown/shakedown/toxics"
)

// Step is one fault in a schedule: Fault holds on Target from At (an
// offset from the start of the run) for For. A Restart takes no time;
// its For is ignored.
type Step struct {
	At     time.Duration
	For    time.Duration
	Target string
	Fault  toxics.Fault
}

// End is the offset at which the step's fault is reverted: At+For, or At
// for a Restart, which takes no time.
func (s Step) End() time.Duration {
	if s.Fault != nil && s.Fault.Kind() == toxics.KindRestart {
		return s.At
	}
	return s.At + s.For
}

// String is the step's one-line form: "+1s for 2s db blackhole()".
func (s Step) String() string {
	f := "<nil>"
	if s.Fault != nil {
		f = s.Fault.String()
	}
	sign := "+"
	if s.At < 0 {
		sign = ""
	}
	return fmt.Sprintf("%s%v for %v %s %s", sign, s.At, s.For, s.Target, f)
}

type stepJSON struct {
	At     string      `json:"at"`
	For    string      `json:"for"`
	Target string      `json:"target"`
	Fault  toxics.Spec `json:"fault"`
}

// MarshalJSON writes {"at":"1s","for":"2s","target":"db","fault":{...}}.
func (s Step) MarshalJSON() ([]byte, error) {
	return json.Marshal(stepJSON{At: s.At.String(), For: s.For.String(), Target: s.Target, Fault: toxics.Spec{Fault: s.Fault}})
}

// UnmarshalJSON reads the form MarshalJSON writes. "at", "target" and
// "fault" are required, and so is "for" except for a restart.
func (s *Step) UnmarshalJSON(data []byte) error {
	var j stepJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return err
	}
	at, err := parseDuration("at", j.At)
	if err != nil {
		return err
	}
	if j.Target == "" {
		return fmt.Errorf("field \"target\" is required")
	}
	if j.Fault.Fault == nil {
		return fmt.Errorf("field \"fault\" is required (such as {\"kind\":\"blackhole\"})")
	}
	var dur time.Duration
	if j.For != "" || j.Fault.Fault.Kind() != toxics.KindRestart {
		// A restart takes no time, so it may leave "for" out.
		if dur, err = parseDuration("for", j.For); err != nil {
			return err
		}
	}
	*s = Step{At: at, For: dur, Target: j.Target, Fault: j.Fault.Fault}
	return nil
}

func parseDuration(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("field %q is required (a duration such as \"1.5s\")", field)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("field %q: %q is not a duration such as \"1.5s\"", field, s)
	}
	return d, nil
}

// Schedule is an ordered list of steps. Its JSON form, written by hand or
// by a failing check, is
//
//	{"steps":[{"at":"1s","for":"2s","target":"db","fault":{"kind":"blackhole"}}]}
type Schedule struct {
	Steps []Step `json:"steps"`
}

// Horizon is the offset at which the last fault is reverted.
func (s Schedule) Horizon() time.Duration {
	var h time.Duration
	for _, st := range s.Steps {
		h = max(h, st.End())
	}
	return h
}

// String is the schedule's compact text form, one step a line.
func (s Schedule) String() string {
	if len(s.Steps) == 0 {
		return "(no faults)"
	}
	lines := make([]string, len(s.Steps))
	for i, st := range s.Steps {
		lines[i] = fmt.Sprintf("%d: %s", i, st)
	}
	return strings.Join(lines, "\n")
}

// Sorted returns a copy of s with its steps in the order the Runner applies
// them: by At, then by position.
func (s Schedule) Sorted() Schedule {
	steps := slices.Clone(s.Steps)
	slices.SortStableFunc(steps, func(a, b Step) int { return cmp.Compare(a.At, b.At) })
	return Schedule{Steps: steps}
}

// StepError names the step of a schedule that is at fault.
type StepError struct {
	Index int
	Step  Step
	Err   error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("sim: schedule step %d (%s): %v", e.Index, e.Step, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// Validate checks s against the targets it will run on: every step names a
// known target that supports its fault, has a valid fault, a non-negative
// offset and duration, and no two steps that cannot hold at once overlap on
// the same target (two node faults, two link faults of the same kind and
// direction, down and reset, or two partitions). It returns every problem,
// joined.
//
// Targets themselves are checked too: a nil target or two targets with the
// same name is an error.
func (s Schedule) Validate(targets []Target) error {
	var errs []error
	byName := make(map[string]Target, len(targets))
	names := make([]string, 0, len(targets))
	for i, t := range targets {
		if t == nil {
			errs = append(errs, fmt.Errorf("sim: target %d is nil", i))
			continue
		}
		name := t.Name()
		if _, dup := byName[name]; dup {
			errs = append(errs, fmt.Errorf("sim: target %d: another target is also named %q", i, name))
			continue
		}
		byName[name] = t
		names = append(names, name)
	}
	bad := func(i int, format string, args ...any) {
		errs = append(errs, &StepError{Index: i, Step: s.Steps[i], Err: fmt.Errorf(format, args...)})
	}
	for i, st := range s.Steps {
		switch {
		case st.At < 0:
			bad(i, "negative offset %v", st.At)
		case st.For < 0:
			bad(i, "negative duration %v", st.For)
		case st.At > math.MaxInt64-st.For:
			bad(i, "offset %v plus duration %v overflows", st.At, st.For)
		}
		if err := toxics.Validate(st.Fault); err != nil {
			bad(i, "%w", err)
			continue
		}
		t, ok := byName[st.Target]
		if !ok {
			bad(i, "unknown target %q (targets: %s)", st.Target, strings.Join(names, ", "))
			continue
		}
		why := validateFault(t, st.Fault)
		if !t.Supports(st.Fault.Kind()) {
			what := "link"
			if st.Fault.Kind().IsNode() {
				what = "node"
			} else if st.Fault.Kind().IsNetwork() {
				what = "network"
			} else if st.Fault.Kind().IsDNS() {
				what = "DNS"
			} else if st.Fault.Kind().IsClock() {
				what = "clock"
			}
			if st.Fault.Kind().IsClock() && why == nil {
				// A real dependency's clock is not the test's to set.
				why = errClockSimOnly
			}
			if why != nil {
				bad(i, "target %q does not support the %s fault %s: %w", st.Target, what, st.Fault.Kind(), why)
			} else {
				bad(i, "target %q does not support the %s fault %s", st.Target, what, st.Fault.Kind())
			}
		} else if why != nil {
			bad(i, "target %q cannot apply %s: %w", st.Target, st.Fault, why)
		}
	}
	for i, a := range s.Steps {
		for j := i + 1; j < len(s.Steps); j++ {
			b := s.Steps[j]
			if a.Target != b.Target || a.Fault == nil || b.Fault == nil || a.At < 0 || b.At < 0 ||
				a.For < 0 || b.For < 0 || a.At > math.MaxInt64-a.For || b.At > math.MaxInt64-b.For || !overlap(a, b) {
				continue
			}
			if conflict(a.Fault, b.Fault) {
				bad(j, "overlaps step %d (%s) on target %q and the two cannot hold at once", i, a, a.Target)
			}
		}
	}
	return errors.Join(errs...)
}

func overlap(a, b Step) bool {
	aEnd, bEnd := a.End(), b.End()
	if a.Fault.Kind() == toxics.KindRestart || b.Fault.Kind() == toxics.KindRestart {
		// A restart is a point in time; it clashes with a node fault that holds then.
		return a.At <= bEnd && b.At <= aEnd
	}
	return a.At < bEnd && b.At < aEnd
}

func conflict(a, b toxics.Fault) bool {
	ka, kb := a.Kind(), b.Kind()
	switch {
	case ka.IsNetwork() || kb.IsNetwork():
		// Two partitions would cut one network two ways at once; a
		// partition composes with link and node faults.
		return ka == kb
	case ka.IsNode() && kb.IsNode():
		return true
	case ka.IsNode() || kb.IsNode():
		return false
	case (ka == toxics.KindDown || ka == toxics.KindReset) && (kb == toxics.KindDown || kb == toxics.KindReset):
		return true
	case ka != kb:
		return false
	}
	da, db := toxics.DirectionOf(a), toxics.DirectionOf(b)
	return da == toxics.Both || db == toxics.Both || da == db
}

// ParseSchedule decodes a schedule from its JSON form. It checks the form
// only; call Validate to check it against targets. An error in a step names
// the step's index:
//
//	sim: parse schedule: step 1: field "for": "2 s" is not a duration such as "1.5s"
func ParseSchedule(data []byte) (Schedule, error) {
	var raw struct {
		Steps []json.RawMessage `json:"steps"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return Schedule{}, fmt.Errorf("sim: parse schedule: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Schedule{}, fmt.Errorf("sim: parse schedule: trailing data after the JSON object")
	}
	if raw.Steps == nil {
		return Schedule{}, nil
	}
	s := Schedule{Steps: make([]Step, len(raw.Steps))}
	for i, r := range raw.Steps {
		if err := s.Steps[i].UnmarshalJSON(r); err != nil {
			return Schedule{}, fmt.Errorf("sim: parse schedule: step %d: %w", i, err)
		}
	}
	return s, nil
}
