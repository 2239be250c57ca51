package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shakedown/shakedown/toxics"
	"github.com/stretchr/testify/require"
)

// TestRunVirtualTime runs a 10-second schedule inside a synctest bubble:
// it takes no wall time, and every step starts exactly on time.
func TestRunVirtualTime(t *testing.T) {
	wall := time.Now()
	synctest.Test(t, func(t *testing.T) {
		db := &stubTarget{name: "db", nodes: true, start: time.Now()}
		cache := &stubTarget{name: "cache", start: time.Now()}
		sched := Schedule{Steps: []Step{
			{At: 1 * time.Second, For: 2 * time.Second, Target: "db", Fault: toxics.Blackhole{}},
			{At: 2 * time.Second, For: 3 * time.Second, Target: "cache", Fault: toxics.Latency{Delay: ms(100)}},
			{At: 6 * time.Second, For: 3 * time.Second, Target: "db", Fault: toxics.Crash{}},
			{At: 9500 * time.Millisecond, Target: "db", Fault: toxics.Restart{}},
			{At: 9500 * time.Millisecond, For: 500 * time.Millisecond, Target: "cache", Fault: toxics.Down{}},
		}}
		h, err := Run(t.Context(), Plan{World: World{Targets: []Target{db, cache}}, Settings: Settings{Cooldown: -1}, Seed: 1, Schedule: sched})
		require.NoError(t, err)
		require.Equal(t, []stubCall{
			{false, "db", "blackhole()", 1 * time.Second},
			{true, "db", "blackhole()", 3 * time.Second},
			{false, "db", "crash()", 6 * time.Second},
			{true, "db", "crash()", 9 * time.Second},
			{false, "db", "restart()", 9500 * time.Millisecond},
			{true, "db", "restart()", 9500 * time.Millisecond},
		}, db.log())
		require.Equal(t, []stubCall{
			{false, "cache", "latency(100ms)", 2 * time.Second},
			{true, "cache", "latency(100ms)", 5 * time.Second},
			{false, "cache", "down()", 9500 * time.Millisecond},
			{true, "cache", "down()", 10 * time.Second},
		}, cache.log())
		require.Len(t, h.Faults, 5)
		for _, f := range h.Faults {
			st := sched.Steps[f.Step]
			require.Equal(t, st.At, f.Start, "step %d starts exactly on time", f.Step)
			want := st.End()
			if st.Fault.Kind() == toxics.KindRestart {
				want = st.At
			}
			require.Equal(t, want, f.End, "step %d ends exactly on time", f.Step)
			require.Empty(t, f.Err)
			require.Empty(t, f.RevertErr)
		}
		require.Equal(t, 10*time.Second, h.Duration)
	})
	require.Less(t, time.Since(wall), 5*time.Second, "a virtual 10 s schedule must take (next to) no wall time; 5 s is a generous bound")
}

// TestRunSameInstant checks the stable order of events that fall on the
// same instant: reverts before applies, then by step index.
func TestRunSameInstant(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var lg sharedLog
		targets := []Target{loggingTarget{"a", &lg}, loggingTarget{"b", &lg}, loggingTarget{"c", &lg}}
		sched := Schedule{Steps: []Step{
			{At: ms(10), For: ms(10), Target: "c", Fault: toxics.Down{}},
			{At: ms(20), For: ms(10), Target: "b", Fault: toxics.Down{}},
			{At: ms(0), For: ms(20), Target: "b", Fault: toxics.Reset{}},
			{At: ms(0), For: ms(20), Target: "a", Fault: toxics.Down{}},
			{At: ms(20), For: ms(0), Target: "a", Fault: toxics.Blackhole{}},
			{At: ms(20), For: ms(5), Target: "c", Fault: toxics.Blackhole{}},
		}}
		_, err := Run(t.Context(), Plan{World: World{Targets: targets}, Settings: Settings{Cooldown: -1}, Schedule: sched})
		require.NoError(t, err)
		require.Equal(t, []string{
			"apply b reset()", "apply a down()", // t=0: steps 2, 3 in offset order, then index
			"apply c down()",                                         // t=10
			"revert c down()", "revert b reset()", "revert a down()", // t=20: reverts by index 0, 2, 3
			"apply b down()", "apply a blackhole()", "apply c blackhole()", // t=20: applies by index 1, 4, 5
			"revert a blackhole()", // zero duration: reverted at once, t=20
			"revert c blackhole()", // t=25
			"revert b down()",      // t=30
		}, lg.calls)
	})
}

func TestRunCancelRevertsEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := &stubTarget{name: "db", nodes: true, start: time.Now()}
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(2550*time.Millisecond, cancel) // not on an arrival: same-instant events race
		sched := Schedule{Steps: []Step{
			{At: 1 * time.Second, For: 5 * time.Second, Target: "db", Fault: toxics.Latency{Delay: ms(10)}},
			{At: 2 * time.Second, For: 5 * time.Second, Target: "db", Fault: toxics.Pause{}},
			{At: 3 * time.Second, For: 5 * time.Second, Target: "db", Fault: toxics.Blackhole{}},
		}}
		var started atomic.Int64
		h, err := Run(ctx, Plan{
			World: World{
				Targets: []Target{db},
				Workload: Workload{
					Driver: OpenLoop{Rate: 10},
					Kinds: []OpKind{{Name: "slow", Do: func(ctx context.Context, _ string) (string, error) {
						started.Add(1)
						<-ctx.Done() // an op that hangs until cancelled
						return "", ctx.Err()
					}}},
				},
			},
			Seed:     3,
			Schedule: sched,
		})
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorContains(t, err, "sim: run cancelled at 2.55s")
		require.Equal(t, []stubCall{
			{false, "db", "latency(10ms)", 1 * time.Second},
			{false, "db", "pause()", 2 * time.Second},
			{true, "db", "latency(10ms)", 2550 * time.Millisecond},
			{true, "db", "pause()", 2550 * time.Millisecond},
		}, db.log())
		require.Len(t, h.Faults, 2, "the third step never started")
		for _, f := range h.Faults {
			require.Equal(t, 2550*time.Millisecond, f.End)
		}
		// Ops intended at 0, 100ms, ..., 2.5s all ran and were cancelled.
		require.Len(t, h.Ops, 26)
		require.EqualValues(t, 26, started.Load())
		for i, op := range h.Ops {
			require.EqualValues(t, i, op.ID)
			require.Equal(t, Unknown, op.Outcome)
			require.Equal(t, "context canceled", op.Err)
			require.Equal(t, 2550*time.Millisecond, op.End)
		}
	})
}

func TestRunRevertError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := &stubTarget{name: "db", revertErr: errStub, start: time.Now()}
		sched := Schedule{Steps: []Step{{At: ms(100), For: ms(100), Target: "db", Fault: toxics.Down{}}}}
		h, err := Run(t.Context(), Plan{World: World{Targets: []Target{db}}, Schedule: sched})
		require.ErrorIs(t, err, errStub)
		var se *StepError
		require.ErrorAs(t, err, &se)
		require.Equal(t, 0, se.Index)
		require.Equal(t, "sim: schedule step 0 (+100ms for 100ms db down()): revert: stub failure", se.Error())
		require.Len(t, h.Faults, 1)
		require.Equal(t, "stub failure", h.Faults[0].RevertErr)
		require.Zero(t, h.Faults[0].End, "a fault whose revert failed was never reverted")
	})
}

func TestRunApplyErrorAndPanics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bad := &stubTarget{name: "bad", applyErr: errStub, start: time.Now()}
		sched := Schedule{Steps: []Step{
			{At: ms(100), For: ms(100), Target: "bad", Fault: toxics.Down{}},
			{At: ms(100), For: ms(100), Target: "boom", Fault: toxics.Down{}},
		}}
		h, err := Run(t.Context(), Plan{
			World: World{
				Targets: []Target{bad, panicTarget{}},
				Workload: Workload{Driver: OpenLoop{Rate: 10}, Kinds: []OpKind{{Name: "p", Do: func(context.Context, string) (string, error) {
					panic("op exploded")
				}}}},
			},
			Settings: Settings{
				Cooldown: -1,
			},
			Schedule: sched,
		})
		require.ErrorIs(t, err, errStub)
		require.ErrorIs(t, err, ErrPanic)
		require.ErrorContains(t, err, "step 0")
		require.ErrorContains(t, err, `step 1 (+100ms for 100ms boom down()): apply: sim: panic in Apply of target "boom": target exploded`)
		require.ErrorContains(t, err, "op exploded")
		require.Len(t, h.Faults, 2)
		require.Equal(t, "stub failure", h.Faults[0].Err)
		require.False(t, h.Faults[0].Applied())
		require.Len(t, h.Ops, 2)
		require.Equal(t, Unknown, h.Ops[0].Outcome)
		require.Contains(t, h.Ops[0].Err, "op exploded")
	})
}

