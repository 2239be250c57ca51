package properties

import (
	"context"
	"encoding/json"
	"flag"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/shakedown/shakedown/properties/internal/search"
	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// fakeTarget is a sim.Target that records nothing; tests of generators
// only need its name and kinds.
type fakeTarget struct {
	name  string
	kinds []toxics.Kind
}

func (f fakeTarget) Name() string { return f.name }
func (f fakeTarget) Supports(k toxics.Kind) bool {
	for _, x := range f.kinds {
		if x == k {
			return true
		}
	}
	return false
}
func (f fakeTarget) Apply(context.Context, toxics.Fault) (func(context.Context) error, error) {
	return func(context.Context) error { return nil }, nil
}

var (
	linkOnly = fakeTarget{"db", toxics.LinkKinds()}
	allFault = fakeTarget{"cache", append(toxics.LinkKinds(), toxics.NodeKinds()...)}
)

func TestSchedulesAreValid(t *testing.T) {
	targets := []sim.Target{linkOnly, allFault}
	g, err := Schedules(Bounds{Targets: Aim(targets), MaxSteps: 6, Horizon: 5 * time.Second,
		Values: Values{Jitter: 20 * time.Millisecond, Grace: DurationRange{0, time.Second}}})
	require.NoError(t, err)
	rapid.Check(t, func(t *rapid.T) {
		s := g.Draw(t, "schedule")
		if err := s.Validate(targets); err != nil {
			t.Fatalf("invalid schedule:\n%s\n%v", s, err)
		}
		if h := s.Horizon(); h > 5*time.Second {
			t.Fatalf("horizon %v beyond bound 5s:\n%s", h, s)
		}
		for _, st := range s.Steps {
			if st.At%(100*time.Millisecond) != 0 || st.For%(100*time.Millisecond) != 0 {
				t.Fatalf("step %s is off the 100ms grid", st)
			}
			if st.Fault.Kind() != toxics.KindRestart && (st.For < 100*time.Millisecond || st.For > 2500*time.Millisecond) {
				t.Fatalf("step %s lasts outside 100ms..2.5s", st)
			}
		}
		// The JSON form round-trips.
		data, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		back, err := sim.ParseSchedule(data)
		if err != nil {
			t.Fatalf("%v\n%s", err, data)
		}
		again, _ := json.Marshal(back)
		if string(again) != string(data) {
			t.Fatalf("round trip changed the schedule:\n%s\n%s", data, again)
		}
	})
}

func TestSchedulesKindsPerTarget(t *testing.T) {
	// db takes only latency and blackhole; node faults never reach it.
	db := fakeTarget{"db", []toxics.Kind{toxics.KindLatency, toxics.KindBlackhole}}
	node := fakeTarget{"node", toxics.NodeKinds()}
	g, err := Schedules(Bounds{Targets: Aim([]sim.Target{db, node})})
	require.NoError(t, err)
	seen := map[string]map[toxics.Kind]bool{"db": {}, "node": {}}
	for seed := range 300 {
		s := g.Example(seed)
		for _, st := range s.Steps {
			seen[st.Target][st.Fault.Kind()] = true
		}
	}
	require.Equal(t, map[toxics.Kind]bool{toxics.KindLatency: true, toxics.KindBlackhole: true}, seen["db"])
	for k := range seen["node"] {
		require.True(t, k.IsNode(), "node got link fault %s", k)
	}
	require.Len(t, seen["node"], 4, "every node kind is drawn in 300 examples")
}

func TestBoundsValidate(t *testing.T) {
	tests := []struct {
		name string
		b    Bounds
		want string
	}{
		{"no targets", Bounds{}, "Targets is empty"},
		{"unnamed target", Bounds{Targets: []TargetKinds{{Kinds: toxics.LinkKinds()}}}, "has no name"},
		{"no kinds", Bounds{Targets: []TargetKinds{{Name: "db"}}}, "has no fault kinds"},
		{"unknown kind", Bounds{Targets: []TargetKinds{{Name: "db", Kinds: []toxics.Kind{"meteor"}}}}, `unknown fault kind "meteor"`},
		{"twice", Bounds{Targets: []TargetKinds{{Name: "db", Kinds: toxics.LinkKinds()}, {Name: "db", Kinds: toxics.LinkKinds()}}}, "listed twice"},
		{"off grid", Bounds{Targets: Aim([]sim.Target{linkOnly}), Fault: DurationRange{150 * time.Millisecond, time.Second}}, "Fault.Min = 150ms is not a multiple"},
		{"min above max", Bounds{Targets: Aim([]sim.Target{linkOnly}), Fault: DurationRange{2 * time.Second, time.Second}}, "need 0 < Min <= Max"},
		{"fault beyond horizon", Bounds{Targets: Aim([]sim.Target{linkOnly}), Horizon: time.Second, Fault: DurationRange{2 * time.Second, 2 * time.Second}}, "beyond Horizon"},
		{"negative rate", Bounds{Targets: Aim([]sim.Target{linkOnly}), Values: Values{Rate: Int64Range{-1, 10}}}, "Values.Rate = -1..10"},
		{"corrupt zero", Bounds{Targets: Aim([]sim.Target{linkOnly}), Values: Values{Corrupt: [2]float64{0, 0.5}}}, "Values.Corrupt"},
		{"bad direction", Bounds{Targets: Aim([]sim.Target{linkOnly}), Directions: []toxics.Direction{7}}, "Directions[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Schedules(tt.b)
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.want)
		})
	}
	_, err := Schedules(Bounds{Targets: Aim([]sim.Target{linkOnly})})
	require.NoError(t, err, "defaults are valid")
}

