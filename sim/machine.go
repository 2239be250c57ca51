package sim

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/shakedown/shakedown/internal/psi"
)

// Machine is what the machine as a whole did during a real run, as the
// kernel tells it: how starved of CPU it was. A timing verdict taken
// while the machine was starved says as much of the machine as of the
// service, so reports and flaky verdicts quote it. It is nil for a
// simulated run (virtual time has no machine) and where the kernel does
// not say (not Linux, or a kernel without pressure stall information).
type Machine struct {
	// CPUPressure is the share of the run's wall time during which at
	// least one runnable task on the machine (the test process, the
	// containers, anything else) waited for a CPU: the "some" line of
	// Linux's /proc/pressure/cpu. Near 0 on an idle machine; most of the
	// run on a shared runner with builds beside it.
	CPUPressure float64 `json:"cpu_pressure"`
	// Load1 is the one-minute load average at the run's end (-1 where it
	// cannot be read).
	Load1 float64 `json:"load1"`
	// Waited is the share of the run's wall time that the test process's
	// threads spent runnable but waiting for a CPU, summed over its
	// threads (so it can pass 1), from /proc/self/task/*/schedstat; -1
	// where it cannot be read. Threads that exited during the run are
	// not counted.
	Waited float64 `json:"waited"`
	// Lapses are the gaps of more than 50 ms between two beats of the
	// test process's heartbeat (every 10 ms): short of the stalls that
	// make ops [Missed], they show where the process itself ran late.
	Lapses []Lapse `json:"lapses,omitempty"`
	// Dependencies says how long each target that can tell
	// ([CPUStaller]: harness's containers on Linux) had a process
	// waiting for a CPU: a dependency starved by the machine answers late
	// however resilient the client.
	Dependencies []DependencyCPU `json:"dependencies,omitempty"`
}

// A CPUStaller is a [Target] that can say how its processes fared for
// CPU. CPUStall returns its totals so far: waited, the time during which
// at least one of its processes was runnable but waiting for a CPU (the
// "some" total of the Linux pressure stall information of its cgroup),
// and used, the CPU time its processes used, summed over CPUs (negative
// when unknown). It is false when it cannot say (a container that is
// down, a kernel without PSI). The totals may restart from zero when the
// target restarts.
type CPUStaller interface {
	CPUStall() (waited, used time.Duration, ok bool)
}

// A ConnCounter is a [CPUStaller] that also counts the connections handed
// to its dependency: ConnsOpened is how many its proxy has passed on so
// far (not those a fault refused or reset at once). A run records them
// beside the CPU, so a verdict can tell the work of connections (a
// database forks and authenticates each one) from the work of requests.
type ConnCounter interface {
	ConnsOpened() int64
}

// An AnswerTimer is a [CPUStaller] whose proxy also times its
// dependency's answers: Answers returns, so far, how many requests it
// passed on were answered (or saw their connection close first) and the
// time they waited, summed, from a request's first bytes ready for the
// dependency to its answer's first bytes ready for the client; and how
// many wait for their answers now (one per connection at most). A run records
// them beside the CPU, so a verdict can tell a dependency that kept its
// clients waiting from one that answered as it always did, and how much
// its clients asked of it whatever the CPU that cost.
type AnswerTimer interface {
	Answers() (n int64, waited time.Duration, waiting int64)
}

// cpuTotals is a CPUStaller's totals at one read; conns and answers are
// -1 where the target does not count them.
type cpuTotals struct {
	waited, used time.Duration
	conns        int64
	answers      int64
	answerWait   time.Duration
	waiting      int64
}

// DependencyCPU is a target's CPU stall during a run.
type DependencyCPU struct {
	Target string `json:"target"`
	// Waited is the share of the run's known time during which a
	// process of the target waited for a CPU (-1 when never known).
	Waited float64 `json:"waited"`
	// Slots is the same share in each 100 ms of the run, from its start
	// (-1 where it is not known: the target was down or restarted).
	Slots []float64 `json:"slots"`
	// Used is the CPU the target's processes used in each 100 ms of the
	// run, in CPUs (0.5 is half of one; -1 where it is not known). A
	// dependency that waited longer but used no more did no more work:
	// something else had the CPUs.
	Used []float64 `json:"used,omitempty"`
	// Opened is the number of connections handed to the target in each
	// 100 ms of the run (-1 where it is not known; absent for a target
	// that is no [ConnCounter]).
	Opened []float64 `json:"opened,omitempty"`
	// Answered is the number of requests to the target answered in each
	// 100 ms of the run, and AnswerTime the seconds they waited for their
	// answers, summed (-1 where not known; absent for a target that is no
	// [AnswerTimer]). A request counts in the slot its answer came in.
	Answered   []float64 `json:"answered,omitempty"`
	AnswerTime []float64 `json:"answer_time,omitempty"`
	// Waiting is the number of requests to the target waiting for their
	// answers at the end of each 100 ms (-1 where not known; absent for a
	// target that is no [AnswerTimer]): a dependency that answers nothing
	// for a while, asked, shows there and not in Answered.
	Waiting []float64 `json:"waiting,omitempty"`
}