type panicTarget struct{}

func (panicTarget) Name() string              { return "boom" }
func (panicTarget) Supports(toxics.Kind) bool { return true }
func (panicTarget) Apply(context.Context, toxics.Fault) (func(context.Context) error, error) {
	panic("target exploded")
}

func TestRunConfigErrors(t *testing.T) {
	db := &stubTarget{name: "db"}
	do := func(context.Context, string) (string, error) { return "", nil }
	for _, tc := range []struct {
		name string
		cfg  Plan
		want string
	}{
		{"bad schedule", Plan{World: World{Targets: []Target{db}}, Schedule: Schedule{Steps: []Step{{Target: "x", Fault: toxics.Down{}}}}}, `unknown target "x"`},
		{"driver without kinds", Plan{World: World{Workload: Workload{Driver: OpenLoop{Rate: 1}}}}, "Workload.Kinds is empty"},
		{"zero rate", Plan{World: World{Workload: Workload{Driver: OpenLoop{}, Kinds: []OpKind{{Name: "a", Do: do}}}}}, "OpenLoop.Rate 0 is not a positive"},
		{"NaN rate", Plan{World: World{Workload: Workload{Driver: OpenLoop{Rate: nan()}, Kinds: []OpKind{{Name: "a", Do: do}}}}}, "OpenLoop.Rate NaN"},
		{"negative cap", Plan{World: World{Workload: Workload{Driver: OpenLoop{Rate: 1, MaxInFlight: -1}, Kinds: []OpKind{{Name: "a", Do: do}}}}}, "MaxInFlight -1"},
		{"negative workers", Plan{World: World{Workload: Workload{Driver: ClosedLoop{Workers: -2}, Kinds: []OpKind{{Name: "a", Do: do}}}}}, "Workers -2"},
		{"unnamed kind", Plan{World: World{Workload: Workload{Kinds: []OpKind{{Do: do}}}}}, "Kinds[0]: Name is empty"},
		{"duplicate kind", Plan{World: World{Workload: Workload{Kinds: []OpKind{{Name: "a", Do: do}, {Name: "a", Do: do}}}}}, `Kinds[1]: name "a" is also the name of Kinds[0]`},
		{"nil Do", Plan{World: World{Workload: Workload{Kinds: []OpKind{{Name: "a"}}}}}, `Kinds[0] ("a"): Do is nil`},
		{"negative weight", Plan{World: World{Workload: Workload{Kinds: []OpKind{{Name: "a", Weight: -1, Do: do}}}}}, "Weight -1 is negative"},
		{"nil sampler", Plan{World: World{Samplers: []Sampler{nil}}}, "Samplers[0] is nil"},
		{"negative drain", Plan{Settings: Settings{Drain: -1}}, "Drain -1ns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := Run(t.Context(), tc.cfg)
			require.ErrorContains(t, err, tc.want)
			require.Nil(t, h)
		})
	}
}

func nan() float64 { z := 0.0; return z / z }

func TestOpenLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, err := Run(t.Context(), Plan{
			World: World{
				Workload: Workload{
					Driver: OpenLoop{Rate: 100},
					Kinds: []OpKind{{Name: "sleep", Do: func(ctx context.Context, _ string) (string, error) {
						time.Sleep(ms(5))
						return "done", nil
					}}},
				},
			},
			Settings: Settings{
				Cooldown: 2 * time.Second,
			},
		})
		require.NoError(t, err)
		require.Len(t, h.Ops, 200)
		for i, op := range h.Ops {
			require.EqualValues(t, i, op.ID)
			require.Equal(t, ms(10*i), op.Intended)
			require.Equal(t, op.Intended, op.Start)
			require.Equal(t, ms(5), op.Latency())
			require.Equal(t, OK, op.Outcome)
			require.Equal(t, "done", op.Output)
		}
	})
}