// shrinkRun is what one shrink experiment saw.
type shrinkRun struct {
	minimal  sim.Schedule // the last failing schedule: rapid's shrunk case
	failures int
	searched int // draws until the first failure, that one included
	runs     int // property runs from the first failure on (reproduce + shrink + report)
	distinct int // distinct schedules among them: the runs a verdict cache cannot save
	elapsed  time.Duration
}

// shrinkOn runs rapid over g with a property that fails when fails does,
// and returns the case rapid shrank to. A rare failure may escape one
// search of 100 draws, so it searches up to 20 times.
func shrinkOn(t testing.TB, g *rapid.Generator[sim.Schedule], fails func(sim.Schedule) bool) shrinkRun {
	t.Helper()
	for range 20 {
		if r, ok := shrinkOnce(t, g, fails, nil); ok {
			return r
		}
	}
	t.Fatalf("rapid found no failing schedule in 20 searches")
	return shrinkRun{}
}

// shrinkOnce is one search and shrink. With a guide, it records every draw
// of the search that did not fail as applied, as the explorer does.
func shrinkOnce(t testing.TB, g *rapid.Generator[sim.Schedule], fails func(sim.Schedule) bool, guide *guide) (shrinkRun, bool) {
	var r shrinkRun
	var start time.Time
	seen := map[string]bool{}
	tb := search.NewCapture(t.Name()+"/shrink", context.Background(), nil)
	before := search.FailFiles(t.Name() + "/shrink")
	errs := search.Rapid(tb, func(rt *rapid.T) {
		s := g.Draw(rt, "schedule")
		if r.failures == 0 {
			r.searched++
		}
		if r.failures > 0 {
			r.runs++
			if key := s.String(); !seen[key] {
				seen[key] = true
				r.distinct++
			}
		}
		if fails(s) {
			if r.failures == 0 {
				start = time.Now()
			}
			r.failures++
			r.minimal = s
			rt.Fatal("long blackhole on db")
		}
		if r.failures == 0 && guide != nil {
			guide.record(allApplied(s))
		}
	})
	r.elapsed = time.Since(start)
	search.RemoveFailFile(search.FailFileOf(errs), before)
	return r, len(errs) > 0
}

func longBlackholeOnDB(s sim.Schedule) bool {
	for _, st := range s.Steps {
		if st.Target == "db" && st.Fault.Kind() == toxics.KindBlackhole && st.For >= 2*time.Second {
			return true
		}
	}
	return false
}

