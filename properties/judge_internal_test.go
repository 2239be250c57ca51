package properties

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// faulted is a run with one blackhole of db from 500ms to 1s, ending at
// 2s, and the given ops.
func faulted(ops ...sim.Op) *sim.History {
	return &sim.History{Duration: 2 * time.Second, Ops: ops,
		Faults: []sim.FaultEvent{{Target: "db", Fault: toxics.Spec{Fault: toxics.Blackhole{}}, Start: 500 * time.Millisecond, End: time.Second}}}
}

func jop(id uint64, from, to time.Duration, o sim.Outcome) sim.Op {
	return sim.Op{ID: id, Kind: "get", Intended: from, Start: from, End: to, Outcome: o}
}

func jms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// TestJudgeBlamesFaultsOnlyForWhatTheyCaused: a violation that began before
// the first fault took effect (and that the history up to then breaks too)
// is the steady state's, not the schedule's; everything else stays with
// the schedule.
func TestJudgeBlamesFaultsOnlyForWhatTheyCaused(t *testing.T) {
	calm := []sim.Op{jop(1, jms(0), jms(10), sim.OK), jop(2, jms(100), jms(110), sim.OK), jop(3, jms(1200), jms(1210), sim.OK)}
	tests := []struct {
		name   string
		h      *sim.History
		inv    Invariant
		steady bool
	}{
		{"a failure before the fault, judged over the whole run", faulted(append(calm, jop(4, jms(200), jms(210), sim.Unknown))...),
			ErrorRate{Max: 0}, true},
		{"a failure during the fault, judged over the whole run (dated at the run's start)", faulted(append(calm, jop(4, jms(600), jms(610), sim.Unknown))...),
			ErrorRate{Max: 0}, false},
		{"a failure before the fault, judged before it", faulted(append(calm, jop(4, jms(200), jms(210), sim.Unknown))...),
			ErrorRate{Max: 0, Window: sim.Before}, true},
		{"a slow op that began before the fault and ended in it", faulted(append(calm, jop(4, jms(300), jms(900), sim.OK))...),
			MaxLatency{Max: jms(100)}, false},
		{"a slow op before the fault", faulted(append(calm, jop(4, jms(100), jms(400), sim.OK))...),
			MaxLatency{Max: jms(100)}, true},
		{"a broken latency bound during the fault", faulted(append(calm, jop(4, jms(600), jms(900), sim.OK))...),
			LatencyQuantile{Q: 1, Max: jms(100), Window: sim.During}, false},
		{"an invariant whose error is not Violations", faulted(append(calm, jop(4, jms(200), jms(210), sim.Unknown))...),
			Func("plain error", func(*sim.History) error { return errors.New("no") }), false},
		{"no fault took effect: every break is the steady state's", &sim.History{Duration: time.Second, Ops: append(calm, jop(4, jms(600), jms(610), sim.Unknown)),
			Faults: []sim.FaultEvent{{Target: "db", Fault: toxics.Spec{Fault: toxics.Down{}}, Start: jms(500), Err: "refused"}}},
			ErrorRate{Max: 0}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, steady := judge(tt.h, []Invariant{tt.inv})
			if tt.steady {
				require.Len(t, steady, 1, "findings: %s", fs)
				require.Equal(t, Broken, steady[0].Verdict)
				require.False(t, fs.Broken())
				return
			}
			require.Empty(t, steady)
			require.True(t, fs.Broken(), "%s", fs)
		})
	}
}

// TestJudgeMissedRunIsUnjudged: a run in which the framework missed more
// than a tenth of the ops is judged by nothing, and says why.
func TestJudgeMissedRunIsUnjudged(t *testing.T) {
	missed := sim.Outcome(3)
	if missed.String() != "missed" {
		t.Skip("sim.Missed is not there yet (engineer A's branch)")
	}
	ops := []sim.Op{jop(1, jms(0), jms(10), sim.Unknown)}
	for i := range 9 {
		ops = append(ops, jop(uint64(i+2), jms(600), jms(2000), sim.OK))
	}
	_, steady := judge(faulted(ops...), []Invariant{ErrorRate{Max: 0}})
	require.Len(t, steady, 1, "judged: the failure before the fault")
	ops[1].Outcome, ops[2].Outcome = missed, missed
	fs, steady := judge(faulted(ops...), []Invariant{ErrorRate{Max: 0}})
	require.Empty(t, steady, "not judged at all")
	require.Equal(t, Unjudged, fs[0].Verdict)
	require.ErrorContains(t, fs[0].Err, "the framework missed 2 of the run's 10 ops (20%, more than 10%")
}

