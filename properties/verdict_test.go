package properties_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// The path of a check: what it says before any run, without faults, when
// a failure does not reproduce, when a run panics or leaks, and when a
// bound sits inside the machine's noise.

// TestBaselineBrokenStopsTheCheck: a client whose every call fails breaks
// the error rate without any fault. The check stops after the fault-free
// baseline (and its confirming runs), says the system does not hold
// without faults, and shrinks nothing.
func TestBaselineBrokenStopsTheCheck(t *testing.T) {
	res, err := properties.Explore(t, steadyConfig())
	require.NoError(t, err)
	require.NotNil(t, res.Baseline)
	require.Same(t, res.Baseline, res.Steady, "the baseline broke")
	require.Nil(t, res.Failure, "nothing is blamed on a schedule")
	require.Zero(t, res.Iterations, "nothing explored")
	require.Equal(t, 4, res.Runs, "the baseline, and 3 fault-free runs confirming it")
	require.Equal(t, 3, res.Baseline.Reruns)
	require.Equal(t, 3, res.Baseline.Reproduced)
	require.Empty(t, res.Baseline.Findings.String(), "its broken invariant is in Steady, not in Findings")
	require.Equal(t, "error rate <= 0% overall", res.Steady.Steady[0].Invariant)

	out := child(t, "steady", t.TempDir(), "")
	require.Contains(t, out, "--- FAIL: TestCheckChild")
	require.Contains(t, out, "the system does not hold without faults: the fault-free baseline run broke an invariant, and broke again in 3 of 3 more fault-free runs")
	require.Contains(t, out, "error rate <= 0% overall: over the whole run at 0s: got ")
	require.NotContains(t, out, "no schedule was run", "one verdict, not two")
	require.NotContains(t, out, "iteration 1/", "nothing explored")
}

// steadyConfig is a client whose every call fails, with or without faults.
func steadyConfig() properties.Config {
	cfg := simConfig(newFake(200*time.Millisecond, allKinds...), properties.ErrorRate{Max: 0})
	base := cfg.World
	cfg.World = func(t testing.TB) sim.World {
		w := base(t)
		w.Workload.Kinds[0].Do = func(context.Context, string) (string, error) { return "", errors.New("boom") }
		return w
	}
	return cfg
}

// TestPanicInARunIsAFinding: a World that panics (after the build that
// learns its targets) is a finding of the run, with its stack; in the
// baseline, where no fault took effect, the system does not hold without
// faults.
func TestPanicInARunIsAFinding(t *testing.T) {
	f := newFake(200*time.Millisecond, allKinds...)
	cfg := simConfig(f, properties.MaxLatency{Max: time.Second})
	var builds atomic.Int64
	base := cfg.World
	cfg.World = func(t testing.TB) sim.World {
		if builds.Add(1) > 1 {
			panic("the world is on fire")
		}
		return base(t)
	}
	res, err := properties.Explore(t, cfg)
	require.NoError(t, err)
	require.NotNil(t, res.Steady)
	require.Len(t, res.Steady.Steady, 1)
	fd := res.Steady.Steady[0]
	require.Equal(t, "the run does not panic", fd.Invariant)
	require.Equal(t, properties.Broken, fd.Verdict)
	require.ErrorContains(t, fd.Err, "panic: the world is on fire")
	require.ErrorContains(t, fd.Err, "TestPanicInARunIsAFinding", "with its stack")
}

// TestFlakyFailureIsNotShrunk: a client that hangs in a blackhole only in
// every other run breaks, then breaks again in only 1 of 3 reruns: it is
// flaky, reported with its rate and unshrunk, and fails the check unless
// flaky failures are allowed.
func TestFlakyFailureIsNotShrunk(t *testing.T) {
	// Its World differs from one build to the next on purpose, which the
	// determinism self-check (on in this package's tests) would report in
	// every run; the children inherit the setting.
	t.Setenv("SHAKEDOWN_SELFCHECK", "0")
	res, err := properties.Explore(t, flakyConfig())
	require.NoError(t, err)
	require.NotNil(t, res.Failure)
	require.True(t, res.Flaky)
	require.Equal(t, 3, res.Failure.Reruns)
	require.Equal(t, 1, res.Failure.Reproduced, "runs alternate: fail, pass, fail, pass")
	require.Zero(t, res.Shrinking, "a flaky failure is not shrunk")

	out := child(t, "flaky", t.TempDir(), "")
	require.Contains(t, out, "--- FAIL: TestCheckChild")
	require.Contains(t, out, "FLAKY: an invariant broke, but the schedule broke again in only 1 of 3 reruns (it broke in 2 of 4 runs)")
	require.Contains(t, out, `"kind": "blackhole"`, "with its schedule")

	out = child(t, "flaky-allowed", t.TempDir(), "")
	require.Contains(t, out, "--- PASS: TestCheckChild", "allowed: logged, not failed")
	require.Contains(t, out, "(Exploration.AllowFlaky: not a test failure)")
}

