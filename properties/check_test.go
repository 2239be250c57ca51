package properties_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// bounds of the fake tests: up to three faults in 5 s, latency mild
// enough (at most 100ms) never to break the invariants by itself.
var bounds = properties.Bounds{MaxSteps: 3, Horizon: 5 * time.Second,
	Values: properties.Values{Delay: properties.DurationRange{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond}}}

// simConfig is a simulated Check config over one fake dependency.
func simConfig(f *fake, invs ...properties.Invariant) properties.Config {
	return properties.Config{Settings: sim.Settings{Cooldown: time.Second, Drain: 5 * time.Second}, World: f.world, Reset: f.reset, Simulate: true, Bounds: bounds, Invariants: invs}
}

// robust are the invariants a client with a 200ms timeout keeps.
func robust() []properties.Invariant {
	return []properties.Invariant{
		properties.MaxLatency{Max: 300 * time.Millisecond},
		properties.FailFast{Within: 250 * time.Millisecond},
		properties.Recovery{Within: 300 * time.Millisecond},
		properties.ErrorRate{Max: 0, Window: sim.Before},
	}
}

var allKinds = []toxics.Kind{toxics.KindLatency, toxics.KindBlackhole, toxics.KindDown}

func TestExploreCatchesMissingTimeout(t *testing.T) {
	f := newFake(0, allKinds...)
	res, err := properties.Explore(t, simConfig(f, properties.MaxLatency{Max: time.Second}))
	require.NoError(t, err)
	require.NotNil(t, res.Failure, "a client without a timeout hangs in a blackhole")
	require.False(t, res.Flaky)
	want := sim.Schedule{Steps: []sim.Step{{At: 0, For: 100 * time.Millisecond, Target: "db", Fault: toxics.Blackhole{}}}}
	require.Equal(t, want, res.Failure.Schedule, "shrunk to:\n%s", res.Failure.Schedule)
	require.Equal(t, properties.Broken, res.Failure.Findings[0].Verdict)
	t.Logf("found after %d iterations; %d runs, %d cached verdicts, shrinking took %v; %s",
		res.Iterations, res.Runs, res.CacheHits, res.Shrinking, res.Coverage)
}

// recorder is a testing.TB that keeps the failures of the code under test
// instead of failing the test, so a test can assert that Check fails.
type recorder struct {
	*testing.T
	deadline time.Time

	mu   sync.Mutex
	errs []string
}

type stopRecorder struct{}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *recorder) Error(args ...any)                 { r.Errorf("%s", fmt.Sprint(args...)) }
func (r *recorder) Fatalf(format string, args ...any) { r.Errorf(format, args...); r.FailNow() }
func (r *recorder) Fatal(args ...any)                 { r.Error(args...); r.FailNow() }
func (r *recorder) FailNow()                          { panic(stopRecorder{}) }
func (r *recorder) Fail()                             { r.Errorf("Fail called") }
func (r *recorder) Failed() bool                      { r.mu.Lock(); defer r.mu.Unlock(); return len(r.errs) > 0 }
func (r *recorder) Deadline() (time.Time, bool)       { return r.deadline, !r.deadline.IsZero() }

func (r *recorder) text() string { r.mu.Lock(); defer r.mu.Unlock(); return strings.Join(r.errs, "\n") }

// record runs f with a recorder wrapping t and returns the recorder.
func record(t *testing.T, f func(tb *recorder)) *recorder {
	t.Helper()
	r := &recorder{T: t}
	func() {
		defer func() {
			if p := recover(); p != nil {
				if _, ok := p.(stopRecorder); !ok {
					panic(p)
				}
			}
		}()
		f(r)
	}()
	return r
}

// TestCheckFailsAndReplays runs Check in a child test process (the test
// binary itself, running TestCheckChild) so that it can assert on the real
// failure output of a failing Check, then replays the saved schedule.
func TestCheckFailsAndReplays(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "schedule.json")
	out := child(t, "fragile", dir, "")
	require.Contains(t, out, "--- FAIL: TestCheckChild")
	require.Contains(t, out, "shakedown: an invariant broke after")
	require.Contains(t, out, "every op <= 300ms overall: op ")
	require.Contains(t, out, `"kind": "blackhole"`)
	require.Contains(t, out, "schedule (seed ")
	require.Contains(t, out, "replay: SHAKEDOWN_REPLAY="+path+" go test -run '^TestCheckChild$' ./properties")
	require.Contains(t, out, "shakedown: coverage over ")
	require.FileExists(t, filepath.Join(dir, "report.html"))
	s, _, hasSeed, err := properties.LoadSchedule(path)
	require.NoError(t, err)
	require.True(t, hasSeed)
	require.Equal(t, "0: +0s for 100ms db blackhole()", s.String())

	out = child(t, "fragile", dir, path)
	require.Contains(t, out, "replay of "+path+" broke an invariant")
	require.Contains(t, out, "--- FAIL: TestCheckChild")
	require.FileExists(t, filepath.Join(dir, "replay.html"))

	// The client with a timeout passes the same schedule, run once.
	t.Setenv(properties.EnvReplay, path)
	f := newFake(200*time.Millisecond, allKinds...)
	properties.Check(t, simConfig(f, robust()...))
	require.EqualValues(t, 1, f.resets.Load(), "a replay runs the schedule once")
}