// TestOpenLoopCap shows that ops held back by MaxInFlight keep their
// intended start, so their latency includes the wait, and that ops still
// waiting at the end are recorded, not dropped.
func TestOpenLoopCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, err := Run(t.Context(), Plan{
			World: World{
				Workload: Workload{
					Driver: OpenLoop{Rate: 100, MaxInFlight: 2},
					Kinds: []OpKind{{Name: "slow", Do: func(ctx context.Context, _ string) (string, error) {
						time.Sleep(ms(100))
						return "", nil
					}}},
				},
			},
			Settings: Settings{
				Cooldown: time.Second,
			},
		})
		require.NoError(t, err)
		require.Len(t, h.Ops, 100, "every op intended within the 1 s run is in the history")
		started, skipped := 0, 0
		for i, op := range h.Ops {
			require.EqualValues(t, i, op.ID)
			require.Equal(t, ms(10*i), op.Intended)
			if op.Err != "" {
				skipped++
				require.Equal(t, ErrNotStarted.Error(), op.Err)
				require.Equal(t, Missed, op.Outcome, "the framework never issued it")
				require.Equal(t, time.Second, op.Start)
				continue
			}
			started++
			require.Equal(t, ms(100*(i/2)+10*(i%2)), op.Start, "two slots, each free every 100ms")
			require.Equal(t, op.Start+ms(100)-op.Intended, op.Latency())
		}
		require.Equal(t, 20, started)
		require.Equal(t, 80, skipped)
	})
}

func TestClosedLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var inFlight, peak atomic.Int64
		h, err := Run(t.Context(), Plan{
			World: World{
				Workload: Workload{
					Driver: ClosedLoop{Workers: 3, Think: ms(10)},
					Kinds: []OpKind{{Name: "op", Do: func(ctx context.Context, _ string) (string, error) {
						n := inFlight.Add(1)
						defer inFlight.Add(-1)
						if n > peak.Load() {
							peak.Store(n)
						}
						time.Sleep(ms(40))
						return "", nil
					}}},
				},
			},
			Settings: Settings{
				Cooldown: time.Second,
			},
		})
		require.NoError(t, err)
		require.Len(t, h.Ops, 3*20, "3 workers, one op each 50ms for 1s")
		require.EqualValues(t, 3, peak.Load())
		for _, op := range h.Ops {
			require.Equal(t, op.Start, op.Intended)
			require.Equal(t, ms(40), op.Latency())
		}
	})
}

func TestOpTimeoutAndClassify(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, err := Run(t.Context(), Plan{
			World: World{
				Workload: Workload{
					Driver:  OpenLoop{Rate: 10},
					Timeout: ms(50),
					Kinds: []OpKind{{Name: "hang", Do: func(ctx context.Context, _ string) (string, error) {
						<-ctx.Done()
						return "", ctx.Err()
					}}},
				},
			},
			Settings: Settings{
				Cooldown: ms(300),
			},
		})
		require.NoError(t, err)
		require.Len(t, h.Ops, 3)
		for _, op := range h.Ops {
			require.Equal(t, Unknown, op.Outcome)
			require.Equal(t, "context deadline exceeded", op.Err)
			require.Equal(t, ms(50), op.Latency())
		}
		refused := fmt.Errorf("wrapped: %w", errStub)
		h, err = Run(t.Context(), Plan{
			World: World{
				Workload: Workload{
					Driver:   OpenLoop{Rate: 10},
					Classify: func(err error) Outcome { return Failed },
					Kinds: []OpKind{{Name: "refused", Do: func(context.Context, string) (string, error) {
						return "", refused
					}}},
				},
			},
			Settings: Settings{
				Cooldown: ms(100),
			},
		})
		require.NoError(t, err)
		require.Equal(t, Failed, h.Ops[0].Outcome)
	})
}

func TestWorkloadDeterminism(t *testing.T) {
	run := func(seed int64) []string {
		var out []string
		synctest.Test(t, func(t *testing.T) {
			do := func(ctx context.Context, in string) (string, error) {
				time.Sleep(ms(3))
				return Traceparent(ctx), nil
			}
			input := func(r *rand.Rand) string { return fmt.Sprint(r.IntN(1000)) }
			h, err := Run(t.Context(), Plan{
				World: World{
					Workload: Workload{
						Driver: OpenLoop{Rate: 200},
						Kinds: []OpKind{
							{Name: "orders", Weight: 3, Input: input, Do: do},
							{Name: "stock", Input: input, Do: do},
						},
					},
				},
				Settings: Settings{
					Cooldown: 500 * time.Millisecond,
				},
				Seed: seed,
			})
			require.NoError(t, err)
			for _, op := range h.Ops {
				out = append(out, fmt.Sprintf("%d %s %s %s", op.ID, op.Kind, op.Input, op.Output))
			}
		})
		return out
	}
	a, b, c := run(7), run(7), run(8)
	require.Len(t, a, 100)
	require.Equal(t, a, b, "same seed, same ops")
	require.NotEqual(t, a, c, "another seed, other ops")
	orders := 0
	for _, s := range a {
		if strings.Contains(s, " orders ") {
			orders++
		}
	}
	require.InDelta(t, 75, orders, 15, "weights 3:1")
}

