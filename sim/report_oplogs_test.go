package sim

import (
	"bytes"
	"testing"

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
}
