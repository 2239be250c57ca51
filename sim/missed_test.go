package sim

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// runHanging runs one op that waits for its context, with the given
// Workload.Timeout, in a run whose drain (500ms) ends before it returns.
func runHanging(t *testing.T, timeout time.Duration) (Op, error) {
	var op Op
	var cause error
	synctest.Test(t, func(t *testing.T) {
		h, err := Run(t.Context(), Plan{
			World: World{Workload: Workload{
				Driver:  ClosedLoop{Workers: 1},
				Timeout: timeout,
				Kinds: []OpKind{{Name: "wait", Do: func(ctx context.Context, _ string) (string, error) {
					<-ctx.Done()
					cause = context.Cause(ctx)
					return "", ctx.Err()
				}}},
			}},
			Settings: Settings{Cooldown: ms(100), Drain: ms(500)},
		})
		require.NoError(t, err)
		require.Len(t, h.Ops, 1)
		op = h.Ops[0]
		require.Equal(t, ms(600), op.End, "it returned when the drain ended (cooldown + drain)")
	})
	return op, cause
}

// An op that honours cancellation and was cut off by the run's end before
// its own timeout is the framework's miss; with no timeout of its own it
// had hung for the whole drain, which is the client's doing.
func TestRunCutOff(t *testing.T) {
	t.Run("before its own timeout: missed", func(t *testing.T) {
		op, cause := runHanging(t, 5*time.Second)
		require.Equal(t, Missed, op.Outcome)
		require.True(t, strings.HasPrefix(op.Err, ErrCutOff.Error()), op.Err)
		require.Contains(t, op.Err, "context canceled", "the op's own error is kept")
		require.ErrorIs(t, cause, ErrCutOff, "the op's context says why it was cancelled")
	})
	t.Run("no timeout of its own: a failure", func(t *testing.T) {
		op, _ := runHanging(t, 0)
		require.Equal(t, Unknown, op.Outcome)
		require.True(t, strings.HasPrefix(op.Err, ErrHung.Error()), "it hung through the whole drain: %s", op.Err)
		require.True(t, strings.HasSuffix(op.Err, "the op returned: context canceled"), "the op's own error is kept: %s", op.Err)
	})
	t.Run("its own timeout at the cut: a failure", func(t *testing.T) {
		op, _ := runHanging(t, ms(600))
		require.Equal(t, Unknown, op.Outcome, "its own deadline ended it: %s", op.Err)
	})
}

func TestHistoryMissed(t *testing.T) {
	h := &History{Duration: time.Second, SamplesMissed: 2, Ops: []Op{
		{ID: 0, Kind: "a", End: ms(10)},
		{ID: 1, Kind: "a", Intended: ms(100), Start: ms(900), End: ms(900), Outcome: Missed, Err: ErrNotStarted.Error()},
		{ID: 2, Kind: "a", Start: ms(20), End: ms(990), Outcome: Missed, Err: ErrCutOff.Error() + "; the op returned: context canceled"},
		{ID: 3, Kind: "a", End: ms(30), Outcome: Unknown, Err: "EOF"},
	}}
	require.Equal(t, Misses{NotStarted: 1, CutOff: 1, Samples: 2}, h.Missed())
	require.Equal(t, 2, h.Missed().Ops())
	require.Equal(t, "2 ops missed (1 not started, 1 cut off, 0 stalled), 2 samples missed", h.Missed().String())

	s := StatsOf(h.Ops)
	require.Equal(t, Stats{Count: 2, OK: 1, Unknown: 1, Missed: 2, ErrorRate: 0.5, P50: ms(10), P90: ms(30), P99: ms(30), Max: ms(30)}, s,
		"missed ops are neither errors nor latencies")
	require.Equal(t, "2 ops (and 2 missed), 1 errors (50.0%), p50 10ms p90 30ms p99 30ms max 30ms", s.String())

	var buf bytes.Buffer
	require.NoError(t, h.WriteJSON(&buf))
	require.Contains(t, buf.String(), `"outcome":"missed"`)
	require.Contains(t, buf.String(), `"samples_missed":2`)
	got, err := ReadHistory(&buf)
	require.NoError(t, err)
	require.Equal(t, h, got)

	var page bytes.Buffer
	require.NoError(t, WriteReport(&page, h, ReportOptions{}))
	require.Contains(t, page.String(), "missed by the framework")
	require.Contains(t, page.String(), "--missed:")
}

// A sampler reading that fails is counted as missed.
func TestRunCountsSamplesMissed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bad := SamplerFunc("bad", func(context.Context) (map[string]float64, error) { return nil, errors.New("no") })
		h, err := Run(t.Context(), Plan{World: World{Samplers: []Sampler{bad}},
			Settings: Settings{Cooldown: ms(500), SampleEvery: ms(100), Settle: -1}})
		require.NoError(t, err)
		// 0, 100ms .. 500ms from the ticker, the reading when the load
		// stops, and the quiet one.
		require.Equal(t, 8, h.SamplesMissed)
		require.Equal(t, 8, h.Missed().Samples)
	})
}

// A Workload.Classify cannot call an op missed: only the runner can.
func TestClassifyCannotMiss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, err := Run(t.Context(), Plan{World: World{Workload: Workload{
			Driver:   ClosedLoop{Think: ms(100)},
			Classify: func(error) Outcome { return Missed },
			Kinds: []OpKind{{Name: "a", Do: func(context.Context, string) (string, error) {
				return "", errors.New("boom")
			}}},
		}}, Settings: Settings{Cooldown: ms(300)}})
		require.NoError(t, err)
		require.NotEmpty(t, h.Ops)
		for _, op := range h.Ops {
			require.Equal(t, Unknown, op.Outcome)
		}
	})
}
