package properties

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// TestAimHTTP: only a target that speaks HTTP is aimed at with HTTP kinds,
// and http_json is left to the user (it needs paths).
func TestAimHTTP(t *testing.T) {
	n := sim.NewNetwork(1)
	defer n.Close()
	api, err := n.FakeHTTP("api", http.NotFoundHandler())
	require.NoError(t, err)
	kv, err := n.FakeKV("kv")
	require.NoError(t, err)
	aimed := Aim([]sim.Target{api, kv})
	want := slices.Concat(toxics.LinkKinds(), []toxics.Kind{toxics.KindHTTPDelay, toxics.KindHTTPTrickle, toxics.KindHTTPCut, toxics.KindHTTPStatus}, toxics.ClockKinds(), toxics.NodeKinds())
	require.Equal(t, want, aimed[0].Kinds)
	// FakeKV speaks Redis: its protocol faults, no HTTP ones.
	require.Equal(t, slices.Concat(toxics.LinkKinds(), toxics.ClockKinds(), toxics.NodeKinds(), []toxics.Kind{toxics.KindRedisDelay, toxics.KindRedisError}), aimed[1].Kinds)
}

func httpBounds() Bounds {
	kinds := append(toxics.HTTPKinds(), toxics.KindLatency)
	return Bounds{Targets: []TargetKinds{{Name: "api", Kinds: kinds}, {Name: "db", Kinds: toxics.LinkKinds()}},
		MaxSteps: 4, Horizon: 5 * time.Second, Values: Values{JSONPaths: []string{"items.0.price", "$.total"}}}
}

func TestSchedulesHTTP(t *testing.T) {
	b := httpBounds()
	g, err := Schedules(b)
	require.NoError(t, err)
	seen := map[toxics.Kind]bool{}
	// 300 schedules by seed, the same in every run (rapid.Check draws
	// only 20 under -short, too few to see every kind).
	for seed := range 300 {
		s := g.Example(seed)
		for _, st := range s.Steps {
			require.NoError(t, st.Fault.Validate(), "seed %d, step %s", seed, st)
			k := st.Fault.Kind()
			seen[k] = true
			if k.IsHTTP() {
				require.Equal(t, "api", st.Target, "seed %d: HTTP fault %s", seed, st.Fault)
			}
			if m, ok := toxics.MatchOf(st.Fault); ok {
				require.True(t, m.Rate >= 0.05 && m.Rate <= 1 && m.Nth == 0, "seed %d: share %v outside 0.05..1 in %s", seed, m.Rate, st.Fault)
			}
		}
	}
	for _, k := range toxics.HTTPKinds() {
		require.True(t, seen[k], "no schedule drew %s", k)
	}
}

func TestBoundsHTTPJSONNeedsPaths(t *testing.T) {
	b := httpBounds()
	b.Values.JSONPaths = nil
	require.ErrorContains(t, b.Validate(), `Targets[0] ("api") lists http_json, and Values.JSONPaths is empty`)
	require.NoError(t, httpBounds().Validate())
}

// TestShrinkHTTPToMildest: a failure that any answered status causes
// shrinks to the mildest status at the smallest share, without
// Retry-After; one that any delay causes to the shortest delay.
func TestShrinkHTTPToMildest(t *testing.T) {
	b := httpBounds()
	g, err := Schedules(b)
	require.NoError(t, err)
	anyStatus := func(s sim.Schedule) bool {
		return slices.ContainsFunc(s.Steps, func(st sim.Step) bool { return st.Fault.Kind() == toxics.KindHTTPStatus })
	}
	r := shrinkOn(t, g, anyStatus)
	require.Len(t, r.minimal.Steps, 1, "%s", r.minimal)
	require.Equal(t, toxics.HTTPStatus{Status: 429, Match: toxics.HTTPMatch{Rate: 0.05}}, r.minimal.Steps[0].Fault, "%s", r.minimal)

	anyDelay := func(s sim.Schedule) bool {
		return slices.ContainsFunc(s.Steps, func(st sim.Step) bool { return st.Fault.Kind() == toxics.KindHTTPDelay })
	}
	r = shrinkOn(t, g, anyDelay)
	require.Len(t, r.minimal.Steps, 1, "%s", r.minimal)
	require.Equal(t, toxics.HTTPDelay{Delay: 50 * time.Millisecond, Match: toxics.HTTPMatch{Rate: 0.05}}, r.minimal.Steps[0].Fault, "%s", r.minimal)
}
