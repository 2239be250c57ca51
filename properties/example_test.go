package properties_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// A generator of schedules over two targets: db takes link faults only,
// cache every fault. Example draws one deterministically from a seed.
func ExampleSchedules() {
	g, err := properties.Schedules(properties.Bounds{
		Targets: []properties.TargetKinds{
			{Name: "db", Kinds: toxics.LinkKinds()},
			{Name: "cache", Kinds: append(toxics.LinkKinds(), toxics.NodeKinds()...)},
		},
		MaxSteps: 3,
		Horizon:  10 * time.Second,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	s := g.Example(7)
	fmt.Println(s.Validate([]sim.Target{newDep("db", toxics.LinkKinds()...), newDep("cache", append(toxics.LinkKinds(), toxics.NodeKinds()...)...)}) == nil)
	fmt.Println(s.Horizon() <= 10*time.Second)
	// Output:
	// true
	// true
}

// Bad bounds get an error that names every field at fault.
func ExampleBounds_Validate() {
	err := properties.Bounds{
		Targets: []properties.TargetKinds{{Name: "db", Kinds: []toxics.Kind{toxics.KindBlackhole}}},
		Horizon: 5 * time.Second,
		Fault:   properties.DurationRange{Min: 250 * time.Millisecond, Max: 8 * time.Second},
	}.Validate()
	fmt.Println(err)
	// Output:
	// properties: bounds: Fault.Min = 250ms is not a multiple of Resolution 100ms
}

// An invariant judged against a small history: one op hung through a
// blackhole of db.
func ExampleLatencyQuantile() {
	h := &sim.History{
		Duration: 3 * time.Second,
		Faults: []sim.FaultEvent{{Step: 0, Target: "db", Fault: toxics.Spec{Fault: toxics.Blackhole{}},
			Start: time.Second, End: 2 * time.Second}},
		Ops: []sim.Op{
			{ID: 1, Kind: "get", Intended: 100 * time.Millisecond, Start: 100 * time.Millisecond, End: 110 * time.Millisecond},
			{ID: 2, Kind: "get", Intended: 1100 * time.Millisecond, Start: 1100 * time.Millisecond, End: 2100 * time.Millisecond, Outcome: sim.Unknown, Err: "i/o timeout"},
		},
	}
	for _, f := range properties.Evaluate(h, []properties.Invariant{
		properties.LatencyQuantile{Q: 0.99, Max: 300 * time.Millisecond, Window: sim.Before},
		properties.LatencyQuantile{Q: 0.99, Max: 300 * time.Millisecond, Window: sim.During},
		properties.FailFast{Within: 100 * time.Millisecond, Kinds: []string{"put"}},
	}) {
		if f.Err == nil {
			fmt.Printf("%s: %s\n", f.Invariant, f.Verdict)
			continue
		}
		fmt.Printf("%s\n", f.Err)
	}
	// Output:
	// p99 latency <= 300ms before: held
	// p99 latency <= 300ms during: during fault 0: db blackhole() (1s..2s) at 1s: got p99 1s over 1 ops (slowest at that rank: op 2 get at 1.1s), want <= 300ms (over by 700ms)
	// failed ops return within 100ms during faults for [put]: no evidence: no op of kind [put] failed while a fault held
}

// Check in a test: each iteration resets the environment, runs a drawn
// schedule with the workload and judges the invariants. Here the world is
// simulated (Config.Simulate), so every run takes no wall time; against
// real dependencies, set Targets, Workload and Samplers instead and pass
// the harness.Env.
func ExampleCheck() {
	test := func(t *testing.T) {
		properties.Check(t, properties.Config{
			World: func(t testing.TB) sim.World {
				d := newDep("db", toxics.KindLatency, toxics.KindBlackhole, toxics.KindDown)
				return sim.World{Targets: []sim.Target{d}, Workload: workload(d, 200*time.Millisecond)}
			},
			Simulate: true,
			Invariants: []properties.Invariant{
				properties.MaxLatency{Max: 300 * time.Millisecond},
				properties.Recovery{Within: time.Second},
			},
		})
	}
	_ = test // run by go test as func TestX(t *testing.T)
}

// Explore returns what it found instead of failing the test, so a suite
// can assert that a fragile configuration is caught.
func ExampleExplore() {
	test := func(t *testing.T) {
		res, err := properties.Explore(t, properties.Config{
			World: func(t testing.TB) sim.World {
				d := newDep("db", toxics.KindBlackhole)
				return sim.World{Targets: []sim.Target{d}, Workload: workload(d, 0)} // no client timeout
			},
			Simulate:   true,
			Invariants: []properties.Invariant{properties.MaxLatency{Max: time.Second}},
		})
		if err != nil || res.Failure == nil {
			t.Fatalf("a client without a timeout was not caught: %v", err)
		}
		t.Logf("caught with %s", res.Failure.Schedule)
	}
	_ = test
}

// Samplers put pool statistics on the run's timeline; pool invariants
// read them by the sampler's name.
func ExampleReconnectStorm() {
	var dials sim.Dials
	dial := dials.DialContext(nil) // for an http.Transport's DialContext, a go-redis Dialer, pgx's DialFunc
	_ = dial
	samplers := []sim.Sampler{dials.Sampler("api")}
	invariants := []properties.Invariant{properties.ReconnectStorm{Pool: "api", Max: 10, Per: time.Second, Window: sim.After}}
	vals, _ := samplers[0].Sample(context.Background())
	fmt.Println(vals, invariants[0].Name())
	// Output:
	// map[dial_errors:0 dials:0 open:0] api: at most 10 dials per 1s after the last heal
}
