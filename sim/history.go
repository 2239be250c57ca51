package sim

import (
	"fmt"
	"strings"
	"time"

	"github.com/shakedown/shakedown/toxics"
)

// Outcome is what the client knows about an op once it returned.
type Outcome uint8

const (
	// OK: the op succeeded.
	OK Outcome = iota
	// Failed: the op failed and had no effect on the dependency (an
	// error the client knows happened before anything was applied, such
	// as a refused connection).
	Failed
	// Unknown: the op failed in a way that leaves its effect unknown (a
	// timeout, a connection reset after the request was sent). Checkers
	// treat it as possibly applied.
	Unknown
	// Missed: the framework did not observe the op's outcome, so it says
	// nothing of the service, and invariants of latency, errors and
	// recovery leave it out ([Stats] counts it apart). Only the runner
	// records it, for exactly three cases; Op.Err says which:
	//
	//   - [ErrNotStarted]: the op was due but the driver never started
	//     it (the run ended, or was cancelled, with [OpenLoop.MaxInFlight]
	//     ops in flight). Start and End are when it was given up. Do
	//     never ran: it had no effect.
	//   - [ErrCutOff]: the op was running when the drain ended, and the
	//     runner cancelled its context before the op's own
	//     [Workload.Timeout] would have (Start+Timeout later than the
	//     cut), and the op returned an error within [AbandonGrace] of
	//     that. End is when it returned. Do ran: it may have taken
	//     effect, so checkers of data treat it like Unknown.
	//   - [ErrStalled]: in real time, the op overlapped (from its
	//     intended start to its end) a stall of the test process: a
	//     heartbeat of the runner woke over 250ms late while the process
	//     had used under a quarter of a core, so the machine, not the
	//     service, held it. Op.Err ends with what the op returned; it may
	//     have taken effect, and checkers of data treat it like Unknown.
	//
	// An op that returns an error after the cut when its workload has no
	// Timeout (it had been running for the whole drain, bounded by
	// nothing of its own) is not Missed but, as its workload classifies
	// what it returned, usually Unknown, its error starting with
	// [ErrHung]: a client that hangs is a finding. So is one that ignored
	// the cancellation for longer than AbandonGrace ([ErrAbandoned]),
	// recorded as Unknown with the time it was abandoned as its End, a
	// lower bound of its latency.
	Missed
)

func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case Failed:
		return "failed"
	case Unknown:
		return "unknown"
	case Missed:
		return "missed"
	}
	return fmt.Sprintf("Outcome(%d)", uint8(o))
}

// MarshalText implements encoding.TextMarshaler.
func (o Outcome) MarshalText() ([]byte, error) {
	if o > Missed {
		return nil, fmt.Errorf("sim: invalid outcome %d", uint8(o))
	}
	return []byte(o.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (o *Outcome) UnmarshalText(b []byte) error {
	switch string(b) {
	case "ok":
		*o = OK
	case "failed":
		*o = Failed
	case "unknown":
		*o = Unknown
	case "missed":
		*o = Missed
	default:
		return fmt.Errorf("sim: outcome %q is not one of ok, failed, unknown, missed", b)
	}
	return nil
}

// Op is one operation of a workload. All times are offsets from the start
// of the History, on the monotonic clock (in JSON: integer nanoseconds).
type Op struct {
	ID   uint64 `json:"id"`
	Kind string `json:"kind"`
	// Intended is when the op was meant to start. Open-loop drivers set
	// it from the arrival schedule, so a slow system cannot hide its
	// latency by delaying the load; closed-loop drivers set it to Start.
	Intended time.Duration `json:"intended"`
	Start    time.Duration `json:"start"`
	End      time.Duration `json:"end"`
	Outcome  Outcome       `json:"outcome"`
	Err      string        `json:"err,omitempty"`
	// Input and Output are free-form values the workload records for
	// checkers that reason about data, such as linearizability or lost
	// writes.
	Input  string `json:"input,omitempty"`
	Output string `json:"output,omitempty"`
}

// Latency is the time from the intended start to the end.
func (o Op) Latency() time.Duration { return o.End - o.Intended }

// FaultEvent records one step of the schedule as it really ran.
type FaultEvent struct {
	// Step is the index of the step in the schedule.
	Step   int         `json:"step"`
	Target string      `json:"target"`
	Fault  toxics.Spec `json:"fault"`
	// Start is when the fault was applied and End when it was reverted
	// (End is 0 if it never was).
	Start time.Duration `json:"start"`
	End   time.Duration `json:"end"`
	// Err says why the fault could not be applied (then it had no effect);
	// RevertErr why it could not be reverted.
	Err       string `json:"err,omitempty"`
	RevertErr string `json:"revert_err,omitempty"`
}

// Applied reports whether the fault took effect.
func (e FaultEvent) Applied() bool { return e.Err == "" }

// Sample is one reading of a sampler, such as a pool's in-use count.
type Sample struct {
	At    time.Duration `json:"at"`
	Name  string        `json:"name"`
	Value float64       `json:"value"`
}

// History is everything one run recorded, on one timeline.
type History struct {
	Seed     int64     `json:"seed"`
	Schedule Schedule  `json:"schedule"`
	Began    time.Time `json:"began"`
	// Duration is how long the run lasted, from its start to the end of
	// its last op or fault.
	Duration time.Duration `json:"duration"`
	Ops      []Op          `json:"ops"`
	Faults   []FaultEvent  `json:"faults"`
	Samples  []Sample      `json:"samples,omitempty"`
	// SamplesMissed counts the readings of samplers that failed or
	// panicked (each logged, and absent from Samples).
	SamplesMissed int `json:"samples_missed,omitempty"`
	// OpLogs are log lines by op ID, gathered at the end of the run from
	// the samplers that are [OpLogger]s (sim/logs.Capture's sampler is).
	// A report shows an op's lines when it is clicked.
	OpLogs map[uint64][]string `json:"op_logs,omitempty"`
	// Machine is how starved of CPU the machine was during a real run
	// (nil in simulation, or where the kernel does not say).
	Machine *Machine `json:"machine,omitempty"`
}

// Misses counts what the framework did not observe in a run: ops
// recorded as [Missed], by reason, and sampler readings that failed.
type Misses struct {
	NotStarted int `json:"not_started"` // ops due but never started ([ErrNotStarted])
	CutOff     int `json:"cut_off"`     // ops cut off by the run's end ([ErrCutOff])
	Stalled    int `json:"stalled"`     // ops that overlapped a stall of the test process ([ErrStalled])
	Samples    int `json:"samples"`     // sampler readings missed
}

// Ops is the number of ops missed.
func (m Misses) Ops() int { return m.NotStarted + m.CutOff + m.Stalled }

func (m Misses) String() string {
	return fmt.Sprintf("%d ops missed (%d not started, %d cut off, %d stalled), %d samples missed", m.Ops(), m.NotStarted, m.CutOff, m.Stalled, m.Samples)
}

// Missed counts the ops of h that the framework missed, and its sampler
// readings that failed.
func (h *History) Missed() Misses {
	m := Misses{Samples: h.SamplesMissed}
	for _, op := range h.Ops {
		if op.Outcome != Missed {
			continue
		}
		switch {
		case strings.HasPrefix(op.Err, ErrCutOff.Error()):
			m.CutOff++
		case strings.HasPrefix(op.Err, ErrStalled.Error()):
			m.Stalled++
		default:
			m.NotStarted++
		}
	}
	return m
}
