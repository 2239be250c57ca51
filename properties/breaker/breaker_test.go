package breaker_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/failsafe-go/failsafe-go/timeout"
	"github.com/sony/gobreaker/v2"
	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/properties/breaker"
	"github.com/shakedown/shakedown/properties/breaker/failsafecheck"
	"github.com/shakedown/shakedown/properties/breaker/gobreakercheck"
	"github.com/shakedown/shakedown/properties/internal/search"
	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// The breakers of these tests open after 3 consecutive failures, stay open
// 500ms, and bound every call to 200ms.
var brkSpec = breaker.Spec{FailureThreshold: 3, OpenFor: 500 * time.Millisecond, CallTimeout: 200 * time.Millisecond}

func brkGoBreaker(maxRequests uint32, openFor, callTimeout time.Duration) func() breaker.Breaker {
	return func() breaker.Breaker {
		return gobreakercheck.Breaker(gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
			MaxRequests: maxRequests,
			Timeout:     openFor,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 3 },
		}), callTimeout)
	}
}

// brkFailsafe is a failsafe-go breaker opening after threshold failures,
// closing after successes, with a 200ms timeout around each attempt and,
// with retries, a retry policy outside the breaker.
func brkFailsafe(threshold, successes uint, retries int) func() breaker.Breaker {
	return func() breaker.Breaker {
		cb := circuitbreaker.NewBuilder[any]().WithFailureThreshold(threshold).WithSuccessThreshold(successes).
			WithDelay(500 * time.Millisecond).Build()
		policies := []failsafe.Policy[any]{cb, timeout.New[any](200 * time.Millisecond)}
		if retries > 0 {
			// Outside the breaker: every attempt asks it, and an open
			// breaker (ErrOpen) is not retried.
			rp := retrypolicy.NewBuilder[any]().WithMaxRetries(retries).AbortOnErrors(circuitbreaker.ErrOpen).Build()
			policies = append([]failsafe.Policy[any]{rp}, policies...)
		}
		return failsafecheck.Breaker(cb, failsafe.With(policies...))
	}
}

func TestCheckGoBreaker(t *testing.T) {
	spec := brkSpec
	spec.HalfOpenProbes, spec.SuccessesToClose = 2, 2
	breaker.Check(t, breaker.Config{
		New:        brkGoBreaker(2, 500*time.Millisecond, 200*time.Millisecond),
		Spec:       spec,
		Iterations: 300,
		Dir:        t.TempDir(), // its summary; an earlier run's cannot change this one
		Bounds:     properties.Bounds{Targets: []properties.TargetKinds{{Name: "dep", Kinds: breaker.Kinds()}}},
	})
}

func TestCheckFailsafe(t *testing.T) {
	spec := brkSpec
	spec.HalfOpenProbes, spec.SuccessesToClose, spec.ProbesInFlight = 2, 2, true
	spec.CallTimeout = 3 * 200 * time.Millisecond // three attempts
	breaker.Check(t, breaker.Config{
		New:        brkFailsafe(3, 2, 2),
		Spec:       spec,
		Iterations: 300,
		Dir:        t.TempDir(), // its summary; an earlier run's cannot change this one
		Bounds:     properties.Bounds{Targets: []properties.TargetKinds{{Name: "dep", Kinds: breaker.Kinds()}}},
	})
}

