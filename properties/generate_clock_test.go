package properties

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

func clockBounds() Bounds {
	return Bounds{Targets: []TargetKinds{{Name: "cache", Kinds: append([]toxics.Kind{toxics.KindLatency}, toxics.ClockKinds()...)}},
		MaxSteps: 3, Horizon: 5 * time.Second, Values: Values{ClockOffset: DurationRange{100 * time.Millisecond, 8 * time.Second}}}
}

func TestSchedulesClock(t *testing.T) {
	g, err := Schedules(clockBounds())
	require.NoError(t, err)
	seen := map[string]bool{}
	for seed := range 300 {
		for _, st := range g.Example(seed).Steps {
			require.NoError(t, st.Fault.Validate(), "seed %d, step %s", seed, st)
			off, ok := toxics.ClockOffset(st.Fault)
			if !ok {
				continue
			}
			seen[string(st.Fault.Kind())] = true
			mag := max(off, -off)
			require.True(t, mag >= 100*time.Millisecond && mag <= 8*time.Second, "seed %d: offset %v outside ±100ms..8s", seed, off)
			if off < 0 {
				seen["behind"] = true
			} else {
				seen["ahead"] = true
			}
			if j, ok := st.Fault.(toxics.ClockJump); ok && !j.Back {
				seen["jump that stays"] = true
			}
		}
	}
	for _, what := range []string{"clock_skew", "clock_jump", "ahead", "behind", "jump that stays"} {
		require.True(t, seen[what], "no schedule drew a %s", what)
	}
	// Targets that do not take the clock kinds never get them.
	sg, err := Schedules(minimizeBounds)
	require.NoError(t, err)
	for seed := range 100 {
		for _, st := range sg.Example(seed).Steps {
			require.False(t, st.Fault.Kind().IsClock(), "seed %d: %s", seed, st)
		}
	}
}

// aheadAtLeast2s fails when the cache's clock is 2s or more ahead at 1s.
func aheadAtLeast2s(s sim.Schedule) bool {
	for _, st := range s.Steps {
		if off, ok := toxics.ClockOffset(st.Fault); ok && off >= 2*time.Second && st.At <= time.Second && st.End() > time.Second {
			return true
		}
	}
	return false
}

// TestShrinkClockTowardSmallerOffset: a failure that needs the clock 2s
// ahead shrinks to a skew (the milder kind) of 2s, give or take the
// minimizer's grain.
func TestShrinkClockTowardSmallerOffset(t *testing.T) {
	b := clockBounds()
	g, err := Schedules(b)
	require.NoError(t, err)
	found := 0
	for seed := 0; seed < 3000 && found < 20; seed++ {
		s := g.Example(seed)
		if !aheadAtLeast2s(s) {
			continue
		}
		found++
		got := Minimize(b, s, aheadAtLeast2s)
		require.Len(t, got.Steps, 1, "seed %d: minimized\n%s\nto\n%s", seed, s, got)
		sk, ok := got.Steps[0].Fault.(toxics.ClockSkew)
		require.True(t, ok && sk.Offset >= 2*time.Second && sk.Offset <= 2*time.Second+b.Resolution,
			"seed %d: minimized\n%s\nto\n%s\nwant one clock_skew(+2s) step", seed, s, got)
	}
	require.Equal(t, 20, found, "too few schedules fail to check the shrinking")
}