func TestUnjudgedKeepsNamesAndGivesTheReason(t *testing.T) {
	fs := unjudged(Findings{{Invariant: "a", Verdict: Broken, Err: errors.New("x")}, {Invariant: "b", Verdict: Held}}, "why")
	require.Equal(t, Findings{
		{Invariant: "a", Verdict: Unjudged, Err: &NoEvidence{Invariant: "a", Reason: "why"}},
		{Invariant: "b", Verdict: Unjudged, Err: &NoEvidence{Invariant: "b", Reason: "why"}},
	}, fs)
}

// TestNoiseFloor: a latency bound under 1.5 times the fault-free figure is
// too tight to judge; one above it, or a bound of another kind, is judged.
func TestNoiseFloor(t *testing.T) {
	var ops []sim.Op
	for i := range 100 {
		ops = append(ops, jop(uint64(i), 0, jms(10+i), sim.OK)) // 10ms..109ms
	}
	ops = append(ops, sim.Op{ID: 200, Kind: "put", End: jms(1)})
	f := measure(&sim.History{Ops: ops})
	require.Equal(t, "101 ops; get p50 59ms, p99 108ms, max 109ms; put p50 1ms, p99 1ms, max 1ms", f.String())
	tests := []struct {
		inv   Invariant
		tight bool
	}{
		{LatencyQuantile{Q: 0.99, Max: jms(150), Window: sim.During}, true},
		{LatencyQuantile{Q: 0.99, Max: jms(170)}, false},
		{LatencyQuantile{Q: 0.5, Max: jms(80)}, true},
		{LatencyQuantile{Q: 0.5, Max: jms(100)}, false},
		{LatencyQuantile{Q: 0.99, Max: jms(5), Kinds: []string{"put"}}, false},
		{LatencyQuantile{Q: 0.99, Max: jms(5), Kinds: []string{"nothing"}}, false}, // nothing measured
		{MaxLatency{Max: jms(150)}, true},
		{MaxLatency{Max: jms(200)}, false},
		{ErrorRate{Max: 0}, false},
	}
	for _, tt := range tests {
		why := f.tooTight(tt.inv)
		require.Equal(t, tt.tight, why != "", "%s: %q", tt.inv.Name(), why)
		if tt.tight {
			require.True(t, strings.HasPrefix(why, "too tight to judge on this machine: without faults the "), why)
			err := tooTight{Invariant: tt.inv, reason: why}.Check(nil)
			require.Equal(t, Unjudged, VerdictOf(err))
		}
	}
}

// hooked is an invariant with the hooks the invariants of this package
// offer a check before any run.
type hooked struct {
	Invariant
	err                     error
	kindNames, sampleNames  []string
	targetNames             []string
	uninterpretable         error
	validated, kindsChecked *bool
}

func (h hooked) validate() error                 { *h.validated = true; return h.err }
func (h hooked) kinds() []string                 { return h.kindNames }
func (h hooked) targets() []string               { return h.targetNames }
func (h hooked) samples() []string               { return h.sampleNames }
func (h hooked) checkKinds(kinds []string) error { *h.kindsChecked = true; return h.uninterpretable }
func (h hooked) String() string                  { return h.Name() }
func newHooked(name string) (hooked, *bool, *bool) {
	v, k := new(bool), new(bool)
	return hooked{Invariant: Func(name, nil), validated: v, kindsChecked: k}, v, k
}

