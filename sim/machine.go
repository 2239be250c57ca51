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
}

func (m *Machine) String() string {
	if m == nil {
		return "machine load unknown"
	}
	s := fmt.Sprintf("CPU pressure %.0f%%", 100*m.CPUPressure)
	if m.Load1 >= 0 {
		s += fmt.Sprintf(", load %.1f", m.Load1)
	}
	return s
}

// machineWatch reads the machine's CPU stall time at a run's start, to
// compare with its end.
type machineWatch struct {
	start time.Time
	stall time.Duration // -1: unknown
}

func watchMachine() machineWatch {
	return machineWatch{start: time.Now(), stall: cpuStall()}
}

// close returns what the machine did since the watch began, or nil when
// the kernel does not say.
func (w machineWatch) close() *Machine {
	end := cpuStall()
	wall := time.Since(w.start)
	if w.stall < 0 || end < 0 || wall <= 0 {
		return nil
	}
	share := float64(end-w.stall) / float64(wall)
	return &Machine{CPUPressure: min(max(share, 0), 1), Load1: load1()}
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
