package properties

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shakedown/shakedown/sim"
)

// Iteration is one run of one schedule and what the invariants said.
type Iteration struct {
	Schedule sim.Schedule
	Seed     int64
	History  *sim.History
	// Findings are the verdicts that belong to the schedule: what held,
	// broke or could not be judged. A run in which the framework missed
	// more than a tenth of the ops (not started on time, cut off by the
	// run's end) has every finding Unjudged, with that reason.
	Findings Findings
	// Steady are the invariants that broke without faults: in a run in
	// which no fault took effect, or with every violation beginning
	// before the first fault took effect (and the history up to that
	// moment breaking them too). They are not in Findings: the schedule
	// is not to blame.
	Steady Findings
	// RunErr is what sim.Run returned besides the history: faults that
	// did not apply or revert, panics in ops. It does not fail the
	// iteration by itself; a panic in an op is also a Broken finding.
	RunErr error
	// Wall is how long the iteration took, reset included.
	Wall time.Duration
	// Reruns is how many times the schedule was run again to confirm that
	// it breaks, and Reproduced how many of those broke again.
	Reruns, Reproduced int

	early string       // why a confirming run ended early ("" if it did not)
	again []*Iteration // the reruns that confirmed it (see explorer.confirm)
}

// add adds a finding that is no invariant's (a panic, a deadlocked
// bubble): to Steady when no fault took effect in the run, to Findings
// otherwise.
func (it *Iteration) add(f Finding) {
	if _, faulted := firstFault(it.History); !faulted {
		it.Steady = append(it.Steady, f)
		return
	}
	it.Findings = append(it.Findings, f)
}

// confirmed reports whether every rerun of it broke again.
func (it *Iteration) confirmed() bool { return it.Reproduced == it.Reruns }

// runIn runs s once on a fresh World, in a bubble of its own when
// simulated (and then, with SHAKEDOWN_SELFCHECK=1, once more: selfCheck).
// A confirming run passes what it looks for (e, nil for a whole run): it
// may end early (see early), and is not self-checked, since when it ends
// is not part of the run's turns.
func runIn(t testing.TB, cfg Config, s sim.Schedule, seed int64, e *early) (*Iteration, error) {
	if !cfg.Simulate {
		sc := &scope{TB: t}
		defer sc.cleanup()
		return runWorld(sc, cfg, s, seed, e)
	}
	tt, ok := t.(*testing.T)
	if !ok {
		return nil, fmt.Errorf("properties: Config.Simulate needs a *testing.T (for testing/synctest), not %T", t)
	}
	it, err := runBubble(tt, cfg, s, seed, e)
	if err == nil && it != nil && e == nil && selfCheckOn() {
		selfCheck(tt, cfg, s, seed, it) // SHAKEDOWN_SELFCHECK=1: run it twice
	}
	return it, err
}

// runBubble runs s once in a testing/synctest bubble of its own. A bubble
// that ends with goroutines still blocked in it (a client that leaks
// them) makes synctest panic once the run is over: that is a finding of
// the run, with the stacks of the goroutines left behind.
func runBubble(t *testing.T, cfg Config, s sim.Schedule, seed int64, e *early) (it *Iteration, err error) {
	var bubble string
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		if it == nil {
			it = &Iteration{Schedule: s, Seed: seed, History: &sim.History{Seed: seed, Schedule: s}}
		}
		it.add(Finding{Invariant: "the run leaves no goroutine blocked", Verdict: Broken,
			Err: fmt.Errorf("testing/synctest: %v: goroutines the run started were still blocked when it ended (a client that leaks them); their stacks:\n%s", p, bubbleStacks(bubble))})
		err = nil
	}()
	synctest.Test(t, func(st *testing.T) {
		bubble = bubbleOf()
		it, err = runWorld(st, cfg, s, seed, e)
	})
	return it, err
}

