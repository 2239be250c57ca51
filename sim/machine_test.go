package sim

import (
	"bytes"
	"os"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMachineString(t *testing.T) {
	require.Equal(t, "CPU pressure 63%, load 9.1", (&Machine{CPUPressure: 0.63, Load1: 9.1, Waited: -1}).String())
	require.Equal(t, "CPU pressure 0%", (&Machine{Load1: -1, Waited: -1}).String())
	require.Equal(t, "CPU pressure 90%, load 12.0, the test process waited for a CPU 140% of the run, 2 heartbeat gaps over 50ms (longest 230ms at 2.1s)",
		(&Machine{CPUPressure: 0.9, Load1: 12, Waited: 1.4, Lapses: []Lapse{
			{From: 500 * time.Millisecond, To: 560 * time.Millisecond, CPU: 0.1},
			{From: 2100 * time.Millisecond, To: 2330 * time.Millisecond, CPU: 0.05},
		}}).String())
	require.Equal(t, "CPU pressure 90%, the dependencies waited for a CPU db 30%, connections handed to db 7",
		(&Machine{CPUPressure: 0.9, Load1: -1, Waited: -1, Dependencies: []DependencyCPU{
			{Target: "db", Waited: 0.3, Slots: []float64{0.3, 0.3}, Opened: []float64{3, 4}},
			{Target: "cache", Waited: -1, Slots: []float64{-1, -1}},
		}}).String())
	require.Equal(t, "CPU pressure 90%, the dependencies waited for a CPU db 30%, requests answered db 7 (3.29ms on average)",
		(&Machine{CPUPressure: 0.9, Load1: -1, Waited: -1, Dependencies: []DependencyCPU{
			{Target: "db", Waited: 0.3, Slots: []float64{0.3, 0.3}, Answered: []float64{3, 4}, AnswerTime: []float64{0.003, 0.020}},
		}}).String())
	require.Equal(t, "machine load unknown", (*Machine)(nil).String())
}

// A real run says how starved of CPU the machine was, where the kernel
// says; a simulated one never does.
func TestRunMachine(t *testing.T) {
	h, err := Run(t.Context(), Plan{Settings: Settings{Cooldown: 50 * time.Millisecond}})
	require.NoError(t, err)
	if _, err := os.ReadFile("/proc/pressure/cpu"); err != nil {
		require.Nil(t, h.Machine, "no pressure stall information here (%v), yet the run reports some", err)
	} else {
		require.NotNil(t, h.Machine, "the kernel has /proc/pressure/cpu, yet the run reports no machine load")
		require.GreaterOrEqual(t, h.Machine.CPUPressure, 0.0)
		require.LessOrEqual(t, h.Machine.CPUPressure, 1.0)
		require.GreaterOrEqual(t, h.Machine.Load1, 0.0)
		if _, err := os.ReadFile("/proc/self/schedstat"); err == nil {
			require.GreaterOrEqual(t, h.Machine.Waited, 0.0, "schedstat is here, yet the run says nothing of the process's waits")
		}
	}
	synctest.Test(t, func(t *testing.T) {
		h, err := Run(t.Context(), Plan{Settings: Settings{Cooldown: 50 * time.Millisecond}})
		require.NoError(t, err)
		require.Nil(t, h.Machine, "virtual time has no machine")
	})
}

// The report's header says how starved of CPU the machine was, when the
// run says.
func TestReportMachine(t *testing.T) {
	h := sampleHistory()
	var buf bytes.Buffer
	require.NoError(t, WriteReport(&buf, h, ReportOptions{}))
	require.NotContains(t, buf.String(), "the machine:")
	h.Machine = &Machine{CPUPressure: 0.63, Load1: 9.1, Waited: -1}
	buf.Reset()
	require.NoError(t, WriteReport(&buf, h, ReportOptions{}))
	require.Contains(t, buf.String(), "the machine: <b>CPU pressure 63%, load 9.1</b>")
}

// stallingTarget says its processes wait for a CPU half of the wall
// time and use a quarter of a CPU, except while it is "down" (from 300
// to 500 ms), after which its totals start again from zero, as a
// restarted container's do.
type stallingTarget struct {
	stubTarget
	start time.Time
}

func (s *stallingTarget) CPUStall() (waited, used time.Duration, ok bool) {
	at := time.Since(s.start)
	switch {
	case at < 300*time.Millisecond:
	case at < 500*time.Millisecond:
		return 0, 0, false
	default:
		at -= 500 * time.Millisecond
	}
	return at / 2, at / 4, true
}

// A real run records, every 100 ms, how long each target that can tell
// had a process waiting for a CPU; unknown slots are -1 and left out of
// the run's share.
func TestRunDependencyCPU(t *testing.T) {
	if _, err := os.ReadFile("/proc/pressure/cpu"); err != nil {
		t.Skipf("no pressure stall information on this machine (%v): a run records no machine", err)
	}
	dep := &stallingTarget{stubTarget: stubTarget{name: "dep"}, start: time.Now()}
	h, err := Run(t.Context(), Plan{World: World{Targets: []Target{dep, &stubTarget{name: "plain"}}}, Settings: Settings{Cooldown: time.Second}})
	require.NoError(t, err)
	require.NotNil(t, h.Machine)
	require.Len(t, h.Machine.Dependencies, 1, "only the target that can tell is listed")
	d := h.Machine.Dependencies[0]
	require.Equal(t, "dep", d.Target)
	require.GreaterOrEqual(t, len(d.Slots), 8, "a 1 s run has about 10 slots of 100 ms")
	unknown := 0
	for _, v := range d.Slots {
		if v < 0 {
			unknown++
			continue
		}
		require.InDelta(t, 0.5, v, 0.1, "slots %v", d.Slots)
	}
	require.Len(t, d.Used, len(d.Slots))
	for i, v := range d.Used {
		if d.Slots[i] < 0 {
			require.Equal(t, -1.0, v, "used where the wait is unknown: %v", d.Used)
			continue
		}
		require.InDelta(t, 0.25, v, 0.05, "used %v", d.Used)
	}
	require.InDelta(t, 0.25, d.UsedBetween(0, time.Hour), 0.05)
	require.GreaterOrEqual(t, unknown, 2, "down from 300 to 500 ms, and the restart's slot: slots %v", d.Slots)
	require.InDelta(t, 0.5, d.Waited, 0.1)
	require.Contains(t, h.Machine.String(), "the dependencies waited for a CPU dep ")
}

func TestWaitedBetween(t *testing.T) {
	d := DependencyCPU{Target: "db", Slots: []float64{0.1, 0.3, -1, 0.8, 1}}
	require.InDelta(t, 0.2, d.WaitedBetween(0, 200*time.Millisecond), 1e-9)
	require.InDelta(t, 0.7, d.WaitedBetween(150*time.Millisecond, time.Second), 1e-9, "a slot counts when the span touches it; unknown slots are left out")
	require.InDelta(t, 0.9, d.WaitedBetween(300*time.Millisecond, time.Hour), 1e-9)
	require.Equal(t, -1.0, d.WaitedBetween(200*time.Millisecond, 300*time.Millisecond), "only an unknown slot")
	require.Equal(t, -1.0, d.WaitedBetween(time.Second, 2*time.Second), "past the run")
	d.Used = []float64{0.5, 1.5, -1, 0.25}
	require.InDelta(t, 1.0, d.UsedBetween(0, 200*time.Millisecond), 1e-9)
	require.InDelta(t, 0.25, d.UsedBetween(200*time.Millisecond, time.Hour), 1e-9, "unknown slots are left out")
	require.Equal(t, -1.0, d.UsedBetween(400*time.Millisecond, time.Hour), "past the slots")
}

// countingTarget opens one connection between two reads of its counter,
// and goes back to 0 once (as a target whose counter restarted).
type countingTarget struct {
	stallingTarget
	reads atomic.Int64
}

func (c *countingTarget) ConnsOpened() int64 {
	n := c.reads.Add(1)
	if n > 5 {
		n -= 5
	}
	return n
}

// Answers answers two requests between two reads, each after 10 ms, and
// has one waiting.
func (c *countingTarget) Answers() (int64, time.Duration, int64) {
	n := 2 * c.reads.Load()
	return n, time.Duration(n) * 10 * time.Millisecond, 1
}

// A target that counts its connections has them recorded in each slot;
// a slot where the counter went back is unknown, not negative.
func TestRunDependencyConns(t *testing.T) {
	if _, err := os.ReadFile("/proc/pressure/cpu"); err != nil {
		t.Skipf("no pressure stall information on this machine (%v): a run records no machine", err)
	}
	dep := &countingTarget{stallingTarget: stallingTarget{stubTarget: stubTarget{name: "dep"}, start: time.Now()}}
	h, err := Run(t.Context(), Plan{World: World{Targets: []Target{dep, &stallingTarget{stubTarget: stubTarget{name: "quiet"}, start: time.Now()}}}, Settings: Settings{Cooldown: time.Second}})
	require.NoError(t, err)
	require.NotNil(t, h.Machine)
	require.Len(t, h.Machine.Dependencies, 2)
	d, quiet := h.Machine.Dependencies[0], h.Machine.Dependencies[1]
	require.Nil(t, quiet.Opened, "a target that does not count")
	require.Len(t, d.Opened, len(d.Slots))
	require.Equal(t, -1.0, d.Opened[4], "the counter went back at the fifth slot: %v", d.Opened)
	for i, v := range d.Opened {
		if i != 4 {
			require.Equal(t, 1.0, v, "one connection between two reads: %v", d.Opened)
		}
	}
	require.InDelta(t, float64(len(d.Opened)-1), d.OpenedBetween(0, time.Hour), 1e-9)
	require.Nil(t, quiet.Answered, "a target that does not time its answers")
	require.Len(t, d.Answered, len(d.Slots))
	require.Len(t, d.AnswerTime, len(d.Slots))
	n, wait := d.AnsweredBetween(0, time.Hour)
	require.Positive(t, n, "answers recorded: %v", d.Answered)
	require.InDelta(t, 10*time.Millisecond, wait, float64(time.Microsecond), "the mean wait: %v over %v", d.AnswerTime, d.Answered)
	require.Len(t, d.Waiting, len(d.Slots))
	require.Equal(t, 1.0, d.WaitingBetween(0, time.Hour), "one waiting at every slot's end: %v", d.Waiting)
}

func TestAnsweredBetween(t *testing.T) {
	d := DependencyCPU{Target: "db", Answered: []float64{2, 0, -1, 4}, AnswerTime: []float64{0.2, 0, -1, 0.1}}
	n, wait := d.AnsweredBetween(0, 200*time.Millisecond)
	require.Equal(t, 2.0, n)
	require.Equal(t, 100*time.Millisecond, wait)
	n, wait = d.AnsweredBetween(0, time.Hour)
	require.Equal(t, 6.0, n, "unknown slots are left out")
	require.InDelta(t, 50*time.Millisecond, wait, float64(time.Microsecond), "the mean of the requests, not of the slots")
	n, wait = d.AnsweredBetween(100*time.Millisecond, 200*time.Millisecond)
	require.Equal(t, 0.0, n, "known, and nothing answered")
	require.Zero(t, wait)
	n, _ = d.AnsweredBetween(200*time.Millisecond, 300*time.Millisecond)
	require.Equal(t, -1.0, n, "only an unknown slot")
	n, _ = DependencyCPU{Target: "cache"}.AnsweredBetween(0, time.Hour)
	require.Equal(t, -1.0, n, "not timed")

	d.Waiting = []float64{0, 3, -1, 1}
	require.Equal(t, 3.0, d.WaitingBetween(0, time.Hour), "the most")
	require.Equal(t, 1.0, d.WaitingBetween(200*time.Millisecond, time.Hour), "unknown slots are left out")
	require.Equal(t, -1.0, d.WaitingBetween(200*time.Millisecond, 300*time.Millisecond), "only an unknown slot")
}

func TestOpenedBetween(t *testing.T) {
	d := DependencyCPU{Target: "db", Opened: []float64{2, 0, -1, 5, 1}}
	require.InDelta(t, 2, d.OpenedBetween(0, 200*time.Millisecond), 1e-9)
	require.InDelta(t, 6, d.OpenedBetween(150*time.Millisecond, time.Hour), 1e-9, "unknown slots are left out of the sum")
	require.Equal(t, -1.0, d.OpenedBetween(200*time.Millisecond, 300*time.Millisecond), "only an unknown slot")
	require.Equal(t, -1.0, DependencyCPU{Target: "cache"}.OpenedBetween(0, time.Hour), "not counted")
}

type panickingStaller struct{ stubTarget }

func (*panickingStaller) CPUStall() (waited, used time.Duration, ok bool) {
	panic("broken adapter")
}

// A target whose CPUStall panics does not crash the run: its slots are
// unknown, as a failing sampler's values are missed.
func TestRunDependencyCPUPanics(t *testing.T) {
	if _, err := os.ReadFile("/proc/pressure/cpu"); err != nil {
		t.Skipf("no pressure stall information on this machine (%v): a run records no machine", err)
	}
	h, err := Run(t.Context(), Plan{World: World{Targets: []Target{&panickingStaller{stubTarget{name: "dep"}}}}, Settings: Settings{Cooldown: 300 * time.Millisecond}})
	require.NoError(t, err)
	require.NotNil(t, h.Machine)
	require.Len(t, h.Machine.Dependencies, 1)
	require.Equal(t, -1.0, h.Machine.Dependencies[0].Waited)
	require.NotEmpty(t, h.Machine.Dependencies[0].Slots)
	for _, v := range h.Machine.Dependencies[0].Slots {
		require.Equal(t, -1.0, v)
	}
}