// flakyConfig is a client that hangs in a blackhole in every other run.
func flakyConfig() properties.Config {
	var builds atomic.Int64
	cfg := simConfig(newFake(0, toxics.KindBlackhole), properties.MaxLatency{Max: time.Second})
	cfg.World = func(testing.TB) sim.World {
		d := newDep("db", toxics.KindBlackhole)
		timeout := 200 * time.Millisecond
		if builds.Add(1)%2 == 0 {
			timeout = 0 // no timeout: hangs in a blackhole
		}
		return sim.World{Targets: []sim.Target{d}, Workload: workload(d, timeout)}
	}
	cfg.Bounds.MaxSteps = 1
	return cfg
}

// TestConfirmedFailureSaysSo: a solid failure is rerun before it is
// shrunk, and the shrunk schedule until it has been rerun as often.
func TestConfirmedFailureSaysSo(t *testing.T) {
	cfg := simConfig(newFake(0, allKinds...), properties.MaxLatency{Max: time.Second})
	cfg.Reproduce = 2
	res, err := properties.Explore(t, cfg)
	require.NoError(t, err)
	require.NotNil(t, res.Failure)
	require.False(t, res.Flaky)
	require.Equal(t, 2, res.Failure.Reruns)
	require.Equal(t, 2, res.Failure.Reproduced)

	cfg.Reproduce = -1
	res, err = properties.Explore(t, cfg)
	require.NoError(t, err)
	require.NotNil(t, res.Failure)
	require.Zero(t, res.Failure.Reruns, "Reproduce < 0: believed at once")
}

// TestBoundInsideTheNoiseIsNotJudged: the dependency answers in 100ms
// without any fault; a p99 bound of 120ms cannot tell a fault's effect
// from that, and the check says so instead of judging it.
func TestBoundInsideTheNoiseIsNotJudged(t *testing.T) {
	cfg := tightConfig()
	res, err := properties.Explore(t, cfg)
	require.NoError(t, err)
	require.Nil(t, res.Failure, "the tight bound is not judged, so it cannot fail")
	tight, roomy := cfg.Invariants[0].Name(), cfg.Invariants[1].Name()
	require.Zero(t, res.Coverage.Judged[tight])
	require.Positive(t, res.Coverage.Judged[roomy])

	out := child(t, "tight", t.TempDir(), "")
	require.Contains(t, out, "--- FAIL: TestCheckChild")
	require.Contains(t, out, "p99 latency <= 120ms during: too tight to judge on this machine: without faults the p99 latency was already 100ms over ")
	require.NotContains(t, out, "no evidence in any", "one reason, the right one")
}

// tightConfig is a dependency that answers in 100ms without any fault,
// judged by a p99 bound of 120ms and one of 400ms.
func tightConfig() properties.Config {
	cfg := simConfig(newFake(time.Second, toxics.KindLatency))
	cfg.World = func(testing.TB) sim.World {
		d := newDep("db", toxics.KindLatency)
		w := workload(d, time.Second)
		do := w.Kinds[0].Do
		w.Kinds[0].Do = func(ctx context.Context, in string) (string, error) {
			time.Sleep(100 * time.Millisecond)
			return do(ctx, in)
		}
		return sim.World{Targets: []sim.Target{d}, Workload: w}
	}
	cfg.Invariants = []properties.Invariant{
		properties.LatencyQuantile{Q: 0.99, Max: 120 * time.Millisecond, Window: sim.During},
		properties.LatencyQuantile{Q: 0.99, Max: 400 * time.Millisecond, Window: sim.During},
	}
	cfg.Iterations = 3
	return cfg
}

