package properties

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// fakeNetwork is a network target as harness's Env.Network and sim's
// Network.Partitions are: it takes partitions of its members.
type fakeNetwork struct{ members []string }

func (fakeNetwork) Name() string                { return "network" }
func (fakeNetwork) Supports(k toxics.Kind) bool { return k == toxics.KindPartition }
func (n fakeNetwork) Members() []string         { return n.members }
func (fakeNetwork) Apply(context.Context, toxics.Fault) (func(context.Context) error, error) {
	return func(context.Context) error { return nil }, nil
}

func TestAimPartitions(t *testing.T) {
	got := Aim([]sim.Target{linkOnly, fakeNetwork{[]string{"cache", "db"}}})
	require.Equal(t, TargetKinds{Name: "network", Kinds: []toxics.Kind{toxics.KindPartition}, Members: []string{"cache", "db"}}, got[1])
	// One member cannot be cut from anything: no partitions drawn.
	got = Aim([]sim.Target{linkOnly, fakeNetwork{[]string{"db"}}})
	require.Len(t, got, 1)
	require.Equal(t, "db", got[0].Name)
	// Partition is the harshest network kind: after every link and HTTP
	// kind, before the clock kinds (simulated endpoints only), then the
	// node kinds.
	kinds := allKinds()
	at := slices.Index(kinds, toxics.KindPartition)
	for _, k := range append(toxics.LinkKinds(), toxics.HTTPKinds()...) {
		require.Less(t, slices.Index(kinds, k), at, k)
	}
	require.Equal(t, slices.Concat(toxics.ClockKinds(), toxics.NodeKinds()), kinds[at+1:at+1+len(toxics.ClockKinds())+len(toxics.NodeKinds())])
}

func TestBoundsValidatePartitionMembers(t *testing.T) {
	part := []toxics.Kind{toxics.KindPartition}
	for _, tc := range []struct {
		members []string
		want    string
	}{
		{nil, `Targets[0] ("network") takes partitions but has 0 Members`},
		{[]string{"db"}, "has 1 Members: a partition needs two"},
		{[]string{"db", ""}, "Members[1] is empty"},
		{[]string{"db", "cache", "db"}, `Members[2] "db" is listed twice`},
	} {
		err := Bounds{Targets: []TargetKinds{{Name: "network", Kinds: part, Members: tc.members}}}.Validate()
		require.ErrorContains(t, err, tc.want)
	}
	require.NoError(t, Bounds{Targets: []TargetKinds{{Name: "network", Kinds: part, Members: []string{"db", "cache"}}}}.Validate())

	errs := checkWorldMembers(2, TargetKinds{Name: "network", Kinds: part, Members: []string{"db", "mq"}}, fakeNetwork{[]string{"cache", "db"}})
	require.Len(t, errs, 1)
	require.ErrorContains(t, errs[0], `Bounds.Targets[2] ("network"): Members[1] "mq" is not a member of the World's target (it has [cache db])`)
}

func TestSchedulesDrawPartitions(t *testing.T) {
	members := []string{"api", "cache", "db", "queue"}
	targets := []sim.Target{linkOnly, allFault, fakeNetwork{members}}
	bounds := Bounds{Targets: Aim(targets), MaxSteps: 4}
	g, err := Schedules(bounds)
	require.NoError(t, err)
	cutSizes := map[int]int{}
	for seed := range 500 {
		s := g.Example(seed)
		require.NoError(t, s.Validate(targets), "%s", s)
		for _, st := range s.Steps {
			p, ok := st.Fault.(toxics.Partition)
			if !ok {
				continue
			}
			require.Equal(t, "network", st.Target)
			require.Len(t, p.Groups, 2)
			all := slices.Concat(p.Groups...)
			slices.Sort(all)
			require.Equal(t, members, all, "every member is in one group: %s", st)
			cutSizes[len(p.Groups[1])]++
		}
	}
	// Every size of cut a partition of four can have is drawn.
	require.Len(t, cutSizes, 3, "cut sizes drawn: %v", cutSizes)

	// Without a network target the draws are those of before: partitions
	// draw nothing then.
	plain := Bounds{Targets: Aim([]sim.Target{linkOnly, allFault})}
	g1, err := Schedules(plain)
	require.NoError(t, err)
	require.Nil(t, newGen(plain.withDefaults()).b.Targets[0].Members)
	for seed := range 50 {
		for _, st := range g1.Example(seed).Steps {
			require.NotEqual(t, toxics.KindPartition, st.Fault.Kind())
		}
	}
}