// TestExploreCatches: misconfigured breakers, and expectations that
// do not match the configuration, are caught, shrunk to a schedule of one
// or two outages, with the property they break.
func TestExploreCatches(t *testing.T) {
	with := func(f func(*breaker.Spec)) breaker.Spec {
		s := brkSpec
		f(&s)
		return s
	}
	tests := []struct {
		name string
		new  func() breaker.Breaker
		spec breaker.Spec
		want string // in a violation's invariant
	}{
		{"gobreaker without a call timeout", brkGoBreaker(1, 500*time.Millisecond, 0), brkSpec,
			"every call ends within 200ms"},
		{"gobreaker open for 1s, expected 500ms", brkGoBreaker(1, time.Second, 200*time.Millisecond), brkSpec,
			"half-opens 500ms after opening"},
		{"gobreaker MaxRequests 5, expected 2", brkGoBreaker(5, 500*time.Millisecond, 200*time.Millisecond),
			with(func(s *breaker.Spec) { s.HalfOpenProbes, s.SuccessesToClose = 2, 2 }),
			"closes after 2 successful probes"},
		{"failsafe opening after 5, expected 3", brkFailsafe(5, 1, 0),
			with(func(s *breaker.Spec) { s.ProbesInFlight = true }),
			"opens after 3 consecutive failures"},
		{"failsafe counting probes in flight, expected in total", brkFailsafe(3, 2, 0),
			with(func(s *breaker.Spec) { s.HalfOpenProbes, s.SuccessesToClose = 2, 2 }),
			"half-open lets at most 2 probes through"},
		{"failsafe retrying inside the breaker", func() breaker.Breaker {
			cb := circuitbreaker.NewBuilder[any]().WithFailureThreshold(3).WithSuccessThreshold(1).WithDelay(500 * time.Millisecond).Build()
			rp := retrypolicy.NewBuilder[any]().WithMaxRetries(2).Build()
			return failsafecheck.Breaker(cb, failsafe.With[any](timeout.New[any](200*time.Millisecond), cb, rp))
		}, with(func(s *breaker.Spec) { s.ProbesInFlight = true }),
			"opens after 3 consecutive failures"},
		{"a breaker that never opens", func() breaker.Breaker {
			return breaker.Func(func(ctx context.Context, call func(context.Context) error) error {
				ctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
				defer cancel()
				return call(ctx)
			}, nil)
		}, brkSpec, "opens after 3 consecutive failures; no call reaches the dependency while open"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !*anySeed {
				fixSeed(t, 1+i)
			}
			res, err := breaker.Explore(t, breaker.Config{New: tt.new, Spec: tt.spec, Iterations: 300, ShrinkTime: 2 * time.Second})
			require.NoError(t, err)
			require.NotNil(t, res.Failure, "not caught in %d schedules: %s", res.Iterations, res.Coverage)
			run := res.Failure
			var got []string
			for _, v := range run.Violations {
				got = append(got, v.Invariant)
			}
			require.Contains(t, got, tt.want, "\n%s", run.Counterexample())
			most := 2
			if strings.HasPrefix(tt.name, "failsafe counting probes") {
				most = 3 // a 1-minimal counterexample can need three: an outage to open it, and slow probes to overlap
			}
			require.LessOrEqual(t, len(run.Schedule.Steps), most, "not shrunk:\n%s", run.Counterexample())
			require.Contains(t, run.Timeline(), "✗")
			t.Logf("caught after %d schedules, shrunk in %v (%d runs):\n%s", res.Iterations, res.Shrinking.Round(time.Millisecond), res.Runs, run.Counterexample())
		})
	}
}

// brkHandmade is a breaker of 40 lines, for Func: the classic
// three states, one probe at a time.
type brkHandmade struct {
	mu       sync.Mutex
	state    breaker.State
	fails    int
	openedAt time.Time
	probing  bool
}

func (b *brkHandmade) execute(ctx context.Context, call func(context.Context) error) error {
	b.mu.Lock()
	if b.state == breaker.Open && time.Since(b.openedAt) >= 500*time.Millisecond {
		b.state = breaker.HalfOpen
	}
	if b.state == breaker.Open || (b.state == breaker.HalfOpen && b.probing) {
		b.mu.Unlock()
		return errors.New("open")
	}
	probe := b.state == breaker.HalfOpen
	b.probing = b.probing || probe
	b.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	err := call(ctx)
	cancel()

	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
	}
	switch {
	case err == nil && (probe || b.state == breaker.Closed):
		b.state, b.fails = breaker.Closed, 0
	case err != nil && probe:
		b.state, b.openedAt = breaker.Open, time.Now()
	case err != nil && b.state == breaker.Closed:
		if b.fails++; b.fails >= 3 {
			b.state, b.openedAt = breaker.Open, time.Now()
		}
	}
	return err
}

func (b *brkHandmade) current() breaker.State {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == breaker.Open && time.Since(b.openedAt) >= 500*time.Millisecond {
		return breaker.HalfOpen
	}
	return b.state
}