// TestMistakesBeforeAnyRun: mistakes in the check itself are errors
// before any run, not verdicts after.
func TestMistakesBeforeAnyRun(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*properties.Config)
		want   string
	}{
		{"a percentage for a fraction", func(c *properties.Config) {
			c.Invariants = []properties.Invariant{properties.ErrorRate{Max: 5}}
		}, "Max = 5 is not a fraction in [0, 1]: did you mean 0.05?"},
		{"an op kind the workload lacks", func(c *properties.Config) {
			c.Invariants = []properties.Invariant{properties.MaxLatency{Max: time.Second, Kinds: []string{"put"}}}
		}, `op kind "put" is not one of the World's [get]`},
		{"recovery longer than the cooldown", func(c *properties.Config) {
			c.Invariants = []properties.Invariant{properties.Recovery{Within: 2 * time.Second}}
		}, "Within = 2s is not shorter than the cooldown (1s)"},
		{"after window without cooldown", func(c *properties.Config) {
			c.Cooldown = -1
			c.Invariants = []properties.Invariant{properties.ErrorRate{Window: sim.After}}
		}, "judges the time after the last heal, but the run has no cooldown"},
		{"bounds name a target the world lacks", func(c *properties.Config) {
			c.Bounds.Targets = []properties.TargetKinds{{Name: "cache", Kinds: []toxics.Kind{toxics.KindDown}}}
		}, `Bounds.Targets[0] names target "cache", but the World has none of that name (it has [db])`},
		{"bounds name a fault the target does not take", func(c *properties.Config) {
			c.Bounds.Targets = []properties.TargetKinds{{Name: "db", Kinds: []toxics.Kind{toxics.KindPause}}}
		}, `Bounds.Targets[0]: target "db" does not take pause faults (it takes [latency blackhole down])`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(200*time.Millisecond, allKinds...)
			cfg := simConfig(f, robust()...)
			tt.mutate(&cfg)
			_, err := properties.Explore(t, cfg)
			require.ErrorContains(t, err, tt.want)
			require.Zero(t, f.resets.Load(), "no run")
		})
	}
}

// TestReplayMistakes: a schedule that cannot end before the test's
// deadline errors at once instead of hanging; an empty one says so and
// fails; an unknown target's error reads as one sentence.
func TestReplayMistakes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(data), 0o644))
		return path
	}
	d := newDep("db", allKinds...)
	cfg := properties.Config{World: properties.Shared(sim.World{Targets: []sim.Target{d}, Workload: workload(d, 0)}),
		Reset: d.Reset, Bounds: bounds, Invariants: []properties.Invariant{properties.MaxLatency{Max: time.Second}}}

	long := write("long.json", `{"steps":[{"at":"1000h","for":"1s","target":"db","fault":{"kind":"down"}}]}`)
	r := record(t, func(tb *recorder) {
		tb.deadline = time.Now().Add(time.Minute)
		properties.ReplayTB(tb, cfg, long)
	})
	require.Contains(t, r.text(), "a run of the schedule (horizon 1000h0m1s, cooldown 1s) cannot end before the test's deadline")

	empty := write("empty.json", `{"steps":[]}`)
	r = record(t, func(tb *recorder) { properties.ReplayTB(tb, cfg, empty) })
	require.Contains(t, r.text(), "the schedule has no steps, so a replay would judge no fault")
	require.Zero(t, d.resets.Load(), "neither ran")

	_, err := properties.RunSchedule(t, cfg, sim.Schedule{Steps: []sim.Step{{For: time.Second, Target: "nope", Fault: toxics.Down{}}}}, 1)
	require.ErrorContains(t, err, `run the schedule +0s for 1s nope down(): `)
	for line := range strings.SplitSeq(err.Error(), "\n") {
		require.False(t, strings.HasPrefix(line, ":"), "a line starts with a stray colon:\n%v", err)
	}
}

// TestLeakingClientIsCaught runs, in a child process, a Check of a client
// that leaves a goroutine blocked for ever whenever a call meets a
// blackhole: testing/synctest panics when such a bubble ends, and the run
// has a finding of it, with the goroutine's stack, which shrinks like any
// other. (In a child process because the goroutines leak for good.)
func TestLeakingClientIsCaught(t *testing.T) {
	out := child(t, "leak", t.TempDir(), "")
	require.Contains(t, out, "--- FAIL: TestCheckChild")
	require.Contains(t, out, "shakedown: an invariant broke after")
	require.Contains(t, out, "reproduced 3 of 3")
	require.Contains(t, out, "the run leaves no goroutine blocked")
	require.Contains(t, out, "deadlock: main bubble goroutine has exited but blocked goroutines remain")
	require.Contains(t, out, "properties_test.leakyWorld", "the leaked goroutine's stack")
	require.Contains(t, out, `"kind": "blackhole"`)
}