func TestShrinkToThreshold(t *testing.T) {
	// Two targets so that target choice must shrink too, every kind, and
	// up to five steps over 20 s.
	cache := fakeTarget{"cache", append(toxics.LinkKinds(), toxics.NodeKinds()...)}
	targets := []sim.Target{cache, linkOnly}
	g, err := Schedules(Bounds{Targets: Aim(targets), MaxSteps: 5, Horizon: 20 * time.Second,
		Fault: DurationRange{100 * time.Millisecond, 8 * time.Second}})
	require.NoError(t, err)

	r := shrinkOn(t, g, longBlackholeOnDB)
	// Check's shrinking is rapid's, then the 1-minimal pass: rapid alone
	// reaches the minimum in all but about 1 search in 100 (a fault's
	// length can stick at its maximum), the pass always does.
	got := Minimize(Bounds{Targets: Aim(targets), MaxSteps: 5, Horizon: 20 * time.Second,
		Fault: DurationRange{100 * time.Millisecond, 8 * time.Second}}, r.minimal, longBlackholeOnDB)
	want := sim.Schedule{Steps: []sim.Step{{At: 0, For: 2 * time.Second, Target: "db", Fault: toxics.Blackhole{}}}}
	require.Equal(t, want, got, "rapid shrunk to:\n%s\nthe pass to:\n%s", r.minimal, got)
	t.Logf("rapid shrank to %s in %v with %d property runs after the first failure (%d distinct schedules)", r.minimal, r.elapsed, r.runs, r.distinct)
}

// shrinkBounds are TestShrinkToThreshold's: cache takes every kind, db
// link kinds only, up to five steps over 20 s.
func shrinkBounds() Bounds {
	cache := fakeTarget{"cache", append(toxics.LinkKinds(), toxics.NodeKinds()...)}
	return Bounds{Targets: Aim([]sim.Target{cache, linkOnly}), MaxSteps: 5, Horizon: 20 * time.Second,
		Fault: DurationRange{100 * time.Millisecond, 8 * time.Second}}
}

// overlapping reports whether two steps of s, one matching a and one b,
// hold at the same time.
func overlapping(s sim.Schedule, a, b func(sim.Step) bool) bool {
	for _, x := range s.Steps {
		for _, y := range s.Steps {
			if a(x) && b(y) && x.At < y.End() && y.At < x.End() {
				return true
			}
		}
	}
	return false
}

func is(target string, kinds ...toxics.Kind) func(sim.Step) bool {
	return func(st sim.Step) bool { return st.Target == target && slices.Contains(kinds, st.Fault.Kind()) }
}

