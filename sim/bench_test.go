package sim

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/shakedown/shakedown/toxics"
)

// BenchmarkRecord measures the cost of recording one op. Run it over a
// million ops to see the memory per op:
//
//	go test ./sim -run '^$' -bench Record -benchtime=1000000x -benchmem
func BenchmarkRecord(b *testing.B) {
	var r Recorder
	op := Op{Kind: "orders", Intended: time.Millisecond, Start: time.Millisecond, End: 2 * time.Millisecond, Input: "k=1"}
	b.ReportAllocs()
	id := uint64(0)
	cpu := cpuTime()
	for b.Loop() {
		op.ID = id
		id++
		r.Record(op)
	}
	reportCPU(b, cpu)
	if r.Len() != int(id) {
		b.Fatal("lost ops")
	}
}

// reportCPU reports the process's CPU time per op since cpu0 (GC
// included), which a loaded machine does not inflate the way it does the
// wall-clock ns/op.
func reportCPU(b *testing.B, cpu0 time.Duration) {
	if cpu0 > 0 {
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkRecordParallel records from every P at once.
func BenchmarkRecordParallel(b *testing.B) {
	var r Recorder
	b.ReportAllocs()
	cpu := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		op := Op{Kind: "orders", Intended: time.Millisecond, Start: time.Millisecond, End: 2 * time.Millisecond}
		for pb.Next() {
			r.Record(op)
		}
	})
	reportCPU(b, cpu)
}

// BenchmarkOpOverhead measures what the driver adds to every op besides
// recording it: drawing its kind and input from the seed, its context with
// the op ID, the clock readings and the classification. The op itself does
// nothing; trace IDs are computed only when asked for.
func BenchmarkOpOverhead(b *testing.B) {
	var rec Recorder
	do := func(context.Context, string) (string, error) { return "", nil }
	w := newWorkRun(context.Background(), 1, time.Now(), time.Hour, Workload{Kinds: []OpKind{
		{Name: "orders", Weight: 3, Do: do}, {Name: "stock", Do: do},
	}}, nil, &rec)
	b.ReportAllocs()
	id := uint64(0)
	cpu := cpuTime()
	for b.Loop() {
		w.do(id, 0, true)
		id++
	}
	reportCPU(b, cpu)
}

// BenchmarkRunnerLateness runs 1,000 steps, 5 ms apart, on the wall clock
// and reports how late the runner applied them (p50, p99, max, in µs):
//
//	go test ./sim -run '^$' -bench RunnerLateness -benchtime=1x
func BenchmarkRunnerLateness(b *testing.B) {
	const steps = 1000
	targets := []Target{&stubTarget{name: "a", start: time.Now()}, &stubTarget{name: "b", start: time.Now()}}
	var sched Schedule
	for i := range steps {
		// Alternate targets so that each step also overlaps a revert.
		sched.Steps = append(sched.Steps, Step{At: time.Duration(i) * 5 * time.Millisecond, For: 7 * time.Millisecond,
			Target: []string{"a", "b"}[i%2], Fault: toxics.Latency{Delay: time.Millisecond}})
	}
	var late []time.Duration
	for b.Loop() {
		h, err := Run(context.Background(), Plan{World: World{Targets: targets}, Settings: Settings{Cooldown: -1}, Schedule: sched})
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range h.Faults {
			late = append(late, f.Start-sched.Steps[f.Step].At)
		}
	}
	slices.Sort(late)
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	b.ReportMetric(us(quantile(late, 0.5)), "p50-late-µs")
	b.ReportMetric(us(quantile(late, 0.99)), "p99-late-µs")
	b.ReportMetric(us(late[len(late)-1]), "max-late-µs")
}
