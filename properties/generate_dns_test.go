package properties

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

func dnsBounds() Bounds {
	n := sim.NewNetwork(1)
	return Bounds{Targets: Aim([]sim.Target{n.DNS(), linkOnly}), MaxSteps: 5, Horizon: 20 * time.Second,
		Fault: DurationRange{100 * time.Millisecond, 8 * time.Second}}
}

// TestDNSKindsDrawn: a name server is aimed at with the DNS kinds, mildest
// first, and every drawn schedule holds valid DNS faults on it.
func TestDNSKindsDrawn(t *testing.T) {
	b := dnsBounds()
	require.Equal(t, sim.DNSTarget, b.Targets[0].Name)
	require.Equal(t, toxics.DNSKinds(), b.Targets[0].Kinds)
	g, err := Schedules(b)
	require.NoError(t, err)
	// Seeds of its own, not rapid's: with -short rapid draws 20
	// schedules, and in 3 of 8 such runs one kind was never drawn.
	seen := map[toxics.Kind]bool{}
	for seed := range 200 {
		s := g.Example(seed)
		for _, st := range s.Steps {
			if st.Target == sim.DNSTarget {
				require.True(t, st.Fault.Kind().IsDNS(), "seed %d: %s", seed, st)
				require.NoError(t, st.Fault.Validate(), "seed %d", seed)
				seen[st.Fault.Kind()] = true
			}
		}
	}
	for _, k := range toxics.DNSKinds() {
		require.True(t, seen[k], "kind %s never drawn in 200 schedules", k)
	}
}

// TestShrinkDNSKinds: a failure that any answerless DNS fault causes
// shrinks to the mildest that still causes it, and a delay to the
// shortest that still fails.
func TestShrinkDNSKinds(t *testing.T) {
	g, err := Schedules(dnsBounds())
	require.NoError(t, err)
	check := func(t *testing.T, fails func(sim.Schedule) bool, want toxics.Fault) {
		r := shrinkOn(t, g, fails)
		got := Minimize(dnsBounds(), r.minimal, fails)
		require.Len(t, got.Steps, 1, "rapid shrunk to:\n%s\nthe pass to:\n%s", r.minimal, got)
		require.Equal(t, sim.DNSTarget, got.Steps[0].Target)
		require.Equal(t, want, got.Steps[0].Fault)
	}
	t.Run("servfail or harsher", func(t *testing.T) {
		check(t, func(s sim.Schedule) bool {
			for _, st := range s.Steps {
				if k := st.Fault.Kind(); k == toxics.KindDNSServfail || k == toxics.KindDNSNXDomain || k == toxics.KindDNSDrop {
					return true
				}
			}
			return false
		}, toxics.DNSServfail{})
	})
	t.Run("nxdomain or drop", func(t *testing.T) {
		check(t, func(s sim.Schedule) bool {
			for _, st := range s.Steps {
				if k := st.Fault.Kind(); k == toxics.KindDNSNXDomain || k == toxics.KindDNSDrop {
					return true
				}
			}
			return false
		}, toxics.DNSNXDomain{})
	})
	t.Run("a delay of 300ms or more", func(t *testing.T) {
		check(t, func(s sim.Schedule) bool {
			for _, st := range s.Steps {
				if d, ok := st.Fault.(toxics.DNSDelay); ok && d.Delay >= 300*time.Millisecond {
					return true
				}
			}
			return false
		}, toxics.DNSDelay{Delay: 300 * time.Millisecond})
	})
}

// TestMinimizeKeepsDNSHosts: the minimizer shortens a hand-written delay
// and keeps the hosts it acts on.
func TestMinimizeKeepsDNSHosts(t *testing.T) {
	s := sim.Schedule{Steps: []sim.Step{{At: 0, For: time.Second, Target: sim.DNSTarget, Fault: toxics.DNSDelay{Delay: time.Second, Hosts: "db"}}}}
	fails := func(s sim.Schedule) bool {
		for _, st := range s.Steps {
			if d, ok := st.Fault.(toxics.DNSDelay); ok && d.Delay >= 200*time.Millisecond {
				return true
			}
		}
		return false
	}
	got := Minimize(dnsBounds(), s, fails)
	require.Len(t, got.Steps, 1)
	require.Equal(t, toxics.DNSDelay{Delay: 200 * time.Millisecond, Hosts: "db"}, got.Steps[0].Fault)
}
