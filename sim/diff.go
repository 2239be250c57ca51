package sim

import "fmt"

// Diff describes the first difference between two histories, or returns
// "" when they are the same op for op: the same ops (ID, kind, times,
// outcome, error, input and output), the same faults applied and reverted
// at the same offsets, and the same duration. It is how a simulated run is
// checked for determinism: run a schedule twice with the same seed in a
// [testing/synctest] bubble and compare.
//
// Samples are not compared: a sampler may read the process rather than
// the simulation ([Goroutines] counts every goroutine of the test
// binary). Began is not compared either: it is the wall-clock start.
func Diff(a, b *History) string {
	switch {
	case a == nil && b == nil:
		return ""
	case a == nil || b == nil:
		return fmt.Sprintf("one history is nil (%v, %v)", a != nil, b != nil)
	case a.Seed != b.Seed:
		return fmt.Sprintf("seed %d, then %d", a.Seed, b.Seed)
	case a.Schedule.String() != b.Schedule.String():
		return fmt.Sprintf("schedule\n%s\nthen\n%s", a.Schedule, b.Schedule)
	}
	for i := range min(len(a.Ops), len(b.Ops)) {
		if d := diffOp(a.Ops[i], b.Ops[i]); d != "" {
			return fmt.Sprintf("op %d (%d of %d ops): %s", a.Ops[i].ID, i+1, len(a.Ops), d)
		}
	}
	if len(a.Ops) != len(b.Ops) {
		n := min(len(a.Ops), len(b.Ops))
		more, other := a, "the first"
		if len(b.Ops) > n {
			more, other = b, "the second"
		}
		op := more.Ops[n]
		return fmt.Sprintf("%d ops, then %d: the first op only %s has is op %d (%s, intended at %v)",
			len(a.Ops), len(b.Ops), other, op.ID, op.Kind, op.Intended)
	}
	for i := range min(len(a.Faults), len(b.Faults)) {
		fa, fb := a.Faults[i], b.Faults[i]
		if fa.Step != fb.Step || fa.Target != fb.Target || faultString(fa) != faultString(fb) ||
			fa.Start != fb.Start || fa.End != fb.End || fa.Err != fb.Err || fa.RevertErr != fb.RevertErr {
			return fmt.Sprintf("fault %d: %s, then %s", i, faultLine(fa), faultLine(fb))
		}
	}
	switch {
	case len(a.Faults) != len(b.Faults):
		return fmt.Sprintf("%d faults, then %d", len(a.Faults), len(b.Faults))
	case a.Duration != b.Duration:
		return fmt.Sprintf("the run lasted %v, then %v", a.Duration, b.Duration)
	case a.SamplesMissed != b.SamplesMissed:
		return fmt.Sprintf("%d samples missed, then %d", a.SamplesMissed, b.SamplesMissed)
	}
	return ""
}

func diffOp(a, b Op) string {
	type field struct {
		name string
		x, y any
	}
	for _, f := range []field{
		{"id", a.ID, b.ID},
		{"kind", a.Kind, b.Kind},
		{"input", a.Input, b.Input},
		{"intended start", a.Intended, b.Intended},
		{"start", a.Start, b.Start},
		{"end", a.End, b.End},
		{"outcome", a.Outcome, b.Outcome},
		{"error", a.Err, b.Err},
		{"output", a.Output, b.Output},
	} {
		if f.x != f.y {
			return fmt.Sprintf("%s %s, then %s\n  %s\n  %s", f.name, quoteIf(f.x), quoteIf(f.y), opLine(a), opLine(b))
		}
	}
	return ""
}

func quoteIf(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(v)
}

func opLine(o Op) string {
	s := fmt.Sprintf("op %d %s intended %v start %v end %v: %s", o.ID, o.Kind, o.Intended, o.Start, o.End, o.Outcome)
	if o.Err != "" {
		s += " (" + o.Err + ")"
	}
	return s
}

func faultLine(f FaultEvent) string {
	s := fmt.Sprintf("step %d %s %s applied at %v", f.Step, f.Target, faultString(f), f.Start)
	if f.End != 0 {
		s += fmt.Sprintf(", reverted at %v", f.End)
	}
	if f.Err != "" {
		s += " (not applied: " + f.Err + ")"
	}
	if f.RevertErr != "" {
		s += " (not reverted: " + f.RevertErr + ")"
	}
	return s
}