func TestCheckNoEvidence(t *testing.T) {
	out := child(t, "no-evidence", t.TempDir(), "")
	require.Contains(t, out, "--- FAIL: TestCheckChild")
	require.Contains(t, out, "no evidence in any of 3 runs for: failed ops return within 1s during faults")
	require.NotContains(t, out, "every op <= 1s overall 0/")
}

// child runs TestCheckChild in a new process of this test binary and
// returns its output.
func child(t *testing.T, mode, dir, replay string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCheckChild$", "-test.v", "-test.count=1", "-rapid.nofailfile")
	cmd.Env = append(os.Environ(), "SHAKEDOWN_TEST_CHILD="+mode, "SHAKEDOWN_TEST_DIR="+dir, properties.EnvReplay+"="+replay)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("child: %v\n%s", err, out)
	}
	return string(out)
}

// TestCheckChild is run by child; on its own it skips.
func TestCheckChild(t *testing.T) {
	cfg := simConfig(newFake(0, allKinds...), robust()...)
	switch os.Getenv("SHAKEDOWN_TEST_CHILD") {
	case "fragile":
	case "no-evidence":
		// Latency of at most 100ms never makes an op fail: FailFast has
		// nothing to judge, and Check says so.
		cfg = simConfig(newFake(200*time.Millisecond, toxics.KindLatency), properties.FailFast{Within: time.Second}, properties.MaxLatency{Max: time.Second})
		cfg.Iterations = 3
	case "leak":
		cfg.World = leakyWorld
	case "steady":
		cfg = steadyConfig()
	case "flaky":
		cfg = flakyConfig()
	case "flaky-allowed":
		cfg = flakyConfig()
		cfg.AllowFlaky = true
	case "tight":
		cfg = tightConfig()
	case "slower":
		t.Setenv("SHAKEDOWN_SELFCHECK", "0")
		properties.SetControlInSimulation(t, true)
		cfg = slowingConfig(newFake(time.Second, toxics.KindLatency), 200*time.Millisecond)
		cfg.Iterations = 2
	case "fragile-control":
		properties.SetControlInSimulation(t, true)
	default:
		t.Skip("run by TestCheckFailsAndReplays and TestCheckNoEvidence in a child process")
	}
	cfg.Dir = os.Getenv("SHAKEDOWN_TEST_DIR")
	if os.Getenv("SHAKEDOWN_TEST_EARLY") == "0" {
		properties.SetEndEarly(t, false) // whole confirming runs (scripts/checkcost.sh)
	}
	properties.Check(t, cfg)
}

func TestCheckPassesWithTimeout(t *testing.T) {
	f := newFake(200*time.Millisecond, allKinds...)
	cfg := simConfig(f, robust()...)
	// Under 20 iterations: rapid's own bound under -short.
	cfg.Iterations = 15
	cfg.Dir = t.TempDir() // no corpus or summary of an earlier run
	properties.Check(t, cfg)
	require.EqualValues(t, 16, f.resets.Load(), "one reset per iteration, and one for the fault-free baseline")
}

func TestExploreIterations(t *testing.T) {
	run := func(t *testing.T, iterations int) *properties.Result {
		cfg := simConfig(newFake(200*time.Millisecond, toxics.KindLatency, toxics.KindBlackhole), properties.MaxLatency{Max: time.Second})
		cfg.Iterations = iterations
		res, err := properties.Explore(t, cfg)
		require.NoError(t, err)
		return res
	}
	t.Run("config", func(t *testing.T) {
		res := run(t, 4)
		require.Nil(t, res.Failure)
		require.Equal(t, 4, res.Iterations)
		require.Equal(t, 5, res.Runs, "the baseline and 4 iterations")
		require.NotNil(t, res.Baseline)
		require.Empty(t, res.Baseline.Schedule.Steps)
		require.Equal(t, 4, res.Coverage.Runs, "the baseline is not counted in the coverage")
		require.Empty(t, res.Rapid, "stopping at the bound is not a rapid failure")
	})
	t.Run("environment overrides config", func(t *testing.T) {
		t.Setenv(properties.EnvIterations, "6")
		require.Equal(t, 6, run(t, 4).Iterations)
	})
	t.Run("default", func(t *testing.T) {
		require.Equal(t, properties.DefaultIterations, run(t, 0).Iterations)
	})
	t.Run("bad environment", func(t *testing.T) {
		t.Setenv(properties.EnvIterations, "lots")
		_, err := properties.Explore(t, simConfig(newFake(0, allKinds...), properties.MaxLatency{Max: time.Second}))
		require.ErrorContains(t, err, `SHAKEDOWN_ITERATIONS="lots" is not a positive number`)
	})
}