func TestSamplers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int64
		counter := SamplerFunc("pool", func(context.Context) (map[string]float64, error) {
			v := n.Add(1)
			if v == 3 {
				return nil, errStub
			}
			return map[string]float64{"in_use": float64(v), "idle": 1}, nil
		})
		h, err := Run(t.Context(), Plan{World: World{Samplers: []Sampler{counter, Goroutines()}}, Settings: Settings{Cooldown: ms(500), SampleEvery: ms(100)}})
		require.NoError(t, err)
		var pool []string
		goroutines := 0
		for _, s := range h.Samples {
			switch s.Name {
			case "pool.in_use", "pool.idle":
				pool = append(pool, fmt.Sprintf("%v %s %v", s.At, s.Name, s.Value))
			case "goroutines":
				goroutines++
				require.Positive(t, s.Value)
			default:
				t.Fatalf("unexpected sample %+v", s)
			}
		}
		// Samples at 0, 100ms, ..., 500ms (the ticker's and the final one
		// at 500ms both land); the third reading failed and is skipped.
		require.Equal(t, []string{
			"0s pool.idle 1", "0s pool.in_use 1",
			"100ms pool.idle 1", "100ms pool.in_use 2",
			"300ms pool.idle 1", "300ms pool.in_use 4",
			"400ms pool.idle 1", "400ms pool.in_use 5",
			"500ms pool.idle 1", "500ms pool.in_use 6",
		}, pool[:10])
		require.GreaterOrEqual(t, goroutines, 6)
	})
}

// TestRunSettles checks the quiet reading that ends a run: once the ops
// have drained, the samplers are read every 10ms until two readings
// agree, and the last one is placed at the end of the run.
func TestRunSettles(t *testing.T) {
	quiet := func(t *testing.T, settle time.Duration, inUse func(reading int64) float64) (*History, int64) {
		var n atomic.Int64
		stopped := make(chan struct{})
		var once sync.Once
		pool := SamplerFunc("pool", func(context.Context) (map[string]float64, error) {
			select {
			case <-stopped:
				return map[string]float64{"in_use": inUse(n.Add(1))}, nil
			default:
				return map[string]float64{"in_use": 9}, nil
			}
		})
		work := Workload{Driver: ClosedLoop{Workers: 1}, Kinds: []OpKind{{Name: "op", Do: func(ctx context.Context, _ string) (string, error) {
			<-ctx.Done() // held until the drain is over and cancels it
			once.Do(func() { close(stopped) })
			return "", nil
		}}}}
		h, err := Run(t.Context(), Plan{World: World{Workload: work, Samplers: []Sampler{pool}},
			Settings: Settings{Cooldown: ms(100), SampleEvery: time.Hour, Settle: settle}})
		require.NoError(t, err)
		return h, n.Load()
	}
	last := func(h *History) Sample { return h.Samples[len(h.Samples)-1] }

	t.Run("until two readings agree", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			// Connections return one by one: 3, 2, 1, 0, 0.
			h, reads := quiet(t, 0, func(r int64) float64 { return float64(max(3-r+1, 0)) })
			require.Equal(t, Sample{At: h.Duration, Name: "pool.in_use", Value: 0}, last(h))
			require.Equal(t, int64(5), reads, "the settling stops at the first two readings that agree")
		})
	})
	t.Run("bounded by Settle", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			h, reads := quiet(t, ms(50), func(r int64) float64 { return float64(r) }) // never settles
			require.Equal(t, h.Duration, last(h).At)
			require.Equal(t, int64(6), reads, "one reading, then one every 10ms for 50ms")
			require.Equal(t, h.Duration+ms(50), time.Since(start))
		})
	})
	t.Run("negative Settle reads once", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h, reads := quiet(t, -1, func(r int64) float64 { return float64(r) })
			require.Equal(t, Sample{At: h.Duration, Name: "pool.in_use", Value: 1}, last(h))
			require.Equal(t, int64(1), reads)
		})
	})
}