// runWorld resets, builds a World, runs s on it and judges the
// invariants. Its error is for what makes the run impossible: a failed
// reset or an invalid setup. A panic (in Reset, World, or the run) is a
// Broken finding of the run, with its stack. With e, the run ends as soon
// as what it looks for is broken for good, and its findings are those.
func runWorld(t testing.TB, cfg Config, s sim.Schedule, seed int64, e *early) (it *Iteration, err error) {
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			it = &Iteration{Schedule: s, Seed: seed, History: &sim.History{Seed: seed, Schedule: s}, Wall: time.Since(start)}
			it.add(Finding{Invariant: "the run does not panic", Verdict: Broken, Err: fmt.Errorf("panic: %v\n%s", p, debug.Stack())})
			err = nil
		}
	}()
	ctx := t.Context()
	if cfg.Reset != nil {
		if err := cfg.Reset(ctx); err != nil {
			return nil, fmt.Errorf("properties: reset before running the schedule %s: %w", oneLineOr(s), err)
		}
	}
	// sim.Run ends with the samplers' quiet reading, the one that
	// PoolReleased and NoGoroutineLeak judge.
	plan := sim.Plan{World: cfg.World(t), Settings: cfg.Settings, Schedule: s, Seed: seed}
	if e != nil {
		e.decided = nil
		plan.Until = e.until(cfg.Invariants, plan.Workload.Timeout)
	}
	h, err := sim.Run(ctx, plan)
	if h == nil {
		return nil, fmt.Errorf("properties: run the schedule %s: %w", oneLineOr(s), err)
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("properties: run cancelled: %w", err)
	}
	if cfg.Simulate && machineInSimulation != nil {
		h.Machine = machineInSimulation(h)
	}
	var fs, st Findings
	if e != nil && e.decided != nil {
		fs = e.decided // what is left of the run is not judged
	} else {
		fs, st = judge(h, cfg.Invariants)
	}
	it = &Iteration{Schedule: s, Seed: seed, History: h, RunErr: err, Findings: fs, Steady: st}
	if e != nil && e.decided != nil {
		it.early = e.String()
	}
	if errors.Is(err, sim.ErrPanic) {
		it.add(Finding{Invariant: "the workload does not panic", Verdict: Broken, Err: err})
	}
	it.Wall = time.Since(start)
	return it, nil
}

// maxMissed is the share of a run's ops the framework may miss (not
// started on time, cut off by the run's end) before the run is not judged.
const maxMissed = 0.1

// judge evaluates invs on h and sorts the verdicts. A run in which the
// framework missed more than maxMissed of the ops is judged by nothing:
// every finding is Unjudged, with the reason. An invariant broken without
// faults goes to steady instead of fs: in a run in which no fault took
// effect, any; otherwise one whose violations all began before the first
// fault took effect and which the history up to that moment breaks too.
func judge(h *sim.History, invs []Invariant) (fs, steady Findings) {
	fs = Evaluate(h, invs)
	if n, of := missedOps(h); float64(n) > maxMissed*float64(of) {
		return unjudged(fs, fmt.Sprintf("the framework missed %d of the run's %d ops (%.0f%%, more than %.0f%%: not started on time, or cut off by the run's end), so the run says too little of the service to be judged; lighten the workload or lengthen Settings.Drain",
			n, of, 100*float64(n)/float64(of), 100*maxMissed)), nil
	}
	first, faulted := firstFault(h)
	kept := make(Findings, 0, len(fs))
	for i, f := range fs {
		if f.Verdict == Broken && (!faulted || i < len(invs) && beganBefore(invs[i], f, h, first)) {
			steady = append(steady, f)
			continue
		}
		kept = append(kept, f)
	}
	return kept, steady
}

// unjudged turns every finding into Unjudged, for the reason given.
func unjudged(fs Findings, reason string) Findings {
	out := make(Findings, len(fs))
	for i, f := range fs {
		out[i] = Finding{Invariant: f.Invariant, Verdict: Unjudged, Err: &NoEvidence{Invariant: f.Invariant, Reason: reason}}
	}
	return out
}

