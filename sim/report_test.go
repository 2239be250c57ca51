package sim

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shakedown/shakedown/toxics"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// outline reduces a report to its structure: element ids, headings and
// table cells, one a line. The golden file holds that, not the markup or
// the script, so styling changes do not break it.
func outline(html string) string {
	re := regexp.MustCompile(`(?s)<h[12][^>]*>(.*?)</h[12]>|\bid="([^"]+)"|<t[dh][^>]*>(.*?)</t[dh]>|<tr`)
	tags := regexp.MustCompile(`<[^>]+>`)
	var b strings.Builder
	for _, m := range re.FindAllStringSubmatch(html, -1) {
		switch {
		case m[1] != "":
			fmt.Fprintf(&b, "\nheading: %s\n", tags.ReplaceAllString(m[1], ""))
		case m[2] != "":
			fmt.Fprintf(&b, "id: %s\n", m[2])
		case m[0] == "<tr":
			b.WriteString("\n")
		default:
			fmt.Fprintf(&b, "%s | ", tags.ReplaceAllString(m[3], ""))
		}
	}
	return b.String()
}

func TestReportGolden(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, WriteReport(&buf, sampleHistory(), ReportOptions{
		Verdict: "FAIL: error rate of orders during fault 0 (db blackhole()) was 100% > 50%",
		Failed:  true,
		Replay:  "go test ./checkout -run TestCheckout -rapid.seed=99",
	}))
	html := buf.String()
	got := outline(html)
	golden := filepath.Join("testdata", "report.outline.golden")
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run go test ./sim -run TestReportGolden -update to create it")
	require.Equal(t, string(want), got)

	// Self-contained: nothing is fetched from anywhere.
	if m := regexp.MustCompile(`(?i)(src|href)\s*=|@import|url\(|https?://`).FindString(html); m != "" {
		t.Errorf("the report refers to something outside itself: %q", m)
	}
	// The data is embedded and the schedule is shown both ways.
	has(t, html, `const OPS = [0,0,10000,0,0,-1,1,100000,10000,0,1,-1,`)
	has(t, html, `0: &#43;1s for 1s db blackhole()`)
	has(t, html, `&#34;kind&#34;: &#34;blackhole&#34;`)
}

func TestReportEscapes(t *testing.T) {
	h := &History{Duration: time.Second, Ops: []Op{{Kind: "</script><b>", Err: "<script>alert(1)</script>", Outcome: Unknown, End: 5}},
		Faults: []FaultEvent{{Target: "<i>x</i>", Fault: toxics.Spec{Fault: toxics.Down{}}, Start: 1, End: 2}}}
	var buf bytes.Buffer
	require.NoError(t, WriteReport(&buf, h, ReportOptions{Title: "<t>", Verdict: "a & b", Replay: "</pre>"}))
	html := buf.String()
	require.Equal(t, 1, strings.Count(html, "<script>"), "only the report's own script")
	hasNot(t, html, "</script><b>")
	hasNot(t, html, "<t>")
	hasNot(t, html, "<i>x</i>")
	has(t, html, `\u003c/script\u003e\u003cb\u003e`)
	require.ErrorContains(t, WriteReport(&buf, nil, ReportOptions{}), "history is nil")
}

func TestSaveReport(t *testing.T) {
	h := sampleHistory()
	p1 := SaveReport(t, h, ReportOptions{})
	p2 := SaveReport(t, h, ReportOptions{})
	require.Equal(t, "report.html", filepath.Base(p1))
	require.Equal(t, "report-2.html", filepath.Base(p2))
	data, err := os.ReadFile(p1)
	require.NoError(t, err)
	has(t, string(data), "40 ops, 6 errors (15.0%)")
}