// TestShrinkToThresholds: more failures whose minimal schedule is known:
// kinds that must shrink across kinds to the mildest that fails (the
// most severe kinds drawn stay within reach: their indexes are coin flips,
// not rapid integers, which can stick at the top of their range), and
// failures that need two steps at once, on two targets or composing on
// one.
func TestShrinkToThresholds(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name  string
		fails func(sim.Schedule) bool
		want  []sim.Step
	}{{
		name: "a node fault of cache lasting 500ms or more",
		fails: func(s sim.Schedule) bool {
			return slices.ContainsFunc(s.Steps, func(st sim.Step) bool {
				return st.Target == "cache" && st.Fault.Kind().IsNode() && st.For >= 500*ms
			})
		},
		want: []sim.Step{{At: 0, For: 500 * ms, Target: "cache", Fault: toxics.Pause{}}},
	}, {
		name: "reset or down of db for 1s or more",
		fails: func(s sim.Schedule) bool {
			return slices.ContainsFunc(s.Steps, func(st sim.Step) bool {
				return is("db", toxics.KindReset, toxics.KindDown)(st) && st.For >= time.Second
			})
		},
		want: []sim.Step{{At: 0, For: time.Second, Target: "db", Fault: toxics.Reset{}}},
	}, {
		name: "blackhole or worse of db while cache stops or crashes",
		fails: func(s sim.Schedule) bool {
			return overlapping(s, is("db", toxics.KindBlackhole, toxics.KindReset, toxics.KindDown), is("cache", toxics.KindStop, toxics.KindCrash))
		},
		want: []sim.Step{
			{At: 0, For: 100 * ms, Target: "db", Fault: toxics.Blackhole{}},
			{At: 0, For: 100 * ms, Target: "cache", Fault: toxics.Stop{}},
		},
	}, {
		name: "latency of db with another link fault of db at once",
		fails: func(s sim.Schedule) bool {
			return overlapping(s, is("db", toxics.KindLatency), func(st sim.Step) bool {
				return st.Target == "db" && st.Fault.Kind() != toxics.KindLatency
			})
		},
		want: []sim.Step{
			{At: 0, For: 100 * ms, Target: "db", Fault: toxics.Latency{Delay: 50 * ms}},
			// The mildest link kind after latency: the rarest loss, without bursts.
			{At: 0, For: 100 * ms, Target: "db", Fault: toxics.Loss{Probability: 0.001}},
		},
	}}
	g, err := Schedules(shrinkBounds())
	require.NoError(t, err)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := shrinkOn(t, g, tt.fails)
			// rapid's shrink, then the 1-minimal pass, as Check does.
			got := slices.Clone(Minimize(shrinkBounds(), r.minimal, tt.fails).Steps)
			slices.SortFunc(got, func(a, b sim.Step) int { return strings.Compare(a.String(), b.String()) })
			want := slices.Clone(tt.want)
			slices.SortFunc(want, func(a, b sim.Step) int { return strings.Compare(a.String(), b.String()) })
			require.Equal(t, want, got, "rapid shrunk to:\n%s", r.minimal)
		})
	}
}

// TestCoverGuideFindsFirst: with the guide fed as the explorer feeds it, a
// failure that only one pair of 24 causes (any crash of cache) is drawn
// within the first 24 schedules, and still shrinks to its minimum (rapid's
// shrink, then the 1-minimal pass).
func TestCoverGuideFindsFirst(t *testing.T) {
	crash := func(s sim.Schedule) bool { return slices.ContainsFunc(s.Steps, is("cache", toxics.KindCrash)) }
	// The claim needs a search of as many draws as there are pairs; -short
	// cuts rapid's checks to a fifth (20), fewer than the pairs.
	if n, ok := search.RapidChecks(); ok && n < 2*len(allKinds()) {
		f := flag.Lookup("rapid.checks")
		old := f.Value.String()
		require.NoError(t, f.Value.Set(strconv.Itoa(100*len(allKinds()))))
		t.Cleanup(func() { _ = f.Value.Set(old) })
	}
	for range 10 {
		g, guide, err := schedules(shrinkBounds())
		require.NoError(t, err)
		pairs := 2*len(toxics.LinkKinds()) + len(toxics.NodeKinds()) // cache takes every kind, db the link kinds
		require.Len(t, guide.pairs, pairs)
		r, ok := shrinkOnce(t, g, crash, guide)
		require.True(t, ok, "no failure found")
		require.LessOrEqual(t, r.searched, pairs, "draws until the first failure")
		// Guided, rapid can stay among the pairs the guide steered to; the
		// 1-minimal pass after it, as in Check, reaches the minimum.
		got := Minimize(shrinkBounds(), r.minimal, crash)
		want := sim.Schedule{Steps: []sim.Step{{At: 0, For: 100 * time.Millisecond, Target: "cache", Fault: toxics.Crash{}}}}
		require.Equal(t, want, got, "rapid shrunk to:\n%s\nthe pass to:\n%s", r.minimal, got)
	}
}

