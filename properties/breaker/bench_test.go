package breaker_test

import (
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/timeout"
	"github.com/sony/gobreaker/v2"

	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/properties/breaker"
	"github.com/shakedown/shakedown/properties/breaker/failsafecheck"
	"github.com/shakedown/shakedown/properties/breaker/gobreakercheck"
	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// The figures of breaker verification are taken in synctest bubbles, and
// synctest needs a *testing.T, which a benchmark does not have; so
// TestFigures runs them with testing.Benchmark, only when asked:
//
//	go test ./properties/breaker -run TestFigures -breaker.figures -v
var breakerFigures = flag.Bool("breaker.figures", false, "run TestFigures (simulated schedules and ops per wall second of breaker verification)")

// figureConfig is a breaker check whose runs last at most 1s of virtual
// time at 100 calls/s: schedules of up to 99 ops (89 for figureSchedule,
// whose horizon is 500ms).
func figureConfig(build func() breaker.Breaker) breaker.Config {
	return breaker.Config{
		New:      build,
		Spec:     breaker.Spec{FailureThreshold: 3, OpenFor: 200 * time.Millisecond, CallTimeout: 100 * time.Millisecond, ProbesInFlight: true},
		Rate:     100,
		Bounds:   properties.Bounds{Horizon: 600 * time.Millisecond},
		Cooldown: 400 * time.Millisecond,
	}
}

func figureGoBreaker() breaker.Breaker {
	return gobreakercheck.Breaker(gobreaker.NewCircuitBreaker[any](gobreaker.Settings{Timeout: 200 * time.Millisecond,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 3 }}), 100*time.Millisecond)
}

func figureFailsafe() breaker.Breaker {
	cb := circuitbreaker.NewBuilder[any]().WithFailureThreshold(3).WithSuccessThreshold(1).WithDelay(200 * time.Millisecond).Build()
	return failsafecheck.Breaker(cb, failsafe.With[any](cb, timeout.New[any](100*time.Millisecond)))
}

// figureSchedule trips the breaker twice: a down, then a blackhole.
var figureSchedule = sim.Schedule{Steps: []sim.Step{
	{At: 100 * time.Millisecond, For: 150 * time.Millisecond, Target: "dep", Fault: toxics.Down{}},
	{At: 300 * time.Millisecond, For: 200 * time.Millisecond, Target: "dep", Fault: toxics.Blackhole{}},
}}

func TestFigures(t *testing.T) {
	if !*breakerFigures {
		t.Skip("run with -breaker.figures to measure (go test ./properties/breaker -run TestFigures -breaker.figures -v)")
	}
	breakers := []struct {
		name string
		new  func() breaker.Breaker
	}{{"gobreaker", figureGoBreaker}, {"failsafe", figureFailsafe}}
	for _, br := range breakers {
		// One schedule run again and again: a bubble, a fresh breaker, 89
		// calls, the judge. The CPU figure is the process's CPU time per
		// schedule, which a loaded machine does not inflate.
		t.Run("run/"+br.name, func(t *testing.T) {
			cfg := figureConfig(br.new)
			var ops int
			var cpu time.Duration // of the last round, the one r reports
			r := testing.Benchmark(func(b *testing.B) {
				b.ReportAllocs()
				cpu0 := brkCPUTime()
				for b.Loop() {
					run, err := breaker.RunSchedule(t, cfg, figureSchedule)
					if err != nil || run.Broken() {
						t.Fatalf("%v %v", err, run.Violations)
					}
					ops = len(run.Ops)
				}
				cpu = brkCPUTime() - cpu0
			})
			per := float64(r.T.Nanoseconds()) / float64(r.N)
			t.Logf("N=%d, %d ops per schedule: %.0f µs/schedule, %.0f schedules/s, %.0f simulated ops/s (wall); %s; %d allocs/schedule",
				r.N, ops, per/1e3, 1e9/per, float64(ops)*1e9/per, perCPU(cpu, r.N, ops), r.AllocsPerOp())
		})
		// The same on every core at once.
		t.Run("parallel/"+br.name, func(t *testing.T) {
			cfg := figureConfig(br.new)
			r := testing.Benchmark(func(b *testing.B) {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := breaker.RunSchedule(t, cfg, figureSchedule); err != nil {
							t.Error(err)
						}
					}
				})
			})
			per := float64(r.T.Nanoseconds()) / float64(r.N)
			t.Logf("N=%d: %.0f schedules/s, %.0f simulated ops/s (wall, all cores)", r.N, 1e9/per, 89*1e9/per)
		})
		// The whole exploration: draws, runs, judging, coverage; batches
		// of schedules run on every core.
		t.Run("explore/"+br.name, func(t *testing.T) {
			cfg := figureConfig(br.new)
			cfg.Iterations = 2000
			cpu0 := brkCPUTime()
			res, err := breaker.Explore(t, cfg)
			cpu := brkCPUTime() - cpu0
			if err != nil || res.Failure != nil {
				t.Fatalf("%v %v", err, res.Failure)
			}
			s := res.Elapsed.Seconds()
			t.Logf("%d schedules (%d ops, %.0f per schedule) in %v: %.0f schedules/s, %.0f simulated ops/s (wall); %s",
				res.Iterations, res.Ops, float64(res.Ops)/float64(res.Iterations), res.Elapsed.Round(time.Millisecond),
				float64(res.Iterations)/s, float64(res.Ops)/s, perCPU(cpu, res.Iterations, int(res.Ops/int64(res.Iterations))))
		})
	}
}

// TestFiguresSixtySeconds is the exploration of a breaker with a 60s
// open time, as gobreaker has by default, against its own spec (it
// holds): every run lasts a minute or more of virtual time, 6,000 calls
// and more.
func TestFiguresSixtySeconds(t *testing.T) {
	if !*breakerFigures {
		t.Skip("run with -breaker.figures to measure (go test ./properties/breaker -run TestFigures -breaker.figures -v)")
	}
	cfg := breaker.Config{
		New: func() breaker.Breaker {
			return gobreakercheck.Breaker(gobreaker.NewCircuitBreaker[any](gobreaker.Settings{Timeout: time.Minute,
				ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 3 }}), 200*time.Millisecond)
		},
		Spec:       breaker.Spec{FailureThreshold: 3, OpenFor: time.Minute, CallTimeout: 200 * time.Millisecond},
		Iterations: 32,
	}
	cpu0 := brkCPUTime()
	res, err := breaker.Explore(t, cfg)
	cpu := brkCPUTime() - cpu0
	if err != nil || res.Failure != nil {
		t.Fatalf("%v %v", err, res.Failure)
	}
	s := res.Elapsed.Seconds()
	t.Logf("%d schedules (%d ops, %.0f per schedule) in %v: %.0f schedules/s, %.0f simulated ops/s (wall); %s",
		res.Iterations, res.Ops, float64(res.Ops)/float64(res.Iterations), res.Elapsed.Round(time.Millisecond),
		float64(res.Iterations)/s, float64(res.Ops)/s, perCPU(cpu, res.Iterations, int(res.Ops/int64(res.Iterations))))
}

// perCPU is the CPU time per schedule, and the schedules and ops per CPU
// second it makes.
func perCPU(cpu time.Duration, schedules, opsPer int) string {
	if cpu <= 0 || schedules == 0 {
		return "CPU time not measured"
	}
	per := cpu.Seconds() / float64(schedules)
	return fmt.Sprintf("%.0f µs CPU/schedule: %.0f schedules and %.0f ops per CPU second", per*1e6, 1/per, float64(opsPer)/per)
}
