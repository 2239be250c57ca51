package properties

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// TestShrinkNetKinds: issue 15's kinds shrink toward milder: a lossy link
// to the lowest probability that still fails, a blackhole of the pool to
// the smallest share of its connections that still fails.
func TestShrinkNetKinds(t *testing.T) {
	g, err := Schedules(shrinkBounds())
	require.NoError(t, err)
	check := func(t *testing.T, fails func(sim.Schedule) bool, want func(t *testing.T, st sim.Step)) {
		r := shrinkOn(t, g, fails)
		got := Minimize(shrinkBounds(), r.minimal, fails)
		require.Len(t, got.Steps, 1, "rapid shrunk to:\n%s\nthe pass to:\n%s", r.minimal, got)
		st := got.Steps[0]
		require.Equal(t, "db", st.Target)
		require.Equal(t, time.Duration(0), st.At)
		require.Equal(t, 100*time.Millisecond, st.For)
		want(t, st)
	}
	t.Run("loss of 5% or more", func(t *testing.T) {
		check(t, func(s sim.Schedule) bool {
			for _, st := range s.Steps {
				if l, ok := st.Fault.(toxics.Loss); ok && st.Target == "db" && l.Probability >= 0.05 {
					return true
				}
			}
			return false
		}, func(t *testing.T, st sim.Step) {
			require.Equal(t, toxics.Loss{Probability: 0.05}, st.Fault)
		})
	})
	t.Run("a blackhole on 30% of the connections or more", func(t *testing.T) {
		check(t, func(s sim.Schedule) bool {
			for _, st := range s.Steps {
				if st.Target != "db" {
					continue
				}
				f, conns := toxics.Untarget(st.Fault)
				if _, ok := f.(toxics.Blackhole); ok && (conns.Share == 0 || conns.Share >= 0.3) {
					return true
				}
			}
			return false
		}, func(t *testing.T, st sim.Step) {
			tf, ok := st.Fault.(toxics.Targeted)
			require.True(t, ok, "shrunk to %s, not to a targeted blackhole", st.Fault)
			require.Equal(t, toxics.Blackhole{}, tf.Fault)
			require.Equal(t, 0.3, tf.Conns.Share)
		})
	})
}