// BenchmarkShrinkToThreshold reports the time and the number of property
// runs rapid needs to shrink the one-step case.
func BenchmarkShrinkToThreshold(b *testing.B) {
	cache := fakeTarget{"cache", append(toxics.LinkKinds(), toxics.NodeKinds()...)}
	g, err := Schedules(Bounds{Targets: Aim([]sim.Target{cache, linkOnly}), MaxSteps: 5, Horizon: 20 * time.Second,
		Fault: DurationRange{100 * time.Millisecond, 8 * time.Second}})
	require.NoError(b, err)
	runs, distinct := 0, 0
	var shrink time.Duration
	for b.Loop() {
		r := shrinkOn(b, g, longBlackholeOnDB)
		if !strings.Contains(r.minimal.String(), "for 2s db blackhole()") || len(r.minimal.Steps) != 1 {
			b.Fatalf("did not shrink to the threshold: %s", r.minimal)
		}
		runs += r.runs
		distinct += r.distinct
		shrink += r.elapsed
	}
	b.ReportMetric(float64(runs)/float64(b.N), "reruns/op")
	b.ReportMetric(float64(distinct)/float64(b.N), "distinct-schedules/op")
	b.ReportMetric(float64(shrink.Microseconds())/float64(b.N), "shrink-µs/op")
}

// TestSchedulesAnyBounds feeds Schedules arbitrary bounds: it returns an
// error or a generator whose schedules are valid, and never panics.
func TestSchedulesAnyBounds(t *testing.T) {
	targets := []sim.Target{linkOnly, allFault}
	// Mostly multiples of 100ms, so that many bounds are valid.
	dur := func(t *rapid.T, label string) time.Duration {
		return time.Duration(rapid.IntRange(-1, 80).Draw(t, label))*100*time.Millisecond + time.Duration(rapid.SampledFrom([]int{0, 0, 0, 0, 0, 0, 0, 1}).Draw(t, label+"_off"))
	}
	valid := 0
	rapid.Check(t, func(t *rapid.T) {
		// Each field is left at its default or drawn wild, so that many
		// combinations are valid and the rest test the errors.
		wild := func(label string) bool { return rapid.IntRange(0, 3).Draw(t, label) == 3 }
		pair := func(label string) DurationRange {
			lo := dur(t, label+"_min")
			return DurationRange{lo, lo + time.Duration(rapid.IntRange(-1, 40).Draw(t, label+"_more"))*100*time.Millisecond}
		}
		b := Bounds{Targets: Aim(targets)}
		if wild("wild_steps") {
			b.MaxSteps = rapid.IntRange(-2, 8).Draw(t, "max_steps")
		}
		if wild("wild_horizon") {
			b.Horizon = dur(t, "horizon")
		}
		if wild("wild_resolution") {
			b.Resolution = time.Duration(rapid.SampledFrom([]int64{int64(100 * time.Millisecond), -1, 1, int64(time.Millisecond), int64(333 * time.Millisecond)}).Draw(t, "resolution"))
		}
		if wild("wild_fault") {
			b.Fault = pair("fault")
		}
		v := &b.Values
		if wild("wild_delay") {
			v.Delay = pair("delay")
			v.Jitter = dur(t, "jitter")
		}
		if wild("wild_rate") {
			v.Rate = Int64Range{rapid.Int64Range(-5, 100).Draw(t, "rate_min"), rapid.Int64Range(-5, 100).Draw(t, "rate_max")}
			v.SliceSize = Int64Range{rapid.Int64Range(-5, 100).Draw(t, "size_min"), rapid.Int64Range(-5, 100).Draw(t, "size_max")}
		}
		if wild("wild_corrupt") {
			v.Corrupt = [2]float64{rapid.Float64Range(-1, 2).Draw(t, "p_min"), rapid.Float64Range(-1, 2).Draw(t, "p_max")}
		}
		if wild("wild_timeout") {
			v.TimeoutAfter = pair("after")
		}
		g, err := Schedules(b)
		if err != nil {
			return
		}
		valid++
		for seed := range 5 {
			s := g.Example(seed)
			if err := s.Validate(targets); err != nil {
				t.Fatalf("bounds %+v gave an invalid schedule:\n%s\n%v", b, s, err)
			}
		}
	})
	t.Logf("%d of the bounds were valid", valid)
}
