package properties_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/shakedown/shakedown/harness"
	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

type namedTarget string

func (n namedTarget) Name() string              { return string(n) }
func (namedTarget) Supports(k toxics.Kind) bool { return k.IsLink() }
func (namedTarget) Apply(context.Context, toxics.Fault) (func(context.Context) error, error) {
	return func(context.Context) error { return nil }, nil
}

// A schedule found against sim's endpoints, named by the address clients
// dial, aimed at the harness dependencies of the real world.
func ExampleRetarget() {
	found := sim.Schedule{Steps: []sim.Step{
		{At: time.Second, For: 2 * time.Second, Target: "db:5432", Fault: toxics.Blackhole{}},
		{At: 4 * time.Second, For: time.Second, Target: "kv", Fault: toxics.Down{}},
	}}
	real := []sim.Target{namedTarget("db"), namedTarget("cache")}
	s, err := properties.Retarget(found, real, map[string]string{"kv": "cache"})
	fmt.Println(err)
	fmt.Println(s)
	// Output:
	// <nil>
	// 0: +1s for 2s db blackhole()
	// 1: +4s for 1s cache down()
}

// ReplayOn takes a schedule a simulated check saved to the real world in
// one call: the same workload through a real client, the same invariants,
// a harness Link (here in front of a server the test started) instead of
// the fake.
func ExampleReplayOn() {
	test := func(t *testing.T) {
		link := harness.NewLink(t, "echo", echoServer(t)) // in front of a server the test started
		var d net.Dialer
		it, err := properties.ReplayOn(t, properties.Config{
			World: properties.Shared(sim.World{
				Targets:  []sim.Target{link},
				Workload: echoLoad(d.DialContext, link.Addr(), 200*time.Millisecond),
			}),
			Invariants: []properties.Invariant{properties.MaxLatency{Max: 300 * time.Millisecond}},
		}, "testdata/shakedown/TestEchoSimulated/schedule.json", nil)
		if err != nil {
			t.Fatal(err)
		}
		if it.Findings.Broken() {
			t.Errorf("fails for real too:\n%s", it.Findings)
		}
	}
	_ = test
}
