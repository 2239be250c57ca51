package properties

import (
	"cmp"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// minimizeBounds are the bounds of the tests below: two targets, the
// first with link and node kinds, the second with link kinds only.
var minimizeBounds = Bounds{Targets: []TargetKinds{
	{Name: "db", Kinds: []toxics.Kind{toxics.KindLatency, toxics.KindBandwidth, toxics.KindTimeout, toxics.KindDown, toxics.KindCrash}},
	{Name: "cache", Kinds: []toxics.Kind{toxics.KindLatency, toxics.KindReset, toxics.KindDown}},
}}

// slowDBAt2s fails when some db step slows or cuts the db at 2s for at
// least 500ms: latency of 300ms or more, bandwidth under 4 KiB/s, or any
// harsher kind.
func slowDBAt2s(s sim.Schedule) bool {
	for _, st := range s.Steps {
		if st.Target != "db" || st.At > 2*time.Second || st.End() < 2500*time.Millisecond {
			continue
		}
		switch f := st.Fault.(type) {
		case toxics.Latency:
			if f.Delay >= 300*time.Millisecond {
				return true
			}
		case toxics.Bandwidth:
			if f.Rate < 4<<10 {
				return true
			}
		default:
			return true
		}
	}
	return false
}

// harmDB draws a db step that slowDBAt2s fails on: it starts by 2s, ends
// at 2.5s or later, and is latency of 300ms or more, bandwidth under
// 4 KiB/s, or a harsher kind.
var harmDB = rapid.Custom(func(t *rapid.T) sim.Step {
	res := 100 * time.Millisecond
	at := time.Duration(rapid.IntRange(0, 20).Draw(t, "at")) * res
	least := max(int((2500*time.Millisecond-at)/res), 1)
	st := sim.Step{At: at, For: time.Duration(rapid.IntRange(least, 50).Draw(t, "for")) * res, Target: "db"}
	switch rapid.IntRange(0, 4).Draw(t, "kind") {
	case 0:
		st.Fault = toxics.Latency{Delay: time.Duration(rapid.IntRange(300, 1000).Draw(t, "delay")) * time.Millisecond}
	case 1:
		st.Fault = toxics.Bandwidth{Rate: rapid.Int64Range(0, 4<<10-1).Draw(t, "rate")}
	case 2:
		st.Fault = toxics.Timeout{After: time.Duration(rapid.IntRange(0, 2000).Draw(t, "after")) * time.Millisecond}
	case 3:
		st.Fault = toxics.Down{}
	default:
		st.Fault = toxics.Crash{}
	}
	return st
})

// TestMinimizeReachesOneMinimal minimizes failing schedules: those the
// generator draws that fail, and the others with their db steps replaced
// by a harmful one. (It used to skip the draws that did not fail: about 9
// in 10 did, and under -short rapid's 20 checks allow 200 skips, so about
// 1 run in 20 failed with "only generated 17 valid tests".)
func TestMinimizeReachesOneMinimal(t *testing.T) {
	g, err := Schedules(minimizeBounds)
	if err != nil {
		t.Fatal(err)
	}
	m := newMinimizer(minimizeBounds, nil)
	rapid.Check(t, func(rt *rapid.T) {
		s := g.Draw(rt, "schedule")
		if !slowDBAt2s(s) {
			steps := []sim.Step{harmDB.Draw(rt, "harm")}
			for _, st := range s.Steps {
				if st.Target != "db" {
					steps = append(steps, st)
				}
			}
			s = normal(sim.Schedule{Steps: steps})
		}
		if !slowDBAt2s(s) || !m.allowed(s) {
			rt.Fatalf("the test drew a schedule that does not fail or is not within the bounds:\n%s", s)
		}
		asked := 0
		got := Minimize(minimizeBounds, s, func(c sim.Schedule) bool { asked++; return slowDBAt2s(c) })
		if !slowDBAt2s(got) {
			rt.Fatalf("the minimized schedule does not fail:\n%s", got)
		}
		for _, n := range neighbours(minimizeBounds, got) {
			if slowDBAt2s(n) {
				rt.Fatalf("not 1-minimal: from\n%s\nthe milder neighbour\n%s\nstill fails", got, n)
			}
		}
		// 1-minimal is not least: "+900ms for 1.6s" and "+0s for 2.5s"
		// are both 1-minimal (neither offset nor duration moves alone).
		if len(got.Steps) != 1 || got.Steps[0].Fault != (toxics.Latency{Delay: 300 * time.Millisecond}) {
			rt.Fatalf("minimized to\n%s\nwant one db latency(300ms) step (after %d candidates)", got, asked)
		}
	})
}

// TestMinimizeMilderKind: a harsh kind the swarm drew first is replaced
// by the mildest kind that still fails.
func TestMinimizeMilderKind(t *testing.T) {
	s := sim.Schedule{Steps: []sim.Step{
		{At: 500 * time.Millisecond, For: time.Second, Target: "cache", Fault: toxics.Down{}},
		{At: 1500 * time.Millisecond, For: 3 * time.Second, Target: "db", Fault: toxics.Crash{}},
	}}
	got := Minimize(minimizeBounds, s, slowDBAt2s)
	if want := "+0s for 2.5s db latency(300ms)"; len(got.Steps) != 1 || got.Steps[0].String() != want {
		t.Fatalf("minimized to\n%s\nwant %s", got, want)
	}
}

// dbCutFrom1sTo3s fails when db's down and crash steps together cover
// 1s to 3s; neither of two steps that each cover part of it fails alone.
func dbCutFrom1sTo3s(s sim.Schedule) bool {
	var cuts []sim.Step
	for _, st := range s.Steps {
		if k := st.Fault.Kind(); st.Target == "db" && (k == toxics.KindDown || k == toxics.KindCrash) {
			cuts = append(cuts, st)
		}
	}
	slices.SortFunc(cuts, func(a, b sim.Step) int { return cmp.Compare(a.At, b.At) })
	upTo := time.Second
	for _, st := range cuts {
		if st.At <= upTo {
			upTo = max(upTo, st.End())
		}
	}
	return upTo >= 3*time.Second
}

// TestMinimizeMerges: an outage cut in two (adjacent, overlapping, or a
// resolution apart: dbCutFrom1sTo3s counts a gap as cut only when the
// steps touch, so the gap case uses a predicate of its own) shrinks to one
// step only by merging: no step can be removed, none made milder alone.
func TestMinimizeMerges(t *testing.T) {
	down, crash := toxics.Down{}, toxics.Crash{}
	step := func(at, end time.Duration, f toxics.Fault) sim.Step {
		return sim.Step{At: at, For: end - at, Target: "db", Fault: f}
	}
	ms := time.Millisecond
	// Cut from 1s to 3s by one step, or by two a resolution apart or
	// closer.
	spans := func(s sim.Schedule) bool {
		var cuts []sim.Step
		for _, st := range s.Steps {
			if k := st.Fault.Kind(); st.Target == "db" && (k == toxics.KindDown || k == toxics.KindCrash) {
				cuts = append(cuts, st)
			}
		}
		switch len(cuts) {
		case 1:
			return cuts[0].At <= time.Second && cuts[0].End() >= 3*time.Second
		case 2:
			a, b := cuts[0], cuts[1]
			return a.At <= time.Second && b.At-a.End() <= 100*ms && b.End() >= 3*time.Second
		}
		return false
	}
	tests := []struct {
		name  string
		steps []sim.Step
		fails func(sim.Schedule) bool
		want  string
		// onlyMerge: no other neighbour fails (overlapping steps can be
		// made milder alone first).
		onlyMerge bool
	}{
		{"adjacent", []sim.Step{step(time.Second, 2*time.Second, down), step(2*time.Second, 3*time.Second, down)}, dbCutFrom1sTo3s,
			"+1s for 2s db down()", true},
		{"overlapping, the milder kind taken", []sim.Step{step(time.Second, 2200*ms, crash), step(2*time.Second, 3*time.Second, down)}, dbCutFrom1sTo3s,
			"+1s for 2s db down()", false},
		{"a resolution apart", []sim.Step{step(time.Second, 1900*ms, down), step(2*time.Second, 3*time.Second, down)}, spans,
			"+1s for 2s db down()", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := sim.Schedule{Steps: tt.steps}
			if !tt.fails(s) {
				t.Fatalf("the starting schedule does not fail:\n%s", s)
			}
			// Before the merge, the only failing neighbour is a merge:
			// the check of 1-minimality covers merges.
			m := newMinimizer(minimizeBounds, nil)
			merges := m.mergeCandidates(s)
			for _, n := range neighbours(minimizeBounds, s) {
				if tt.onlyMerge && tt.fails(n) && !slices.ContainsFunc(merges, func(c sim.Schedule) bool { return c.String() == n.String() }) {
					t.Fatalf("a neighbour that is not a merge fails, so the merge is not needed:\n%s", n)
				}
			}
			if !slices.ContainsFunc(neighbours(minimizeBounds, s), tt.fails) {
				t.Fatalf("no neighbour of\n%s\nfails: neighbours leave merges out", s)
			}
			got := Minimize(minimizeBounds, s, tt.fails)
			if len(got.Steps) != 1 || got.Steps[0].String() != tt.want {
				t.Fatalf("minimized to\n%s\nwant %s", got, tt.want)
			}
			for _, n := range neighbours(minimizeBounds, got) {
				if tt.fails(n) {
					t.Fatalf("not 1-minimal: from\n%s\nthe neighbour\n%s\nstill fails", got, n)
				}
			}
		})
	}
}

