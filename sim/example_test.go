package sim_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// printTarget is a Target that prints what happens to it.
type printTarget string

func (p printTarget) Name() string                { return string(p) }
func (p printTarget) Supports(k toxics.Kind) bool { return k.IsLink() }
func (p printTarget) Apply(_ context.Context, f toxics.Fault) (func(context.Context) error, error) {
	fmt.Println("apply", p, f)
	return func(context.Context) error { fmt.Println("revert", p, f); return nil }, nil
}

func ExampleRun() {
	sched, err := sim.ParseSchedule([]byte(`{"steps":[
		{"at":"10ms","for":"20ms","target":"db","fault":{"kind":"blackhole"}},
		{"at":"20ms","for":"20ms","target":"cache","fault":{"kind":"latency","delay":"50ms"}}
	]}`))
	if err != nil {
		log.Fatal(err)
	}
	var stock int64 = 100
	h, err := sim.Run(context.Background(), sim.Plan{
		World: sim.World{
			Targets: []sim.Target{printTarget("db"), printTarget("cache")},
			Workload: sim.Workload{
				Driver: sim.OpenLoop{Rate: 500},
				Kinds: []sim.OpKind{{
					Name:  "stock",
					Input: func(r *rand.Rand) string { return strconv.Itoa(r.IntN(3)) },
					Do: func(ctx context.Context, n string) (string, error) {
						return strconv.FormatInt(stock, 10), nil // a real op would call the service here
					},
				}},
			},
		},
		Settings: sim.Settings{
			Cooldown: 20 * time.Millisecond,
		},
		Seed:     42,
		Schedule: sched,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(h.Ops), "ops,", len(h.Faults), "faults")
	for _, w := range h.Windows() {
		fmt.Println(w.Label)
	}
	// Output:
	// apply db blackhole()
	// apply cache latency(50ms)
	// revert db blackhole()
	// revert cache latency(50ms)
	// 30 ops, 2 faults
	// before the first fault
	// fault 0: db blackhole()
	// fault 1: cache latency(50ms)
	// after the last heal
}

func ExampleParseSchedule() {
	s, err := sim.ParseSchedule([]byte(`{"steps":[
		{"at":"1s","for":"2s","target":"db","fault":{"kind":"blackhole"}},
		{"at":"1.5s","for":"1s","target":"cache","fault":{"kind":"latency","delay":"200ms","jitter":"20ms"}},
		{"at":"4s","target":"db","fault":{"kind":"restart"}}
	]}`))
	fmt.Println(s)
	fmt.Println("horizon", s.Horizon(), err)

	_, err = sim.ParseSchedule([]byte(`{"steps":[{"at":"1s","for":"2s","target":"db","fault":{"kind":"down"}},{"at":"1s","for":"soon","target":"db","fault":{"kind":"down"}}]}`))
	fmt.Println(err)
	// Output:
	// 0: +1s for 2s db blackhole()
	// 1: +1.5s for 1s cache latency(200ms±20ms)
	// 2: +4s for 0s db restart()
	// horizon 4s <nil>
	// sim: parse schedule: step 1: field "for": "soon" is not a duration such as "1.5s"
}

func ExampleSchedule_Validate() {
	s := sim.Schedule{Steps: []sim.Step{
		{At: time.Second, For: 2 * time.Second, Target: "db", Fault: toxics.Blackhole{}},
		{At: 2 * time.Second, For: time.Second, Target: "db", Fault: toxics.Blackhole{Direction: toxics.Upstream}},
		{At: 0, For: time.Second, Target: "db", Fault: toxics.Crash{}},
		{At: -time.Second, For: time.Second, Target: "queue", Fault: toxics.Down{}},
	}}
	fmt.Println(s.Validate([]sim.Target{printTarget("db")}))
	// Output:
	// sim: schedule step 2 (+0s for 1s db crash()): target "db" does not support the node fault crash
	// sim: schedule step 3 (-1s for 1s queue down()): negative offset -1s
	// sim: schedule step 3 (-1s for 1s queue down()): unknown target "queue" (targets: db)
	// sim: schedule step 1 (+2s for 1s db blackhole(upstream)): overlaps step 0 (+1s for 2s db blackhole()) on target "db" and the two cannot hold at once
}

func ExampleHistory_Windows() {
	h := &sim.History{
		Duration: 3 * time.Second,
		Faults:   []sim.FaultEvent{{Target: "db", Fault: toxics.Spec{Fault: toxics.Down{}}, Start: time.Second, End: 2 * time.Second}},
	}
	for i := range 30 {
		at := time.Duration(i) * 100 * time.Millisecond
		op := sim.Op{ID: uint64(i), Kind: "orders", Intended: at, Start: at, End: at + 5*time.Millisecond}
		if at >= time.Second && at < 2*time.Second {
			op.End, op.Outcome, op.Err = at+time.Millisecond, sim.Failed, "connection refused"
		}
		h.Ops = append(h.Ops, op)
	}
	// An op counts in the windows that hold it (Window.Holds): the op
	// intended at 2s, as the fault was reverted, counts in the fault's
	// window and in the After window.
	for _, w := range h.Windows() {
		fmt.Printf("%s: %v\n", w.Label, h.Stats(w, "orders"))
	}
	// Output:
	// before the first fault: 10 ops, 0 errors (0.0%), p50 5ms p90 5ms p99 5ms max 5ms
	// fault 0: db down(): 11 ops, 10 errors (90.9%), p50 1ms p90 1ms p99 5ms max 5ms
	// after the last heal: 10 ops, 0 errors (0.0%), p50 5ms p90 5ms p99 5ms max 5ms
}

func ExampleWriteReport() {
	h := &sim.History{
		Seed:     7,
		Duration: 2 * time.Second,
		Schedule: sim.Schedule{Steps: []sim.Step{{At: 500 * time.Millisecond, For: time.Second, Target: "db", Fault: toxics.Blackhole{}}}},
		Faults:   []sim.FaultEvent{{Target: "db", Fault: toxics.Spec{Fault: toxics.Blackhole{}}, Start: 500 * time.Millisecond, End: 1500 * time.Millisecond}},
		Ops:      []sim.Op{{Kind: "orders", End: 3 * time.Millisecond}, {ID: 1, Kind: "orders", Intended: time.Second, Start: time.Second, End: 2 * time.Second, Outcome: sim.Unknown, Err: "context deadline exceeded"}},
	}
	var buf bytes.Buffer
	err := sim.WriteReport(&buf, h, sim.ReportOptions{
		Verdict: "FAIL: orders p99 during fault 0 (db blackhole()) was 1s > 300ms",
		Failed:  true,
		Replay:  "go test ./checkout -run TestCheckout/seed=7",
	})
	if err != nil {
		log.Fatal(err)
	}
	path := filepath.Join(os.TempDir(), "shakedown-example-report.html")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
	defer os.Remove(path)
	fmt.Println(strings.HasPrefix(buf.String(), "<!DOCTYPE html>"), strings.Contains(buf.String(), "FAIL: orders p99"))
	// Output:
	// true true
}

// Dials counts the connections a client opens; its sampler puts the
// counts on the run's timeline.
func ExampleDials() {
	var dials sim.Dials
	transport := &http.Transport{DialContext: dials.DialContext(nil)}
	_ = transport
	vals, _ := dials.Sampler("api").Sample(context.Background())
	fmt.Println(vals)
	// Output:
	// map[dial_errors:0 dials:0 open:0]
}
