package properties

import (
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

func TestMinimizeReachesOneMinimal(t *testing.T) {
	g, err := Schedules(minimizeBounds)
	if err != nil {
		t.Fatal(err)
	}
	rapid.Check(t, func(rt *rapid.T) {
		s := g.Draw(rt, "schedule")
		if !slowDBAt2s(s) {
			rt.Skip("does not fail")
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