// missedOps counts the ops of h whose outcome the framework did not
// observe (sim.Missed), and all the ops.
func missedOps(h *sim.History) (missed, all int) {
	return h.Missed().Ops(), len(h.Ops)
}

// firstFault returns when the first fault of h took effect, and false
// when none did.
func firstFault(h *sim.History) (time.Duration, bool) {
	var first time.Duration
	found := false
	for _, e := range h.Faults {
		if e.Applied() && (!found || e.Start < first) {
			first, found = e.Start, true
		}
	}
	return first, found
}

// beganBefore reports whether the broken finding f of inv began before
// the first fault took effect: every violation is dated before it, and
// inv, judged on the history up to that moment alone, breaks too. (The
// date alone is not enough: a violation over a whole window is dated at
// the window's start.)
func beganBefore(inv Invariant, f Finding, h *sim.History, first time.Duration) bool {
	var vs Violations
	if inv == nil || !errors.As(f.Err, &vs) || len(vs) == 0 {
		return false
	}
	for _, v := range vs {
		if v.At >= first {
			return false
		}
	}
	return Evaluate(prefix(h, first), []Invariant{inv})[0].Verdict == Broken
}

// prefix is h up to at, before any fault: the ops that ended by then and
// the samples taken by then.
func prefix(h *sim.History, at time.Duration) *sim.History {
	p := &sim.History{Seed: h.Seed, Began: h.Began, Duration: at}
	for _, op := range h.Ops {
		if op.End <= at {
			p.Ops = append(p.Ops, op)
		}
	}
	for _, s := range h.Samples {
		if s.At <= at {
			p.Samples = append(p.Samples, s)
		}
	}
	return p
}

// bubbleOf returns the label the runtime gives the goroutines of the
// calling goroutine's synctest bubble in a traceback ("synctest bubble
// 12"), or "" outside one.
func bubbleOf() string {
	buf := make([]byte, 512)
	buf = buf[:runtime.Stack(buf, false)]
	line, _, _ := strings.Cut(string(buf), "\n")
	i := strings.Index(line, "synctest bubble ")
	if i < 0 {
		return ""
	}
	return strings.TrimRight(strings.FieldsFunc(line[i:], func(r rune) bool { return r == ']' || r == ',' })[0], " ")
}

// bubbleStacks returns the stacks of the goroutines of a bubble (as
// bubbleOf names it), at most 10 of them.
func bubbleStacks(bubble string) string {
	if bubble == "" {
		return "(unknown bubble)"
	}
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) || len(buf) >= 64<<20 {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	more := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		if !strings.Contains(header, bubble+"]") && !strings.Contains(header, bubble+" ") && !strings.Contains(header, bubble+",") {
			continue
		}
		if len(out) == 10 {
			more++
			continue
		}
		out = append(out, strings.TrimSpace(g))
	}
	if len(out) == 0 {
		return "(none found)"
	}
	if more > 0 {
		out = append(out, fmt.Sprintf("... and %d more", more))
	}
	return strings.Join(out, "\n\n")
}

// scheduleKey identifies a schedule for the verdict cache.
func scheduleKey(s sim.Schedule) string {
	b, err := json.Marshal(s)
	if err != nil {
		return s.String()
	}
	return string(b)
}

// runSeed derives a run's seed from the base seed and the schedule, so a
// schedule always runs with the same seed, and different schedules with
// different ones.
func runSeed(base int64, s sim.Schedule) int64 {
	h := fnv.New64a()
	var b [8]byte
	for i := range b {
		b[i] = byte(uint64(base) >> (8 * i))
	}
	h.Write(b[:])
	h.Write([]byte(scheduleKey(s)))
	return int64(h.Sum64() >> 1)
}