// TestExploreRealTime runs the same fake without synctest, on the wall
// clock: the path a real dependency takes. The schedules are kept short.
func TestExploreRealTime(t *testing.T) {
	d := newDep("db", allKinds...)
	cfg := properties.Config{
		Settings: sim.Settings{
			Cooldown: 100 * time.Millisecond,
		},
		World:       properties.Shared(sim.World{Targets: []sim.Target{d}, Workload: workload(d, 50*time.Millisecond)}),
		Reset:       d.Reset,
		Bounds:      properties.Bounds{MaxSteps: 2, Horizon: 300 * time.Millisecond, Values: bounds.Values},
		Exploration: properties.Exploration{Iterations: 2},
		Invariants:  []properties.Invariant{properties.MaxLatency{Max: 2 * time.Second}},
	}
	res, err := properties.Explore(t, cfg)
	require.NoError(t, err)
	require.Nil(t, res.Failure)
	require.Equal(t, 3, res.Runs)
	require.EqualValues(t, 3, d.resets.Load())
}

func TestExploreRespectsDeadline(t *testing.T) {
	d := newDep("db", toxics.KindLatency)
	cfg := properties.Config{World: properties.Shared(sim.World{Targets: []sim.Target{d}, Workload: workload(d, 0)}),
		Reset: d.Reset, Bounds: bounds, Invariants: []properties.Invariant{properties.MaxLatency{Max: time.Second}}}
	r := record(t, func(tb *recorder) {
		tb.deadline = time.Now().Add(3 * time.Second) // less than one run of a 5s horizon
		_, err := properties.ExploreTB(tb, cfg)
		require.ErrorContains(t, err, "cannot end before the test's deadline")
		properties.CheckTB(tb, cfg)
	})
	require.Contains(t, r.text(), "a run of the longest schedule the bounds allow, after the fault-free baseline (horizon 5s, cooldown 1s) cannot end before the test's deadline")
	require.Zero(t, d.resets.Load(), "an error before any run")
}

func TestExploreErrors(t *testing.T) {
	d := newDep("db", toxics.KindLatency)
	world := func(targets []sim.Target, w sim.Workload) func(testing.TB) sim.World {
		return properties.Shared(sim.World{Targets: targets, Workload: w})
	}
	good := properties.Config{World: world([]sim.Target{d}, workload(d, 0)), Reset: d.Reset, Bounds: bounds,
		Invariants: []properties.Invariant{properties.MaxLatency{Max: time.Second}}}
	tests := []struct {
		name   string
		mutate func(*properties.Config)
		want   string
	}{
		{"no world", func(c *properties.Config) { c.World = nil }, "Config.World is nil"},
		{"no targets", func(c *properties.Config) { c.World = world(nil, workload(d, 0)) }, "sim.World.Targets is empty"},
		{"nil target", func(c *properties.Config) { c.World = world([]sim.Target{nil}, workload(d, 0)) }, "target 0 is nil"},
		{"no workload", func(c *properties.Config) { c.World = world([]sim.Target{d}, sim.Workload{}) }, "no op kinds"},
		{"no invariants", func(c *properties.Config) { c.Invariants = nil }, "Config.Invariants is empty"},
		{"nil invariant", func(c *properties.Config) { c.Invariants = []properties.Invariant{nil} }, "Config.Invariants[0] is nil"},
		{"bad bounds", func(c *properties.Config) { c.Bounds.MaxSteps = -1 }, "MaxSteps = -1"},
		{"negative iterations", func(c *properties.Config) { c.Iterations = -2 }, "Exploration.Iterations = -2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.mutate(&cfg)
			_, err := properties.Explore(t, cfg)
			require.ErrorContains(t, err, tt.want)
		})
	}
	t.Run("reset fails", func(t *testing.T) {
		cfg := good
		cfg.Reset = func(context.Context) error { return errors.New("container gone") }
		cfg.Bounds.Horizon = 300 * time.Millisecond
		_, err := properties.Explore(t, cfg)
		require.ErrorContains(t, err, "reset before running the schedule (no faults)")
		require.ErrorContains(t, err, "container gone")
	})
	t.Run("simulated world without kinds", func(t *testing.T) {
		cfg := simConfig(newFake(0), properties.MaxLatency{Max: time.Second})
		_, err := properties.Explore(t, cfg)
		require.ErrorContains(t, err, "has no fault kinds")
	})
	t.Run("simulated without a *testing.T", func(t *testing.T) {
		// Only the package's own hooks can get here: Explore and Check
		// take a *testing.T, which testing/synctest needs.
		_, err := properties.ExploreTB(struct{ testing.TB }{t}, simConfig(newFake(0, allKinds...), properties.MaxLatency{Max: time.Second}))
		require.ErrorContains(t, err, "needs a *testing.T")
	})
}