func TestMistakesFoundThroughTheHooks(t *testing.T) {
	h, validated, checked := newHooked("h")
	require.Empty(t, checkInvariant(h, []string{"get"}, []string{"db"}, []string{"pg"}))
	require.True(t, *validated)
	require.True(t, *checked)

	h.err = errors.New("properties: h: Max = 5 is not a fraction in [0, 1]: did you mean 0.05?")
	require.Equal(t, []error{h.err}, checkInvariant(h, nil, nil, nil), "bad parameters first, and alone")

	h.err = nil
	h.kindNames, h.targetNames, h.sampleNames = []string{"get", "put"}, []string{"cache"}, []string{"pg.in_use", "redis.in_use", "pg"}
	h.uninterpretable = errors.New("properties: h: cannot interpret op kind \"scan\"")
	var msgs []string
	for _, err := range checkInvariant(h, []string{"get", "scan"}, []string{"db"}, []string{"pg"}) {
		msgs = append(msgs, err.Error())
	}
	require.Equal(t, []string{
		`properties: h: op kind "put" is not one of the World's [get scan]`,
		`properties: h: target "cache" is not one of the World's [db]`,
		`properties: h: reads samples "redis.in_use", but no sampler of the World records them (samplers: [pg])`,
		`properties: h: cannot interpret op kind "scan"`,
	}, msgs)
}

// TestMissingRuns: an exploration that ran fewer iterations than asked,
// with nothing to say why, or whose rapid reported a failure no run
// recorded, is an error.
func TestMissingRuns(t *testing.T) {
	base := &Iteration{}
	x := &explorer{cfg: Config{Exploration: Exploration{Iterations: 10_000}}, base: base, iterations: 3}
	require.ErrorContains(t, x.missing(nil), "only 3 of 10000 iterations ran, and nothing says why")
	require.ErrorContains(t, x.missing([]string{"[rapid] panic after 2 tests: boom"}), "rapid reported a failure that no run recorded")
	x.stopped = "the test's deadline"
	require.NoError(t, x.missing(nil), "stopped, and says why")
	x = &explorer{cfg: Config{Exploration: Exploration{Iterations: 10}}, base: base, iterations: 10}
	require.NoError(t, x.missing(nil))
	x = &explorer{cfg: Config{Exploration: Exploration{Iterations: 10}}, base: base, steady: base}
	require.NoError(t, x.missing(nil), "a broken baseline explores nothing, and says so")
}

// A flaky failure says how starved of CPU the machine was in the failing
// run and in each rerun, and each dependency until the last heal and
// after it, where the kernel said.
func TestFlakyPressures(t *testing.T) {
	at := func(p float64, deps ...sim.DependencyCPU) *sim.History {
		return &sim.History{Machine: &sim.Machine{CPUPressure: p, Load1: 1, Waited: -1, Dependencies: deps}}
	}
	it := &Iteration{History: at(0.87), again: []*Iteration{{History: at(0.41)}, {History: &sim.History{}}, {History: at(0.455)}}}
	require.Equal(t, " (CPU waits in the failing run: machine 87%; in the reruns: machine 41%; machine 46%)", pressures(it))
	require.Equal(t, " (CPU waits in the failing run: machine 87%)", pressures(&Iteration{History: at(0.87)}))
	require.Empty(t, pressures(&Iteration{History: &sim.History{}, again: []*Iteration{{History: at(0.4)}}}), "unknown in the failing run: nothing to compare")

	healed := at(0.9, sim.DependencyCPU{Target: "db", Waited: 0.3, Slots: []float64{0, 0, 0.2, 0.8, 0.6}},
		sim.DependencyCPU{Target: "cache", Waited: -1, Slots: []float64{-1, -1, -1, -1, -1}})
	healed.Duration = 500 * time.Millisecond
	healed.Faults = []sim.FaultEvent{{Target: "db", Start: 50 * time.Millisecond, End: 300 * time.Millisecond}}
	require.Equal(t, "machine 90%, db 7% until the last heal and 70% after", runCPU(healed), "the slots before 300 ms and from it on; cache never said")
	unhealed := at(0.2, sim.DependencyCPU{Target: "db", Waited: 0.3, Slots: []float64{0.3}})
	require.Equal(t, "machine 20%, db 30%", runCPU(unhealed), "nothing healed: the whole run")
	unhealed.Machine.Dependencies[0].Used = []float64{0.125}
	require.Equal(t, "machine 20%, db 30% (using 0.12 CPUs)", runCPU(unhealed), "with the CPU it used")
	unhealed.Machine.Dependencies[0].Opened = []float64{7}
	require.Equal(t, "machine 20%, db 30% (using 0.12 CPUs, 7 connections opened)", runCPU(unhealed), "and the connections it was handed")

	require.Equal(t, ", CPU pressure 87%, load 1.0", machineSuffix(at(0.87)))
	require.Empty(t, machineSuffix(&sim.History{}))
}