// cutsDBFromAPI fails when a partition puts db and api in different
// groups for a second or more.
func cutsDBFromAPI(s sim.Schedule) bool {
	for _, st := range s.Steps {
		p, ok := st.Fault.(toxics.Partition)
		if !ok || st.For < time.Second {
			continue
		}
		group := map[string]int{}
		for i, g := range p.Groups {
			for _, m := range g {
				group[m] = i
			}
		}
		gd, okD := group["db"]
		ga, okA := group["api"]
		if okD && okA && gd != ga {
			return true
		}
	}
	return false
}

// TestShrinkPartition: rapid's shrink and then the 1-minimal pass reach
// one partition step, as short as fails, cutting db from api and nothing
// else.
func TestShrinkPartition(t *testing.T) {
	targets := []sim.Target{linkOnly, fakeNetwork{[]string{"api", "cache", "db", "queue"}}}
	bounds := Bounds{Targets: Aim(targets), MaxSteps: 4}
	g, err := Schedules(bounds)
	require.NoError(t, err)
	r := shrinkOn(t, g, cutsDBFromAPI)
	got := Minimize(bounds, r.minimal, cutsDBFromAPI)
	require.True(t, cutsDBFromAPI(got))
	require.Len(t, got.Steps, 1, "%s", got)
	st := got.Steps[0]
	require.Equal(t, time.Second, st.For)
	require.Equal(t, time.Duration(0), st.At)
	p := st.Fault.(toxics.Partition)
	require.Len(t, slices.Concat(p.Groups...), 2, "only db and api are in groups: %s", st)
	for _, n := range neighbours(bounds, got) {
		require.False(t, cutsDBFromAPI(n), "a milder neighbour still fails:\n%s", n)
	}
}

func TestMinimizeSmallerGroups(t *testing.T) {
	bounds := Bounds{Targets: []TargetKinds{{Name: "network", Kinds: []toxics.Kind{toxics.KindPartition}, Members: []string{"api", "cache", "db", "queue"}}}}
	s := sim.Schedule{Steps: []sim.Step{{At: 0, For: time.Second, Target: "network",
		Fault: toxics.Partition{Groups: [][]string{{"api", "cache"}, {"queue", "db"}}}}}}
	got := Minimize(bounds, s, cutsDBFromAPI)
	require.Equal(t, toxics.Partition{Groups: [][]string{{"api"}, {"db"}}}, got.Steps[0].Fault)
}

func TestCutOff(t *testing.T) {
	m := []string{"a", "b", "c"}
	for _, tc := range []struct {
		cut  []bool
		want [][]string
	}{
		{[]bool{false, false, false}, [][]string{{"a", "b"}, {"c"}}},
		{nil, [][]string{{"a", "b"}, {"c"}}},
		{[]bool{true, false, false}, [][]string{{"b", "c"}, {"a"}}},
		{[]bool{true, true, false}, [][]string{{"c"}, {"a", "b"}}},
		{[]bool{true, true, true}, [][]string{{"a"}, {"b", "c"}}},
		{[]bool{false, true, true, true}, [][]string{{"a"}, {"b", "c"}}},
	} {
		p := cutOff(m, tc.cut)
		require.Equal(t, tc.want, p.Groups, "cut %v", tc.cut)
		require.NoError(t, p.Validate())
	}
	require.Error(t, cutOff([]string{"a"}, nil).Validate())
}