// DependencySlot is the resolution of [DependencyCPU.Slots], Used and
// Opened.
const DependencySlot = 100 * time.Millisecond

// WaitedBetween is the share of [from, to) during which a process of the
// target waited for a CPU, over the slots known in it, or -1.
func (d DependencyCPU) WaitedBetween(from, to time.Duration) float64 {
	return slotMean(d.Slots, from, to)
}

// UsedBetween is the CPU the target's processes used in [from, to), in
// CPUs, over the slots known in it, or -1.
func (d DependencyCPU) UsedBetween(from, to time.Duration) float64 {
	return slotMean(d.Used, from, to)
}

// OpenedBetween is the number of connections handed to the target in
// [from, to), over the slots known in it, or -1.
func (d DependencyCPU) OpenedBetween(from, to time.Duration) float64 {
	sum, n := slotSum(d.Opened, from, to)
	if n == 0 {
		return -1
	}
	return sum
}

// AnsweredBetween is how many requests the target answered in [from, to),
// over the slots known in it, and how long each waited on average for its
// answer; n is -1 when nothing is known there, and the wait 0 when
// nothing was answered.
func (d DependencyCPU) AnsweredBetween(from, to time.Duration) (n float64, wait time.Duration) {
	if len(d.Answered) != len(d.AnswerTime) {
		return -1, 0
	}
	var sum, total float64
	known := false
	for i, c := range d.Answered {
		if !slotIn(i, from, to) || c < 0 || d.AnswerTime[i] < 0 {
			continue
		}
		known, total, sum = true, total+c, sum+d.AnswerTime[i]
	}
	if !known {
		return -1, 0
	}
	if total == 0 {
		return 0, 0
	}
	return total, time.Duration(sum / total * float64(time.Second))
}

// WaitingBetween is the most requests to the target that waited for their
// answers at the end of a slot in [from, to), over the slots known in it,
// or -1.
func (d DependencyCPU) WaitingBetween(from, to time.Duration) float64 {
	most := -1.0
	for i, v := range d.Waiting {
		if !slotIn(i, from, to) || v < 0 {
			continue
		}
		most = max(most, v)
	}
	return most
}

// slotIn says whether slot i (of DependencySlot each, from a run's start)
// touches [from, to).
func slotIn(i int, from, to time.Duration) bool {
	at := time.Duration(i) * DependencySlot
	return at+DependencySlot > from && at < to
}

// slotMean is the mean of the known slots that [from, to) touches, or -1.
func slotMean(slots []float64, from, to time.Duration) float64 {
	sum, n := slotSum(slots, from, to)
	if n == 0 {
		return -1
	}
	return sum / float64(n)
}

// slotSum is the sum of the known slots that [from, to) touches, and how
// many they are.
func slotSum(slots []float64, from, to time.Duration) (sum float64, n int) {
	for i, v := range slots {
		if !slotIn(i, from, to) || v < 0 {
			continue
		}
		sum += v
		n++
	}
	return sum, n
}

// A Lapse is a gap in the test process's heartbeat, as offsets
// from the run's start, with the CPU the process used meanwhile (in
// cores; -1 unknown): near 0 the kernel did not run it, near or above 1
// it was busy.
type Lapse struct {
	From time.Duration `json:"from"`
	To   time.Duration `json:"to"`
	CPU  float64       `json:"cpu"`
}

