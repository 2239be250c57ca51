package sim

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestIsStall(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		gap, cpu time.Duration
		want     bool
	}{
		{10 * ms, 0, false},                // on time
		{200 * ms, 0, false},               // late, but under the gap
		{400 * ms, 0, true},                // not run at all
		{400 * ms, 50 * ms, true},          // run an eighth of the time
		{400 * ms, 300 * ms, false},        // run, but busy: the process's own doing
		{400 * ms, -1, true},               // CPU time unknown: the gap decides
		{2 * time.Second, 400 * ms, true},  // a fifth of a core
		{2 * time.Second, 600 * ms, false}, // over a quarter
		{250 * ms, 0, false},               // exactly the gap is not over it
		{250*ms + 1, 0, true},
	} {
		require.Equal(t, tc.want, isStall(tc.gap, tc.cpu), "gap %v, cpu %v", tc.gap, tc.cpu)
	}
}

// TestMarkStalled: an op is missed when any part of it, from its intended
// start to its end, overlaps a stall; the error keeps what it returned.
func TestMarkStalled(t *testing.T) {
	ms := time.Millisecond
	op := func(id uint64, from, to time.Duration, o Outcome, err string) Op {
		return Op{ID: id, Kind: "k", Intended: from, Start: from, End: to, Outcome: o, Err: err}
	}
	h := &History{Ops: []Op{
		op(1, 0, 90*ms, OK, ""),                  // before
		op(2, 90*ms, 150*ms, Unknown, "timeout"), // into it
		op(3, 120*ms, 130*ms, OK, ""),            // inside
		op(4, 190*ms, 400*ms, Failed, "refused"), // out of it
		op(5, 210*ms, 220*ms, OK, ""),            // after
		op(6, 100*ms, 200*ms, Missed, ErrCutOff.Error()),
	}}
	require.Equal(t, 3, markStalled(h, []interval{{100 * ms, 200 * ms}}))
	var marked []uint64
	for _, o := range h.Ops {
		if strings.HasPrefix(o.Err, ErrStalled.Error()) {
			require.Equal(t, Missed, o.Outcome)
			marked = append(marked, o.ID)
		}
	}
	require.Equal(t, []uint64{2, 3, 4}, marked)
	require.True(t, strings.HasSuffix(h.Ops[1].Err, "not run for 100ms from 100ms; the op returned: timeout"), h.Ops[1].Err)
	require.True(t, strings.HasSuffix(h.Ops[2].Err, "the op returned: ok"), h.Ops[2].Err)
	require.Equal(t, ErrCutOff.Error(), h.Ops[5].Err, "missed already: left as it was")
	require.Equal(t, Misses{CutOff: 1, Stalled: 3}, h.Missed())
}

// TestRunMarksAStall stops the test process itself for half a second in
// the middle of a real run (SIGSTOP, then SIGCONT from a shell that
// outlives the stop): the ops that overlapped it are the framework's
// misses, not the service's failures.
func TestRunMarksAStall(t *testing.T) {
	pid := strconv.Itoa(os.Getpid())
	stopper := exec.Command("sh", "-c", "trap 'kill -CONT "+pid+"' EXIT; sleep 0.3; kill -STOP "+pid+"; sleep 0.5")
	ops := func(context.Context, string) (string, error) { return "", nil }
	require.NoError(t, stopper.Start())
	h, err := Run(t.Context(), Plan{
		World:    World{Workload: Workload{Driver: OpenLoop{Rate: 100}, Kinds: []OpKind{{Name: "k", Do: ops}}}},
		Settings: Settings{Cooldown: 1200 * time.Millisecond},
	})
	require.NoError(t, stopper.Wait())
	require.NoError(t, err)
	stalled := 0
	for _, o := range h.Ops {
		if strings.HasPrefix(o.Err, ErrStalled.Error()) {
			require.Equal(t, Missed, o.Outcome)
			stalled++
		}
	}
	// At 100 ops a second, the half second stopped held dozens of ops
	// due: each overlapped the stall.
	require.Greater(t, stalled, 10, "ops marked stalled")
	require.Equal(t, stalled, h.Missed().Stalled)
}

// The stalls are the lapses long enough, during which the process
// used little CPU (or nobody knows how much).
func TestStallsOf(t *testing.T) {
	ms := time.Millisecond
	got := stallsOf([]Lapse{
		{From: 0, To: 300 * ms, CPU: 0.1},         // a stall
		{From: 400 * ms, To: 700 * ms, CPU: 0.5},  // busy: the process's own doing
		{From: 800 * ms, To: 900 * ms, CPU: 0},    // too short
		{From: 1000 * ms, To: 1300 * ms, CPU: -1}, // CPU unknown: the gap decides
	})
	require.Equal(t, []interval{{0, 300 * ms}, {1000 * ms, 1300 * ms}}, got)
}
