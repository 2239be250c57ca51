package sim

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDiff(t *testing.T) {
	h := sampleHistory()
	require.Empty(t, Diff(h, sampleHistory()))
	require.Empty(t, Diff(nil, nil))
	require.Equal(t, "one history is nil (true, false)", Diff(h, nil))

	out := sampleHistory()
	out.Ops[12].Output = "changed"
	require.Equal(t, "op 12 (13 of 40 ops): output \"\", then \"changed\"\n"+
		"  op 12 orders intended 1.2s start 1.201s end 1.7s: unknown (context deadline exceeded)\n"+
		"  op 12 orders intended 1.2s start 1.201s end 1.7s: unknown (context deadline exceeded)", Diff(h, out))

	end := sampleHistory()
	end.Ops[3].End += time.Millisecond
	require.Contains(t, Diff(h, end), "op 3 (4 of 40 ops): end 310ms, then 311ms")

	fewer := sampleHistory()
	fewer.Ops = fewer.Ops[:39]
	require.Equal(t, "40 ops, then 39: the first op only the first has is op 39 (stock, intended at 3.9s)", Diff(h, fewer))

	fault := sampleHistory()
	fault.Faults[1].End += 1
	require.Contains(t, Diff(h, fault), "fault 1: step 1 cache latency(200ms±20ms) applied at 1.50000005s, reverted at 2.5s, then")

	samples := sampleHistory()
	samples.Samples = nil
	samples.Began = time.Time{}
	require.Empty(t, Diff(h, samples), "samples and the wall-clock start are not compared")
}