func (m *Machine) String() string {
	if m == nil {
		return "machine load unknown"
	}
	s := fmt.Sprintf("CPU pressure %.0f%%", 100*m.CPUPressure)
	if m.Load1 >= 0 {
		s += fmt.Sprintf(", load %.1f", m.Load1)
	}
	if m.Waited >= 0 {
		s += fmt.Sprintf(", the test process waited for a CPU %.0f%% of the run", 100*m.Waited)
	}
	var deps []string
	for _, d := range m.Dependencies {
		if d.Waited >= 0 {
			deps = append(deps, fmt.Sprintf("%s %.0f%%", d.Target, 100*d.Waited))
		}
	}
	if len(deps) > 0 {
		s += ", the dependencies waited for a CPU " + strings.Join(deps, ", ")
	}
	var conns []string
	for _, d := range m.Dependencies {
		if n := d.OpenedBetween(0, math.MaxInt64); n >= 0 {
			conns = append(conns, fmt.Sprintf("%s %.0f", d.Target, n))
		}
	}
	if len(conns) > 0 {
		s += ", connections handed to " + strings.Join(conns, ", ")
	}
	var answers []string
	for _, d := range m.Dependencies {
		if n, wait := d.AnsweredBetween(0, math.MaxInt64); n >= 0 {
			answers = append(answers, fmt.Sprintf("%s %.0f (%v on average)", d.Target, n, wait.Round(10*time.Microsecond)))
		}
	}
	if len(answers) > 0 {
		s += ", requests answered " + strings.Join(answers, ", ")
	}
	if len(m.Lapses) > 0 {
		longest := m.Lapses[0]
		for _, l := range m.Lapses[1:] {
			if l.To-l.From > longest.To-longest.From {
				longest = l
			}
		}
		s += fmt.Sprintf(", %d heartbeat gaps over 50ms (longest %v at %v)", len(m.Lapses),
			(longest.To - longest.From).Round(time.Millisecond), longest.From.Round(time.Millisecond))
	}
	return s
}

// machineWatch reads the machine's CPU stall time at a run's start, to
// compare with its end.
type machineWatch struct {
	start  time.Time
	stall  time.Duration // -1: unknown
	waited time.Duration // -1: unknown
	deps   *dependencyWatch
}

func watchMachine(targets []Target, log *slog.Logger) machineWatch {
	return machineWatch{start: time.Now(), stall: cpuStall(), waited: processWait(), deps: watchDependencies(targets, log)}
}

// dependencyWatch samples the CPU stall of the targets that can tell,
// every DependencySlot.
type dependencyWatch struct {
	log    *slog.Logger
	names  []string
	of     []CPUStaller
	counts []ConnCounter // per target: its counter, nil when it counts none
	timers []AnswerTimer // per target: its answer timer, nil when it has none
	stop   chan struct{}
	done   chan struct{}
	slots  [][]float64 // per target: the share waited
	used   [][]float64 // per target: CPUs used
	opened [][]float64 // per target: connections opened (nil: not counted)
	// per target: requests answered, the seconds they waited, and those
	// waiting at the slot's end (nil: not timed)
	answered, answerTime, waiting [][]float64
}

func watchDependencies(targets []Target, log *slog.Logger) *dependencyWatch {
	w := &dependencyWatch{log: log, stop: make(chan struct{}), done: make(chan struct{})}
	for _, t := range targets {
		if s, ok := t.(CPUStaller); ok {
			c, _ := t.(ConnCounter)
			a, _ := t.(AnswerTimer)
			w.names = append(w.names, t.Name())
			w.of, w.counts, w.timers = append(w.of, s), append(w.counts, c), append(w.timers, a)
		}
	}
	if len(w.of) == 0 {
		return nil
	}
	w.slots = make([][]float64, len(w.of))
	w.used = make([][]float64, len(w.of))
	w.opened = make([][]float64, len(w.of))
	w.answered = make([][]float64, len(w.of))
	w.answerTime = make([][]float64, len(w.of))
	w.waiting = make([][]float64, len(w.of))
	go w.loop()
	return w
}

