package sim

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrStalled starts the error of an op that overlapped a stall of the
// test process: a time when the machine did not run the process at all
// (on a loaded machine the kernel can leave it waiting for a core for a
// second or more). The op's latency or failure then says more of the
// machine than of the service, so the runner records the op as [Missed]:
// a run with many such ops is not judged, rather than blamed on the
// service.
var ErrStalled = errors.New("sim: op overlapped a stall of the test process (the machine did not run it)")

// A stall is a heartbeat that woke more than stallGap after the one
// before, while the process used less than stallCPUShare of one core
// over the gap. The CPU test tells a process the kernel did not run from
// one that ran but was busy: a service in the test's process that burns
// every core delays the heartbeat too, and that is the service's own
// doing, not a stall.
const (
	stallTick     = 10 * time.Millisecond
	stallGap      = 250 * time.Millisecond
	stallCPUShare = 0.25
)

// interval is a span of a run, as offsets from its start.
type interval struct{ from, to time.Duration }

// stallWatch notes the stalls of the process during a run in real time
// (a synctest bubble's time is virtual: nothing stalls there).
type stallWatch struct {
	start  time.Time
	stop   chan struct{}
	done   chan struct{}
	mu     sync.Mutex
	lapses []Lapse // every stall is one of them (see stallsOf)
}

// lapseGap is the heartbeat gap that makes a [Lapse].
const lapseGap = 50 * time.Millisecond

func watchStalls(start time.Time) *stallWatch {
	w := &stallWatch{start: start, stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w
}

func (w *stallWatch) loop() {
	defer close(w.done)
	t := time.NewTicker(stallTick)
	defer t.Stop()
	last, lastCPU := time.Now(), processCPU()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		now, cpu := time.Now(), processCPU()
		used := cpu - lastCPU
		if cpu < 0 || lastCPU < 0 {
			used = -1
		}
		if gap := now.Sub(last); gap > lapseGap {
			l := Lapse{From: last.Sub(w.start), To: now.Sub(w.start), CPU: -1}
			if used >= 0 {
				l.CPU = float64(used) / float64(gap)
			}
			w.mu.Lock()
			w.lapses = append(w.lapses, l)
			w.mu.Unlock()
		}
		last, lastCPU = now, cpu
	}
}

// isStall reports whether a heartbeat gap during which the process used
// cpu of CPU time is a stall. cpu is negative where the process's CPU
// time cannot be read: then the gap alone decides.
func isStall(gap, cpu time.Duration) bool {
	return gap > stallGap && (cpu < 0 || float64(cpu) < stallCPUShare*float64(gap))
}

// close stops the watch and returns the lapses it saw.
func (w *stallWatch) close() []Lapse {
	if w == nil {
		return nil
	}
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lapses
}

// stallsOf is the lapses that are stalls (isStall).
func stallsOf(lapses []Lapse) []interval {
	var out []interval
	for _, l := range lapses {
		gap, cpu := l.To-l.From, time.Duration(-1)
		if l.CPU >= 0 {
			cpu = time.Duration(l.CPU * float64(gap))
		}
		if isStall(gap, cpu) {
			out = append(out, interval{l.From, l.To})
		}
	}
	return out
}

// markStalled records as Missed ([ErrStalled]) every op of h that was not
// missed already and overlapped a stall, from its intended start to its
// end. It returns how many it marked.
func markStalled(h *History, stalls []interval) int {
	n := 0
	for i := range h.Ops {
		op := &h.Ops[i]
		if op.Outcome == Missed {
			continue
		}
		for _, s := range stalls {
			if op.Intended > s.to || op.End < s.from {
				continue
			}
			was := "ok"
			if op.Err != "" {
				was = op.Err
			}
			op.Outcome = Missed
			op.Err = fmt.Sprintf("%v: not run for %v from %v; the op returned: %s",
				ErrStalled, (s.to - s.from).Round(time.Millisecond), s.from.Round(time.Millisecond), was)
			n++
			break
		}
	}
	return n
}