func TestCheckFunc(t *testing.T) {
	breaker.Check(t, breaker.Config{
		New: func() breaker.Breaker {
			b := &brkHandmade{state: breaker.Closed}
			return breaker.Func(b.execute, b.current)
		},
		Spec:       brkSpec,
		Iterations: 300,
		Dir:        t.TempDir(), // its summary
	})
}

func TestRunScheduleIsDeterministic(t *testing.T) {
	s := sim.Schedule{Steps: []sim.Step{
		{At: 100 * time.Millisecond, For: 300 * time.Millisecond, Target: "dep", Fault: toxics.Latency{Delay: 80 * time.Millisecond}},
		{At: 200 * time.Millisecond, For: 100 * time.Millisecond, Target: "dep", Fault: toxics.Down{}},
		{At: 700 * time.Millisecond, For: 200 * time.Millisecond, Target: "dep", Fault: toxics.Blackhole{}},
	}}
	cfg := breaker.Config{New: brkFailsafe(3, 1, 0), Spec: brkSpec}
	cfg.Spec.ProbesInFlight = true
	first, err := breaker.RunSchedule(t, cfg, s)
	require.NoError(t, err)
	require.False(t, first.Broken(), first.Counterexample())
	require.Positive(t, first.Opened)
	for range 5 {
		again, err := breaker.RunSchedule(t, cfg, s)
		require.NoError(t, err)
		require.Equal(t, first.Ops, again.Ops)
		require.Equal(t, first.Calls, again.Calls)
		require.Equal(t, first.Timeline(), again.Timeline())
	}
}

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		spec breaker.Spec
		want string
	}{
		{breaker.Spec{}, "Spec.FailureThreshold = 0"},
		{breaker.Spec{FailureThreshold: 1, CallTimeout: time.Second}, "Spec.OpenFor = 0s"},
		{breaker.Spec{FailureThreshold: 1, OpenFor: time.Second}, "Spec.CallTimeout = 0s"},
		{breaker.Spec{FailureThreshold: 1, OpenFor: time.Second, CallTimeout: time.Second, HalfOpenProbes: 1, SuccessesToClose: 2},
			"SuccessesToClose = 2 exceeds HalfOpenProbes = 1: such a breaker never closes"},
		{breaker.Spec{FailureThreshold: 1, OpenFor: time.Second, CallTimeout: time.Second, HalfOpenProbes: -1}, "HalfOpenProbes = -1"},
		{breaker.Spec{FailureThreshold: 1, OpenFor: time.Second, CallTimeout: time.Second, Slack: -1}, "Slack = -1ns"},
	}
	for _, tt := range tests {
		err := tt.spec.Validate()
		require.Error(t, err)
		require.Contains(t, err.Error(), tt.want)
	}
	require.NoError(t, brkSpec.Validate())
}

func TestConfigErrors(t *testing.T) {
	ok := breaker.Config{New: brkGoBreaker(1, 500*time.Millisecond, 200*time.Millisecond), Spec: brkSpec}
	tests := []struct {
		name string
		edit func(*breaker.Config)
		want string
	}{
		{"no breaker", func(c *breaker.Config) { c.New = nil }, "Config.New is nil"},
		{"no spec", func(c *breaker.Config) { c.Spec = breaker.Spec{} }, "Spec.FailureThreshold"},
		{"negative rate", func(c *breaker.Config) { c.Rate = -5 }, "Config.Rate = -5"},
		{"two targets", func(c *breaker.Config) {
			c.Bounds.Targets = []properties.TargetKinds{{Name: "a", Kinds: []toxics.Kind{toxics.KindDown}}, {Name: "b", Kinds: []toxics.Kind{toxics.KindDown}}}
		}, "names 2 targets"},
		{"a kind the fake does not take", func(c *breaker.Config) {
			c.Bounds.Targets = []properties.TargetKinds{{Name: "dep", Kinds: []toxics.Kind{toxics.KindCorrupt}}}
		}, `kind "corrupt" is not one the fake dependency takes`},
		{"bad bounds", func(c *breaker.Config) { c.Bounds.Horizon = 15 * time.Millisecond }, "Horizon = 15ms is not a multiple of Resolution 10ms"},
		{"a rate that would eat the memory", func(c *breaker.Config) { c.Rate = 1e6 }, "a run would make"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.edit(&cfg)
			_, err := breaker.Explore(t, cfg)
			require.ErrorContains(t, err, tt.want)
			_, err = breaker.RunSchedule(t, cfg, sim.Schedule{})
			require.ErrorContains(t, err, tt.want)
		})
	}
	_, err := breaker.RunSchedule(t, ok, sim.Schedule{Steps: []sim.Step{{At: 0, For: time.Second, Target: "db", Fault: toxics.Down{}}}})
	require.ErrorContains(t, err, `"db"`)
}