func (w *dependencyWatch) loop() {
	defer close(w.done)
	last := make([]cpuTotals, len(w.of))
	known := make([]bool, len(w.of))
	for i := range w.of {
		last[i], known[i] = w.read(i)
	}
	t := time.NewTicker(DependencySlot)
	defer t.Stop()
	prev := time.Now()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			// The time of the reads, not of the tick: a tick taken
			// late would otherwise spread its stall over the wrong span.
			now := time.Now()
			wall := now.Sub(prev)
			prev = now
			for i := range w.of {
				v, ok := w.read(i)
				share, used := -1.0, -1.0
				if ok && known[i] && v.waited >= last[i].waited && wall > 0 {
					share = min(float64(v.waited-last[i].waited)/float64(wall), 1)
					if v.used >= 0 && last[i].used >= 0 && v.used >= last[i].used {
						used = float64(v.used-last[i].used) / float64(wall)
					}
				}
				w.slots[i] = append(w.slots[i], math.Round(share*100)/100)
				w.used[i] = append(w.used[i], math.Round(used*100)/100)
				if w.counts[i] != nil {
					opened := -1.0
					if v.conns >= 0 && last[i].conns >= 0 && v.conns >= last[i].conns {
						opened = float64(v.conns - last[i].conns)
					}
					w.opened[i] = append(w.opened[i], opened)
				}
				if w.timers[i] != nil {
					n, t := -1.0, -1.0
					if v.answers >= 0 && last[i].answers >= 0 && v.answers >= last[i].answers && v.answerWait >= last[i].answerWait {
						n, t = float64(v.answers-last[i].answers), (v.answerWait - last[i].answerWait).Seconds()
					}
					waiting := -1.0
					if v.answers >= 0 {
						waiting = float64(v.waiting)
					}
					w.answered[i] = append(w.answered[i], n)
					w.answerTime[i] = append(w.answerTime[i], t)
					w.waiting[i] = append(w.waiting[i], waiting)
				}
				last[i], known[i] = v, ok
			}
		}
	}
}

// read asks target i for its stall; one that panics is logged, as a
// failing sampler is, and its slot is unknown.
func (w *dependencyWatch) read(i int) (d cpuTotals, ok bool) {
	d.conns, d.answers = -1, -1
	err := protect(fmt.Sprintf("CPUStall of target %q", w.names[i]), func() error {
		d.waited, d.used, ok = w.of[i].CPUStall()
		if w.counts[i] != nil {
			d.conns = w.counts[i].ConnsOpened()
		}
		if w.timers[i] != nil {
			d.answers, d.answerWait, d.waiting = w.timers[i].Answers()
		}
		return nil
	})
	if err != nil {
		w.log.Warn("sim: target's CPU stall unknown", slog.String("target", w.names[i]), slog.Any("err", err))
		return cpuTotals{conns: -1, answers: -1}, false
	}
	return d, ok
}

func (w *dependencyWatch) close() []DependencyCPU {
	if w == nil {
		return nil
	}
	close(w.stop)
	<-w.done
	out := make([]DependencyCPU, len(w.of))
	for i := range w.of {
		out[i] = DependencyCPU{Target: w.names[i], Slots: w.slots[i], Used: w.used[i], Opened: w.opened[i],
			Answered: w.answered[i], AnswerTime: w.answerTime[i], Waiting: w.waiting[i]}
		out[i].Waited = out[i].WaitedBetween(0, time.Duration(len(w.slots[i]))*DependencySlot)
	}
	return out
}

// close returns what the machine did since the watch began, or nil when
// the kernel does not say.
func (w machineWatch) close(lapses []Lapse) *Machine {
	deps := w.deps.close()
	end, waited := cpuStall(), processWait()
	wall := time.Since(w.start)
	if w.stall < 0 || end < 0 || wall <= 0 {
		return nil
	}
	share := float64(end-w.stall) / float64(wall)
	m := &Machine{CPUPressure: min(max(share, 0), 1), Load1: load1(), Waited: -1, Lapses: lapses, Dependencies: deps}
	if w.waited >= 0 && waited >= 0 {
		m.Waited = max(float64(waited-w.waited), 0) / float64(wall)
	}
	return m
}

// processWait is the time the process's live threads have spent waiting
// on a run queue (the second field of each /proc/self/task/*/schedstat),
// or -1 where it cannot be read.
func processWait() time.Duration {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return -1
	}
	var sum time.Duration
	read := 0
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + t.Name() + "/schedstat")
		if err != nil {
			continue // the thread exited
		}
		fields := strings.Fields(string(b))
		if len(fields) < 2 {
			continue
		}
		ns, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			continue
		}
		sum += time.Duration(ns)
		read++
	}
	if read == 0 {
		return -1
	}
	return sum
}

// cpuStall is the machine's CPU stall time so far ("some total" of
// /proc/pressure/cpu), or -1 where it cannot be read.
func cpuStall() time.Duration {
	d, ok := psi.ReadSome("/proc/pressure/cpu")
	if !ok {
		return -1
	}
	return d
}

// load1 is the one-minute load average, or -1.
func load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f, _, _ := strings.Cut(string(b), " ")
	v, err := strconv.ParseFloat(f, 64)
	if err != nil {
		return -1
	}
	return v
}
