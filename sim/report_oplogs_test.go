package sim

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestReportOpLogs: the lines of ReportOptions.OpLogs are embedded by op
// ID for the click handler, escaped so that a log line cannot end the
// script.
func TestReportOpLogs(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, WriteReport(&buf, sampleHistory(), ReportOptions{OpLogs: map[uint64][]string{
		1: {"+1.2s WARN checkout: dependency failed trace_id=4bf9", `</script><script>alert(1)</script>`},
	}}))
	html := buf.String()
	has(t, html, `const LOGS = {"1":["+1.2s WARN checkout: dependency failed trace_id=4bf9","\u003c/script\u003e\u003cscript\u003ealert(1)\u003c/script\u003e"]};`)
	hasNot(t, html, `alert(1)</script>`)
	has(t, html, `sc.addEventListener("click"`)

	buf.Reset()
	require.NoError(t, WriteReport(&buf, sampleHistory(), ReportOptions{}))
	has(t, buf.String(), `const LOGS = {};`)

	// Without ReportOptions.OpLogs, the history's own lines are shown.
	h := sampleHistory()
	h.OpLogs = map[uint64][]string{2: {"+0.4s ERROR kept by the run"}}
	buf.Reset()
	require.NoError(t, WriteReport(&buf, h, ReportOptions{}))
	has(t, buf.String(), `const LOGS = {"2":["+0.4s ERROR kept by the run"]};`)
}

// opLogSampler is a sampler that is also an OpLogger.
type opLogSampler struct {
	Sampler
	lines func(h *History) map[uint64][]string
}

func (s opLogSampler) OpLogs(h *History) map[uint64][]string { return s.lines(h) }

// TestRunGathersOpLogs: at the end of a run, the samplers that are
// OpLoggers give the lines of the run's ops, kept in History.OpLogs; one
// that panics is logged and left out, and the run goes on.
func TestRunGathersOpLogs(t *testing.T) {
	plain := SamplerFunc("plain", func(context.Context) (map[string]float64, error) { return map[string]float64{"": 1}, nil })
	first := opLogSampler{plain, func(h *History) map[uint64][]string {
		require.NotEmpty(t, h.Ops, "asked once the ops are recorded")
		return map[uint64][]string{h.Ops[0].ID: {"first"}}
	}}
	second := opLogSampler{plain, func(h *History) map[uint64][]string {
		return map[uint64][]string{h.Ops[0].ID: {"second"}}
	}}
	broken := opLogSampler{plain, func(*History) map[uint64][]string { panic("boom") }}
	h, err := Run(t.Context(), Plan{
		World: World{
			Workload: Workload{Driver: OpenLoop{Rate: 100}, Kinds: []OpKind{{Name: "p", Do: func(context.Context, string) (string, error) {
				return "", nil
			}}}},
			Samplers: []Sampler{first, broken, second},
		},
		Settings: Settings{Cooldown: 50 * time.Millisecond},
	})
	require.NoError(t, err)
	require.NotEmpty(t, h.Ops)
	require.Equal(t, map[uint64][]string{h.Ops[0].ID: {"first", "second"}}, h.OpLogs)
}