// Nothing a breaker does crashes the test binary: a panic in New is an
// error, a panic in Execute a violation.
func TestPanics(t *testing.T) {
	s := sim.Schedule{Steps: []sim.Step{{At: 100 * time.Millisecond, For: 100 * time.Millisecond, Target: "dep", Fault: toxics.Down{}}}}
	_, err := breaker.RunSchedule(t, breaker.Config{New: func() breaker.Breaker { panic("no breaker today") }, Spec: brkSpec}, s)
	require.ErrorContains(t, err, "no breaker today")
	_, err = breaker.RunSchedule(t, breaker.Config{New: func() breaker.Breaker { return nil }, Spec: brkSpec}, s)
	require.ErrorContains(t, err, "returned a nil Breaker")

	run, err := breaker.RunSchedule(t, breaker.Config{New: func() breaker.Breaker {
		return breaker.Func(func(context.Context, func(context.Context) error) error { panic("boom") },
			func() breaker.State { panic("state") })
	}, Spec: brkSpec}, s)
	require.NoError(t, err)
	require.True(t, run.Broken())
	require.Equal(t, "the breaker does not panic", run.Violations[0].Invariant)
	require.Contains(t, run.Violations[0].Got, "boom")

	run, err = breaker.RunSchedule(t, breaker.Config{New: func() breaker.Breaker {
		return breaker.Func(func(_ context.Context, call func(context.Context) error) error {
			return call(context.Background()) // loses the caller's context
		}, nil)
	}, Spec: brkSpec}, s)
	require.NoError(t, err)
	require.True(t, run.Broken())
	var invariants []string
	for _, v := range run.Violations {
		invariants = append(invariants, v.Invariant)
	}
	require.Contains(t, invariants, "calls carry the context the breaker was given")

	run, err = breaker.RunSchedule(t, breaker.Config{New: func() breaker.Breaker {
		return failsafecheck.Breaker[any](nil, nil)
	}, Spec: brkSpec}, s)
	require.NoError(t, err)
	require.Contains(t, run.Ops[0].Err, "the circuit breaker is nil")
}

// The History of a run feeds sim's report and the invariants of this
// package.
func TestRunHistory(t *testing.T) {
	s := sim.Schedule{Steps: []sim.Step{{At: 100 * time.Millisecond, For: 200 * time.Millisecond, Target: "dep", Fault: toxics.Down{}}}}
	run, err := breaker.RunSchedule(t, breaker.Config{New: brkGoBreaker(1, 500*time.Millisecond, 200*time.Millisecond), Spec: brkSpec}, s)
	require.NoError(t, err)
	h := run.History()
	require.Len(t, h.Faults, 1)
	calls := h.Select(sim.Window{From: 0, To: h.Duration + 1}, "call")
	require.Len(t, calls, len(run.Ops))
	require.Len(t, h.Select(sim.Window{From: 0, To: h.Duration + 1}, "dependency"), len(run.Calls))
	var turnedAway int
	for _, op := range calls {
		if op.Output == "turned away" {
			turnedAway++
			require.Equal(t, sim.Failed, op.Outcome)
		}
	}
	require.Positive(t, turnedAway)
	require.NoError(t, sim.WriteReport(&strings.Builder{}, h, sim.ReportOptions{}))
	for _, f := range properties.Evaluate(h, []properties.Invariant{properties.FailFast{Within: 2 * time.Millisecond, Kinds: []string{"call"}}}) {
		require.Equal(t, properties.Held, f.Verdict, "%v", f.Err)
	}
}

