package harness_test

import (
	"context"
	"fmt"
	"time"

	"github.com/shakedown/shakedown/harness"
	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// A staging database sits behind a Toxiproxy server whose API is at
// toxiproxy.staging:8474, as its proxy "postgres". The schedule names the
// target "db", as it would against an Env; OpenRemoteProxy maps that name
// to the proxy. (In a test, NewRemoteProxy does the same and reverts what
// is left in t.Cleanup.) The example is compiled, not run: it needs the
// server.
func ExampleOpenRemoteProxy() {
	db, err := harness.OpenRemoteProxy("db", "toxiproxy.staging:8474", "postgres")
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	defer db.Clear(ctx)

	s := sim.Schedule{Steps: []sim.Step{
		{At: 0, For: 2 * time.Second, Target: "db", Fault: toxics.Latency{Delay: 200 * time.Millisecond}},
		{At: 3 * time.Second, For: time.Second, Target: "db", Fault: toxics.Down{}},
		// A reset would be refused before the run starts: Toxiproxy
		// cannot abort live connections.
	}}
	h, err := sim.Run(ctx, sim.Plan{World: sim.World{Targets: []sim.Target{db}}, Schedule: s})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, ev := range h.Faults {
		fmt.Println(ev.Fault.Fault, "held from", ev.Start, "to", ev.End)
	}
}
