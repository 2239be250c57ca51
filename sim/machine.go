package sim

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
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
	// Lapses are the times the test process's heartbeat (every 10 ms)
	// was more than 50 ms late: short of the stalls that make ops
	// [Missed], they show where the process itself ran late.
	Lapses []Lapse `json:"lapses,omitempty"`
}

// A Lapse is a time the test process's heartbeat ran late, as offsets
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
	if len(m.Lapses) > 0 {
		longest := m.Lapses[0]
		for _, l := range m.Lapses[1:] {
			if l.To-l.From > longest.To-longest.From {
				longest = l
			}
		}
		s += fmt.Sprintf(", %d heartbeats late by over 50ms (longest %v at %v)", len(m.Lapses),
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
}

func watchMachine() machineWatch {
	return machineWatch{start: time.Now(), stall: cpuStall(), waited: processWait()}
}

// close returns what the machine did since the watch began, or nil when
// the kernel does not say.
func (w machineWatch) close(lapses []Lapse) *Machine {
	end, waited := cpuStall(), processWait()
	wall := time.Since(w.start)
	if w.stall < 0 || end < 0 || wall <= 0 {
		return nil
	}
	share := float64(end-w.stall) / float64(wall)
	m := &Machine{CPUPressure: min(max(share, 0), 1), Load1: load1(), Waited: -1, Lapses: lapses}
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
	b, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return -1
	}
	return parseStall(b)
}

// parseStall reads the "some" line's total (microseconds) of a pressure
// file, or -1 when it has none.
func parseStall(b []byte) time.Duration {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != "some" {
			continue
		}
		for _, f := range fields[1:] {
			if v, ok := strings.CutPrefix(f, "total="); ok {
				us, err := strconv.ParseUint(v, 10, 63)
				if err != nil {
					return -1
				}
				return time.Duration(us) * time.Microsecond
			}
		}
	}
	return -1
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