func TestRunLogs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		logger := slog.New(slog.NewJSONHandler(&buf, nil))
		db := &stubTarget{name: "db", start: time.Now()}
		sched := Schedule{Steps: []Step{{At: ms(100), For: ms(200), Target: "db", Fault: toxics.Latency{Delay: ms(50)}}}}
		_, err := Run(t.Context(), Plan{World: World{Targets: []Target{db}}, Settings: Settings{Logger: logger, Cooldown: -1}, Seed: 42, Schedule: sched})
		require.NoError(t, err)
		var recs []map[string]any
		for line := range strings.Lines(buf.String()) {
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(line), &m))
			delete(m, "time")
			recs = append(recs, m)
		}
		step := map[string]any{"index": 0.0, "target": "db", "fault": "latency(50ms)", "at": 1e8, "for": 2e8}
		require.Equal(t, []map[string]any{
			{"level": "INFO", "msg": "sim: run started", "seed": 42.0, "steps": 1.0, "horizon": 3e8, "end": 3e8},
			{"level": "INFO", "msg": "sim: fault applied", "seed": 42.0, "step": step, "offset": 1e8, "late": 0.0},
			{"level": "INFO", "msg": "sim: fault reverted", "seed": 42.0, "step": step, "offset": 3e8, "held": 2e8},
			{"level": "INFO", "msg": "sim: run finished", "seed": 42.0, "ops": 0.0, "faults": 1.0, "duration": 3e8, "errors": 0.0},
		}, recs)
	})
}

// TestRunWallClock runs a short schedule on the real clock. It asserts the
// order of events and a lateness bound with a generous margin (1 s: the
// machine may be shared and loaded); the real lateness figures come from
// BenchmarkRunnerLateness.
func TestRunWallClock(t *testing.T) {
	var lg sharedLog
	targets := []Target{loggingTarget{"a", &lg}, loggingTarget{"b", &lg}}
	sched := Schedule{Steps: []Step{
		{At: ms(20), For: ms(20), Target: "a", Fault: toxics.Down{}},
		{At: ms(10), For: ms(40), Target: "b", Fault: toxics.Blackhole{}},
		{At: ms(40), For: ms(10), Target: "a", Fault: toxics.Reset{}},
	}}
	var ops atomic.Int64
	h, err := Run(t.Context(), Plan{
		World: World{
			Targets: targets,
			Workload: Workload{
				Driver: OpenLoop{Rate: 1000},
				Kinds: []OpKind{{Name: "noop", Do: func(context.Context, string) (string, error) {
					ops.Add(1)
					return "", nil
				}}},
			},
		},
		Settings: Settings{
			Cooldown: ms(20),
		},
		Schedule: sched,
	})
	require.NoError(t, err)
	require.Equal(t, []string{"apply b blackhole()", "apply a down()", "revert a down()", "apply a reset()", "revert b blackhole()", "revert a reset()"}, lg.calls)
	for _, f := range h.Faults {
		late := f.Start - sched.Steps[f.Step].At
		require.GreaterOrEqual(t, late, time.Duration(0))
		require.Less(t, late, time.Second, "step %d", f.Step)
	}
	ran := 0
	for _, op := range h.Ops {
		if op.Err == "" {
			ran++
		} else {
			require.Equal(t, ErrNotStarted.Error(), op.Err, "an op due just at the end may not start")
		}
	}
	require.EqualValues(t, ops.Load(), ran)
	require.Len(t, h.Ops, 70, "1000 ops/s for 70 ms: every op due is recorded")
}

func TestRunNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, err := Run(t.Context(), Plan{})
		require.NoError(t, err)
		require.Equal(t, DefaultCooldown, h.Duration)
		require.Empty(t, h.Ops)
		require.Empty(t, h.Faults)
	})
}

var _ = errors.New

func TestRunAlreadyCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		db := &stubTarget{name: "db", start: time.Now()}
		h, err := Run(ctx, Plan{
			World: World{
				Targets:  []Target{db},
				Samplers: []Sampler{SamplerFunc("boom", func(context.Context) (map[string]float64, error) { panic("sampler exploded") })},
			},
			Schedule: Schedule{Steps: []Step{{At: 0, For: time.Second, Target: "db", Fault: toxics.Down{}}}},
		})
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorContains(t, err, "sim: run cancelled at 0s")
		require.Empty(t, db.log(), "nothing applied")
		require.Empty(t, h.Faults)
		require.Empty(t, h.Samples)
	})
}