// With SHAKEDOWN_REPLAY set, Check runs the schedule in the file
// once.
func TestCheckReplay(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "schedule.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"steps":[{"at":"100ms","for":"300ms","target":"dep","fault":{"kind":"down"}}]}`), 0o644))
	t.Setenv(properties.EnvReplay, path)
	breaker.Check(t, breaker.Config{New: brkGoBreaker(1, 500*time.Millisecond, 200*time.Millisecond), Spec: brkSpec})
}

// TestCheckReportsACounterexample runs a failing Check in a
// child process and reads what it printed and wrote.
func TestCheckReportsACounterexample(t *testing.T) {
	if dir := os.Getenv("SHAKEDOWN_BREAKER_CHILD"); dir != "" {
		breaker.Check(t, breaker.Config{New: brkGoBreaker(1, 500*time.Millisecond, 0), Spec: brkSpec, Dir: dir,
			ShrinkTime: time.Minute})
		return
	}
	if testing.Short() {
		t.Skip("runs the test binary again")
	}
	dir := t.TempDir()
	// The child's Check keeps rapid's fail file, as it should for a
	// test that failed; this test's child failed on purpose.
	failDir := filepath.Join("testdata", "rapid", "TestCheckReportsACounterexample")
	if _, err := os.Stat(failDir); os.IsNotExist(err) {
		t.Cleanup(func() {
			os.RemoveAll(failDir)
			os.Remove(filepath.Dir(failDir)) // only if empty
			os.Remove(filepath.Dir(filepath.Dir(failDir)))
		})
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCheckReportsACounterexample$", "-test.v")
	cmd.Env = append(os.Environ(), "SHAKEDOWN_BREAKER_CHILD="+dir)
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "the child must fail:\n%s", out)
	for _, want := range []string{
		"the breaker broke its spec after",
		"✗ every call ends within 200ms",
		"spec: opens after 3 consecutive failures, stays open 500ms",
		"schedule:",
		// A first step. Where it starts, and its kind (a blackhole, or
		// a latency past the timeout), depend on rapid's draws: each run
		// ends at a 1-minimal schedule, but not always the same one
		// (CI saw "+10ms for 210ms dep latency(100ms)": its first call
		// takes 201ms, while with the same step at +0s every call ends
		// within 200ms, so the offset cannot move).
		"0: +",
		"timeline (",
		"replay: SHAKEDOWN_REPLAY=" + filepath.Join(dir, "schedule.json"),
		"report: " + filepath.Join(dir, "report.html"),
	} {
		require.Contains(t, string(out), want)
	}
	s, _, _, err := properties.LoadSchedule(filepath.Join(dir, "schedule.json"))
	require.NoError(t, err)
	// rapid's draws differ from run to run and its shrinker stops at a
	// local minimum: most runs end at one step, some at two (a short
	// latency before the blackhole that does the harm).
	require.NotEmpty(t, s.Steps)
	require.LessOrEqual(t, len(s.Steps), 2, "the counterexample is not small: %s", s)
	require.FileExists(t, filepath.Join(dir, "report.html"))
	sum, err := search.ReadSummary(filepath.Join(dir, "summary.json"))
	require.NoError(t, err)
	require.Equal(t, "failed", sum.Verdict)
	require.NotEmpty(t, sum.Findings)
	for _, f := range sum.Findings {
		require.Equal(t, search.StatusNew, f.Status)
		require.Equal(t, "report.html", f.Report)
		require.Equal(t, s, f.Schedule, "the shrunk schedule")
	}
	require.Contains(t, string(out), "shakedown: finding new: every call ends within 200ms | dep ")
}