// bigHistory is a run of n ops at 10,000 ops/s with two kinds and a fault
// on each of two targets, drawn from seed.
func bigHistory(n int, seed uint64) *History {
	r := rand.New(rand.NewPCG(seed, 1))
	dur := time.Duration(n) * 100 * time.Microsecond
	h := &History{Seed: int64(seed), Duration: dur, Began: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	h.Schedule = Schedule{Steps: []Step{
		{At: dur / 5, For: dur / 5, Target: "postgres", Fault: toxics.Blackhole{}},
		{At: dur / 2, For: dur / 10, Target: "redis", Fault: toxics.Latency{Delay: 50 * time.Millisecond}},
		{At: 7 * dur / 10, For: dur / 10, Target: "postgres", Fault: toxics.Crash{}},
	}}
	for i, st := range h.Schedule.Steps {
		h.Faults = append(h.Faults, FaultEvent{Step: i, Target: st.Target, Fault: toxics.Spec{Fault: st.Fault}, Start: st.At + 150*time.Microsecond, End: st.End() + 300*time.Microsecond})
	}
	for i := range n {
		at := time.Duration(i) * 100 * time.Microsecond
		lat := time.Duration(300+r.ExpFloat64()*500) * time.Microsecond
		op := Op{ID: uint64(i), Kind: "orders", Intended: at, Start: at}
		if r.IntN(3) == 0 {
			op.Kind = "stock"
		}
		switch {
		case op.Kind == "orders" && at >= dur/5 && at < 2*dur/5:
			lat = time.Duration(r.IntN(1000)+1000) * time.Millisecond
			op.Outcome, op.Err = Unknown, "context deadline exceeded"
		case op.Kind == "orders" && at >= 7*dur/10 && at < 8*dur/10:
			if r.IntN(4) > 0 {
				lat, op.Outcome, op.Err = time.Duration(r.IntN(200)+50)*time.Microsecond, Failed, "dial tcp 127.0.0.1:5432: connect: connection refused"
			}
		case op.Kind == "stock" && at >= dur/2 && at < 6*dur/10:
			lat += 50 * time.Millisecond
		}
		op.End = at + lat
		h.Ops = append(h.Ops, op)
	}
	for at := time.Duration(0); at <= dur; at += 100 * time.Millisecond {
		h.Samples = append(h.Samples, Sample{At: at, Name: "goroutines", Value: float64(20 + r.IntN(5))})
		inUse := 2.0
		if at >= dur/5 && at < 2*dur/5 {
			inUse = 10
		}
		h.Samples = append(h.Samples, Sample{At: at, Name: "pg.in_use", Value: inUse})
	}
	return h
}

// TestReportLarge writes the report of a 100,000-op run. With
// SHAKEDOWN_REPORT_DIR set it also leaves the file there, to look at in a
// browser.
func TestReportLarge(t *testing.T) {
	h := bigHistory(100_000, 1)
	var buf bytes.Buffer
	require.NoError(t, WriteReport(&buf, h, ReportOptions{Replay: "go test ./sim -run TestReportLarge"}))
	require.Less(t, buf.Len(), 8<<20, "a 100k-op report stays under 8 MiB")
	if dir := os.Getenv("SHAKEDOWN_REPORT_DIR"); dir != "" {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "large.html"), buf.Bytes(), 0o644))
		var small bytes.Buffer
		require.NoError(t, WriteReport(&small, sampleHistory(), ReportOptions{Verdict: "FAIL: error rate of orders during fault 0 (db blackhole()) was 100% > 50%", Failed: true, Replay: "go test ./checkout -run TestCheckout -rapid.seed=99"}))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "small.html"), small.Bytes(), 0o644))
		var empty bytes.Buffer
		require.NoError(t, WriteReport(&empty, &History{}, ReportOptions{}))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "empty.html"), empty.Bytes(), 0o644))
	}
}

// BenchmarkWriteReport measures the size and the write time of the report
// of a 100,000-op run.
func BenchmarkWriteReport(b *testing.B) {
	h := bigHistory(100_000, 1)
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		if err := WriteReport(&buf, h, ReportOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(buf.Len()), "bytes/report")
	b.ReportMetric(float64(buf.Len())/float64(len(h.Ops)), "bytes/op-in-report")
}

var _ = context.Background

func TestFmtDur(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0", 999: "999ns", 1500: "1.5µs", 999_999: "1ms", 999_999_950: "1s", 1_234_567: "1.23ms",
		-1500 * time.Microsecond: "-1.5ms", 90 * time.Minute: "5400s",
	} {
		require.Equal(t, want, fmtDur(d), "%d", int64(d))
	}
}

// has and hasNot check a report without printing all of it on failure.
func has(t *testing.T, html, sub string) {
	t.Helper()
	if !strings.Contains(html, sub) {
		t.Errorf("the report lacks %q", sub)
	}
}

func hasNot(t *testing.T, html, sub string) {
	t.Helper()
	if i := strings.Index(html, sub); i >= 0 {
		t.Errorf("the report contains %q: ...%s...", sub, html[max(0, i-80):min(len(html), i+80)])
	}
}

// recordingTB is a testing.TB whose failure and cleanups the test controls.
type recordingTB struct {
	testing.TB
	dir      string
	failed   bool
	cleanups []func()
	logs     []string
}

func (r *recordingTB) Helper()                    {}
func (r *recordingTB) ArtifactDir() string        { return r.dir }
func (r *recordingTB) Failed() bool               { return r.failed }
func (r *recordingTB) Cleanup(f func())           { r.cleanups = append(r.cleanups, f) }
func (r *recordingTB) Logf(f string, args ...any) { r.logs = append(r.logs, fmt.Sprintf(f, args...)) }
func (r *recordingTB) Errorf(f string, args ...any) {
	r.failed = true
	r.logs = append(r.logs, fmt.Sprintf(f, args...))
}

func TestSaveReportOnFailure(t *testing.T) {
	for _, failed := range []bool{false, true} {
		tb := &recordingTB{TB: t, dir: t.TempDir(), failed: failed}
		SaveReportOnFailure(tb, sampleHistory(), ReportOptions{})
		for _, f := range tb.cleanups {
			f()
		}
		_, err := os.Stat(filepath.Join(tb.dir, "report.html"))
		if failed {
			require.NoError(t, err)
			require.Equal(t, []string{"sim: report: " + filepath.Join(tb.dir, "report.html")}, tb.logs)
		} else {
			require.ErrorIs(t, err, os.ErrNotExist)
		}
	}
}

func TestFmtCount(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 100000: "100,000", 1234567: "1,234,567", -1234: "-1,234", -123: "-123"} {
		require.Equal(t, want, fmtCount(n))
	}
}