// TestMinimizeMergesOnlyWithin: steps on two targets, steps more than a
// resolution apart, a merged step longer than Fault.Max, and a restart's
// fault are not merge candidates.
func TestMinimizeMergesOnlyWithin(t *testing.T) {
	b := minimizeBounds
	b.Targets = append(slices.Clone(b.Targets), TargetKinds{Name: "app", Kinds: []toxics.Kind{toxics.KindPause, toxics.KindRestart}})
	m := newMinimizer(b, nil)
	ms := time.Millisecond
	for _, s := range []sim.Schedule{
		{Steps: []sim.Step{{At: 0, For: time.Second, Target: "db", Fault: toxics.Down{}}, {At: time.Second, For: time.Second, Target: "cache", Fault: toxics.Down{}}}},
		{Steps: []sim.Step{{At: 0, For: time.Second, Target: "db", Fault: toxics.Down{}}, {At: 1101 * ms, For: time.Second, Target: "db", Fault: toxics.Down{}}}},
		{Steps: []sim.Step{{At: 0, For: 3 * time.Second, Target: "db", Fault: toxics.Down{}}, {At: 3 * time.Second, For: 3 * time.Second, Target: "db", Fault: toxics.Down{}}}},
	} {
		if c := m.mergeCandidates(s); len(c) != 0 {
			t.Errorf("merged\n%s\ninto\n%s", s, c[0])
		}
	}
	s := sim.Schedule{Steps: []sim.Step{{At: 0, For: time.Second, Target: "app", Fault: toxics.Pause{}}, {At: time.Second, Target: "app", Fault: toxics.Restart{}}}}
	c := m.mergeCandidates(s)
	if len(c) != 1 || c[0].Steps[0].String() != "+0s for 1s app pause()" {
		t.Errorf("merged\n%s\ninto %v, want only +0s for 1s app pause", s, c)
	}
	// Within the bounds: two steps of 100ms a resolution apart merge.
	s = sim.Schedule{Steps: []sim.Step{{At: 0, For: 100 * ms, Target: "db", Fault: toxics.Down{}}, {At: 200 * ms, For: 100 * ms, Target: "db", Fault: toxics.Down{}}}}
	if c := m.mergeCandidates(s); len(c) != 1 || c[0].Steps[0].String() != "+0s for 300ms db down()" {
		t.Errorf("merged\n%s\ninto %v, want +0s for 300ms db down", s, c)
	}
}