// TestMinimizeSixtySecondBreaker: a configuration with a 60s open time
// (gobreaker's default) opened 2s early in its expectation. rapid alone
// used to stop at steps of 41 to 48s; the 1-minimal pass after it brings
// the counterexample down to the shortest schedule that still breaks the
// promise, and no step of it can be made milder by one resolution step.
// With the default budget, under load rapid's half ran out and left two
// steps (a 20ms blackhole, then a 20ms reset) that only a merge makes one
// (TestMinimizeMergesBreakerSteps runs that case alone).
func TestMinimizeSixtySecondBreaker(t *testing.T) {
	spec := breaker.Spec{FailureThreshold: 3, OpenFor: 58 * time.Second, CallTimeout: 200 * time.Millisecond}
	start := time.Now()
	res, err := breaker.Explore(t, breaker.Config{New: brkGoBreaker(1, time.Minute, 200*time.Millisecond), Spec: spec, Iterations: 300})
	require.NoError(t, err)
	require.NotNil(t, res.Failure, "a breaker open 60s must break a promise of 58s")
	s := res.Failure.Schedule
	require.Len(t, s.Steps, 1, "not 1-minimal:\n%s", res.Failure.Counterexample())
	require.Less(t, s.Steps[0].For, 41*time.Second, "the step's length was not shrunk below rapid's own result:\n%s", s)
	t.Logf("shrunk in %v (%d runs, wall %v):\n%s", res.Shrinking.Round(time.Millisecond), res.Runs, time.Since(start).Round(time.Millisecond), res.Failure.Counterexample())
}

// TestCallsFollowTheMomentsNotTheClock: a run costs about the same number
// of calls whatever the configuration's time scale, and the calls are at
// the full rate around the moments the breaker's behaviour can change.
func TestCallsFollowTheMomentsNotTheClock(t *testing.T) {
	run := func(openFor time.Duration, scale time.Duration) *breaker.Iteration {
		s := sim.Schedule{Steps: []sim.Step{
			{At: time.Second, For: 4 * scale, Target: "dep", Fault: toxics.Blackhole{}},
			{At: time.Second + 6*scale, For: 2 * scale, Target: "dep", Fault: toxics.Reset{}},
		}}
		spec := brkSpec
		spec.OpenFor = openFor
		r, err := breaker.RunSchedule(t, breaker.Config{New: brkGoBreaker(1, openFor, 200*time.Millisecond), Spec: spec}, s)
		require.NoError(t, err)
		require.False(t, r.Broken(), r.Counterexample())
		require.GreaterOrEqual(t, r.Opened, 2, r.Timeline())
		require.Positive(t, r.Reclosed, r.Timeline())
		return r
	}
	short, long := run(500*time.Millisecond, 500*time.Millisecond), run(time.Minute, time.Minute)
	t.Logf("%d calls over %v, %d over %v", len(short.Ops), short.Duration.Round(time.Millisecond), len(long.Ops), long.Duration.Round(time.Millisecond))
	// At a steady 100 calls/s the long run would make about 110 times
	// the short one's; it makes at most twice as many.
	require.Less(t, len(long.Ops), 2*len(short.Ops))
	for _, r := range []*breaker.Iteration{short, long} {
		// Every 10ms from CallTimeout before each outage begins to 50ms
		// after; after its failures open the breaker, around OpenFor
		// later (the probe), and through the recovery.
		for _, st := range r.Schedule.Steps {
			var in []time.Duration
			for _, o := range r.Ops {
				if o.Start >= st.At-200*time.Millisecond && o.Start <= st.At+50*time.Millisecond {
					in = append(in, o.Start)
				}
			}
			require.GreaterOrEqual(t, len(in), 24, "calls around %v: %v", st.At, in)
			for i := 1; i < len(in); i++ {
				require.Less(t, in[i]-in[i-1], 11*time.Millisecond, "calls around %v: %v", st.At, in)
			}
		}
	}
}

// anySeed lets TestExploreCatches draw with rapid's own seed (a new one
// each run, or -rapid.seed), to measure how often each bug is caught
// within its budget over many seeds:
//
//	go test ./properties/breaker -run TestExploreCatches -breaker.anyseed -count=100
//
// Without it each case explores with a seed of its own, fixed: a test that
// asserts "caught within 300 schedules" on a new seed every run would fail
// on the seeds that need more, which says nothing about the change under
// test.
var anySeed = flag.Bool("breaker.anyseed", false, "TestExploreCatches: explore with rapid's seed instead of a fixed one per case")

// fixSeed sets rapid's seed for the rest of the test.
func fixSeed(t *testing.T, seed int) {
	f := flag.Lookup("rapid.seed")
	if f == nil {
		t.Fatal("rapid's -rapid.seed flag is not registered")
	}
	was := f.Value.String()
	if err := f.Value.Set(fmt.Sprint(seed)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Value.Set(was) })
}
