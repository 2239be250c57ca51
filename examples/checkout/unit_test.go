package checkout

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseTraceParent(t *testing.T) {
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	for _, c := range []struct {
		name, in string
		ok       bool
	}{
		{"spec example", "00-" + trace + "-00f067aa0ba902b7-01", true},
		{"not sampled", "00-" + trace + "-00f067aa0ba902b7-00", true},
		{"future version with more fields", "01-" + trace + "-00f067aa0ba902b7-01-extra", true},
		{"empty", "", false},
		{"version ff is invalid", "ff-" + trace + "-00f067aa0ba902b7-01", false},
		{"version 00 with trailing data", "00-" + trace + "-00f067aa0ba902b7-01-x", false},
		{"future version, junk after flags", "01-" + trace + "-00f067aa0ba902b7-01x", false},
		{"upper case hex", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false},
		{"zero trace id", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},
		{"zero parent id", "00-" + trace + "-0000000000000000-01", false},
		{"short trace id", "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", false},
		{"wrong separator", "00_" + trace + "-00f067aa0ba902b7-01", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := ParseTraceParent(c.in)
			require.Equal(t, c.ok, ok)
			if ok {
				require.Equal(t, trace, got)
			}
		})
	}
}

func FuzzParseTraceParent(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-")
	f.Fuzz(func(t *testing.T, s string) {
		id, ok := ParseTraceParent(s)
		if ok && (len(id) != 32 || !lowerHex(id) || allZero(id)) {
			t.Fatalf("ParseTraceParent(%q) = %q, true", s, id)
		}
	})
}

func TestBackoffIsSeededBoundedAndGrows(t *testing.T) {
	const base, most = 10 * time.Millisecond, 100 * time.Millisecond
	a, b := newJitter(42), newJitter(42)
	for attempt := 1; attempt <= 6; attempt++ {
		want := min(base<<(attempt-1), most)
		da, db := a.backoff(attempt, base, most), b.backoff(attempt, base, most)
		require.Equal(t, da, db, "same seed, same delays")
		require.GreaterOrEqual(t, da, want/2, "attempt %d", attempt)
		require.LessOrEqual(t, da, want, "attempt %d", attempt)
	}
	other := newJitter(43)
	same := true
	for attempt := 1; attempt <= 6; attempt++ {
		same = same && a.backoff(attempt, base, most) == other.backoff(attempt, base, most)
	}
	require.False(t, same, "different seeds should give different delays")
}

func TestLogsCarryTraceID(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(traceHandler{slog.NewTextHandler(&buf, nil)}).With("variant", "naive")
	log.InfoContext(withTraceID(context.Background(), "abc"), "hello")
	log.InfoContext(context.Background(), "no trace")
	require.Contains(t, buf.String(), "msg=hello variant=naive trace_id=abc")
	require.NotContains(t, buf.String(), "msg=\"no trace\" variant=naive trace_id")
}

func TestDefaultLimitsAreValid(t *testing.T) {
	require.NoError(t, DefaultLimits.validate())
	require.Equal(t, DefaultLimits, Limits{}.withDefaults())
}