// leakyWorld is the World of the "leak" child: every call that meets a
// blackhole leaves a goroutine blocked for ever.
func leakyWorld(testing.TB) sim.World {
	d := newDep("db", allKinds...)
	w := workload(d, 200*time.Millisecond)
	w.Kinds[0].Do = func(ctx context.Context, _ string) (string, error) {
		err := d.call(ctx)
		if errors.Is(err, context.DeadlineExceeded) {
			go func() { <-make(chan struct{}) }() // leaked
		}
		return "", err
	}
	return sim.World{Targets: []sim.Target{d}, Workload: w}
}

// TestShrunkFailureThatDoesNotHoldUp: a bug that shows every time under a
// long blackhole, but under a shorter one only in some runs (as a breaker
// that trips on some runs of a short fault), shrinks to that edge, where
// the shrunk schedule does not reproduce. The failure reported is then
// the latest schedule shrinking accepted that does, said not to be
// 1-minimal, or, when none does, the first failure, said not to be
// shrunk.
func TestShrunkFailureThatDoesNotHoldUp(t *testing.T) {
	// The invariant's verdict on a schedule changes from one run to the
	// next on purpose, which the determinism self-check would report.
	t.Setenv("SHAKEDOWN_SELFCHECK", "0")
	properties.SetEndEarly(t, false) // every rerun judged once, whole
	// On this seed shrinking accepts a schedule that holds up, then two
	// at the edge before the shrunk one; on some others it goes from the
	// first failure to the edge at once, and the first is reported.
	rapidSeed(t, 2)
	var mu sync.Mutex
	judged := map[string]int{}
	const solid, edge = 400 * time.Millisecond, 200 * time.Millisecond
	inv := properties.Func("db blackholed under 200ms in all", func(h *sim.History) error {
		var total time.Duration
		var key strings.Builder
		for _, f := range h.Faults {
			fmt.Fprintf(&key, "%s %v %v %v;", f.Target, f.Fault.Fault, f.Start, f.End)
			if _, hole := f.Fault.Fault.(toxics.Blackhole); hole && f.Applied() {
				total += f.End - f.Start
			}
		}
		mu.Lock()
		judged[key.String()]++
		n := judged[key.String()]
		mu.Unlock()
		switch {
		case total >= solid:
			return fmt.Errorf("blackholed %v", total)
		case total >= edge && n <= 2: // the run and shrinking's one rerun
			return fmt.Errorf("blackholed %v (run %d of the schedule)", total, n)
		}
		return nil
	})
	cfg := simConfig(newFake(200*time.Millisecond, toxics.KindBlackhole), inv)
	res, err := properties.Explore(t, cfg)
	require.NoError(t, err)
	require.NotNil(t, res.Failure)
	require.False(t, res.Flaky)
	it := res.Failure
	require.Equal(t, 3, it.Reruns)
	require.Equal(t, 3, it.Reproduced, "the failure reported reproduced every time")
	var total time.Duration
	for _, st := range it.Schedule.Steps {
		total += st.For
	}
	require.GreaterOrEqual(t, total, solid, "a schedule that fails every time:\n%s", it.Schedule)
	why := res.Minimality()
	require.True(t, strings.HasPrefix(why, "not 1-minimal: the shrunk schedule (+"), "%q", why)
	require.Contains(t, why, "did not hold up; this is schedule ")
	t.Logf("reported %s: %s", it.Schedule, why)

	// On this seed the first failure is a blackhole of 400ms, and every
	// schedule shrinking accepts is shorter: the first failure is
	// reported, said not to be shrunk (not "1-minimal").
	rapidSeed(t, 3)
	clear(judged)
	res, err = properties.Explore(t, cfg)
	require.NoError(t, err)
	require.NotNil(t, res.Failure)
	require.Equal(t, 3, res.Failure.Reproduced)
	why = res.Minimality()
	require.True(t, strings.HasPrefix(why, "not shrunk: the shrunk schedule (+"), "%q", why)
	require.Contains(t, why, "did not hold up, nor any schedule shrinking accepted before it that was tried")
}
