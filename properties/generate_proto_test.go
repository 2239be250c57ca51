package properties

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// TestSchedulesProtocolKinds: protocol faults are drawn only for targets
// that speak the protocol, valid, with shares in the bounds.
func TestSchedulesProtocolKinds(t *testing.T) {
	cache := fakeTarget{"cache", append(toxics.LinkKinds(), toxics.KindRedisDelay, toxics.KindRedisError)}
	db := fakeTarget{"db", append(toxics.LinkKinds(), toxics.KindPgError, toxics.KindPgRefuse)}
	plain := fakeTarget{"api", toxics.LinkKinds()}
	targets := Aim([]sim.Target{cache, db, plain})
	require.Contains(t, targets[0].Kinds, toxics.KindRedisError)
	require.NotContains(t, targets[2].Kinds, toxics.KindRedisError)
	b := Bounds{Targets: targets, MaxSteps: 4, Values: Values{Share: [2]float64{0.1, 0.9}}}
	g, err := Schedules(b)
	require.NoError(t, err)
	seen := map[toxics.Kind]int{}
	for seed := range 400 {
		s := g.Example(seed)
		require.NoError(t, s.Validate([]sim.Target{cache, db, plain}), "seed %d", seed)
		for _, st := range s.Steps {
			k := st.Fault.Kind()
			seen[k]++
			switch k.Protocol() {
			case toxics.ProtocolRedis:
				require.Equal(t, "cache", st.Target, "%v", st)
			case toxics.ProtocolPostgres:
				require.Equal(t, "db", st.Target, "%v", st)
			default:
				continue
			}
			req, _ := toxics.RequestsOf(st.Fault)
			require.True(t, req.Share >= 0.1 && req.Share <= 0.9, "%v", st.Fault)
		}
	}
	for _, k := range toxics.ProtocolKinds() {
		require.Greater(t, seen[k], 0, "kind %s never drawn in 400 schedules", k)
	}
}

// TestMinimizeProtocolFault: a failure that any Redis error reply causes
// shrinks to the mildest reply and the lowest share; one that needs OOM
// keeps OOM.
func TestMinimizeProtocolFault(t *testing.T) {
	cache := fakeTarget{"cache", append(toxics.LinkKinds(), toxics.KindRedisDelay, toxics.KindRedisError)}
	b := Bounds{Targets: Aim([]sim.Target{cache}), Horizon: 2 * time.Second}
	start := sim.Schedule{Steps: []sim.Step{{At: 500 * time.Millisecond, For: time.Second, Target: "cache",
		Fault: toxics.RedisError{Reply: toxics.RedisOOM, Requests: toxics.Requests{Share: 1}}}}}
	anyError := func(s sim.Schedule) bool {
		for _, st := range s.Steps {
			if st.Fault.Kind() == toxics.KindRedisError {
				return true
			}
		}
		return false
	}
	got := Minimize(b, start, anyError)
	require.Len(t, got.Steps, 1)
	require.Equal(t, toxics.RedisError{Reply: toxics.RedisLoading, Requests: toxics.Requests{Share: 0.05}}, got.Steps[0].Fault)

	needsOOM := func(s sim.Schedule) bool {
		for _, st := range s.Steps {
			if f, ok := st.Fault.(toxics.RedisError); ok && f.Reply == toxics.RedisOOM && f.Share >= 0.5 {
				return true
			}
		}
		return false
	}
	got = Minimize(b, start, needsOOM)
	f := got.Steps[0].Fault.(toxics.RedisError)
	require.Equal(t, toxics.RedisOOM, f.Reply)
	require.InDelta(t, 0.5, f.Share, 0.02)
}
