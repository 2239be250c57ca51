package sim

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ReportOptions dress a report. The zero value gives a complete report.
type ReportOptions struct {
	// Title heads the page. Empty means "shakedown run, seed N".
	Title string
	// Verdict is the one line under the title, such as
	// "FAIL: p99 of orders during fault 0 (db blackhole()) was 1.2s > 300ms".
	// Empty means a line that counts ops, errors and faults.
	Verdict string
	// Failed marks the verdict as a failure (red); a Verdict given with
	// Failed false is shown as a pass (green).
	Failed bool
	// Replay is the command that replays the run, shown as given.
	Replay string
	// OpLogs are lines shown when an op is clicked, by op ID: the log
	// records of each op (package sim/logs gives them, Capture.OpLines).
	// Nil means the history's own, [History.OpLogs].
	OpLogs map[uint64][]string
}

// maxReportErrs caps the distinct error texts a report embeds; ops with
// more are shown as "(other error)".
const maxReportErrs = 500

// WriteReport writes h as one self-contained HTML page: latency over time
// with every op a point (ok, failed, unknown and missed in their own
// colours; missed ops are counted per window and never as errors),
// fault windows shaded per target with labels, throughput and errors over
// time, samples, a table of summaries per window (and per kind of op), the
// faults as they ran, and the schedule as text and JSON. It needs no
// network to view: styles, script and data are inline, and points are
// drawn on a canvas, so a page with 100,000 ops stays responsive.
func WriteReport(w io.Writer, h *History, opts ReportOptions) error {
	if h == nil {
		return errors.New("sim: write report: history is nil")
	}
	d, err := newReportData(h, opts)
	if err != nil {
		return fmt.Errorf("sim: write report: %w", err)
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	if err := reportTemplate.Execute(bw, d); err != nil {
		return fmt.Errorf("sim: write report: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("sim: write report: %w", err)
	}
	return nil
}

// SaveReport writes the report of h to a new file in t.ArtifactDir(),
// logs its path and returns it. Run the tests with -artifacts to keep it
// (under _artifacts/ in the output directory); without the flag it is
// removed with the test's temporary files. Errors fail the test.
func SaveReport(t testing.TB, h *History, opts ReportOptions) string {
	t.Helper()
	dir := t.ArtifactDir()
	var path string
	for i := 1; ; i++ {
		name := "report.html"
		if i > 1 {
			name = fmt.Sprintf("report-%d.html", i)
		}
		path = filepath.Join(dir, name)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			break
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Errorf("sim: save report: %v", err)
		return ""
	}
	err = WriteReport(f, h, opts)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Errorf("sim: save report: %v", err)
		return ""
	}
	t.Logf("sim: report: %s", path)
	return path
}

// SaveReportOnFailure arranges for the report of h to be saved with
// [SaveReport] when t ends, if t failed by then.
func SaveReportOnFailure(t testing.TB, h *History, opts ReportOptions) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			SaveReport(t, h, opts)
		}
	})
}

type reportData struct {
	Title, Verdict, VerdictClass, Replay string
	Seed                                 int64
	Began, Duration                      string
	Machine                              string // how starved of CPU the machine was ("" in simulation)
	Total                                Stats
	SamplesMissed                        int
	Faults                               []faultRow
	FaultCount, FaultsFailed             int
	Windows                              []windowRow
	ScheduleText, ScheduleJSON           string
	Meta, Ops, Logs                      template.JS
}

type faultRow struct {
	Index, Step               int
	Target, Fault             string
	Planned, Start, Late, End string
	Held, Problem             string
	Colour                    string
}

type windowRow struct {
	Label, Kind, From, To string
	Fault                 int    // index in History.Faults, or -1
	During                bool   // a fault's window
	Colour                string // the fault's target colour
	Sub                   bool   // a per-kind row under its window
	S                     Stats
	P50, P90, P99, Max    string
	Rate                  string
	Heat                  float64 // 0..1, the error rate shading
}

// laneColours are the colours of targets, in order of name.
var laneColours = []string{"#1f77b4", "#9467bd", "#2ca02c", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"}

func newReportData(h *History, opts ReportOptions) (*reportData, error) {
	d := &reportData{Title: opts.Title, Verdict: opts.Verdict, Replay: opts.Replay, Seed: h.Seed,
		Duration: fmtDur(h.Duration), Total: StatsOf(h.Ops), SamplesMissed: h.SamplesMissed, ScheduleText: h.Schedule.String()}
	if d.Title == "" {
		d.Title = fmt.Sprintf("shakedown run, seed %d", h.Seed)
	}
	if !h.Began.IsZero() {
		d.Began = h.Began.Format(time.RFC3339)
	}
	if h.Machine != nil {
		d.Machine = h.Machine.String()
	}
	js, err := json.MarshalIndent(h.Schedule, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("schedule: %w", err)
	}
	d.ScheduleJSON = string(js)

	targets := faultTargets(h)
	colour := func(target string) string {
		return laneColours[slices.Index(targets, target)%len(laneColours)]
	}
	for i, f := range h.Faults {
		row := faultRow{Index: i, Step: f.Step, Target: f.Target, Fault: faultString(f), Start: fmtDur(f.Start), Colour: colour(f.Target)}
		if f.Step >= 0 && f.Step < len(h.Schedule.Steps) {
			at := h.Schedule.Steps[f.Step].At
			row.Planned, row.Late = fmtDur(at), fmtDur(f.Start-at)
		}
		switch {
		case f.Err != "":
			row.Problem = "not applied: " + f.Err
			d.FaultsFailed++
		case f.RevertErr != "":
			row.Problem = "not reverted: " + f.RevertErr
			d.FaultsFailed++
		case f.End == 0:
			row.Problem = "not reverted"
		default:
			row.End, row.Held = fmtDur(f.End), fmtDur(f.End-f.Start)
		}
		d.Faults = append(d.Faults, row)
	}
	d.FaultCount = len(h.Faults)
	d.Windows = windowRows(h)
	for i, w := range d.Windows {
		if w.During && !w.Sub {
			d.Windows[i].Colour = colour(h.Faults[w.Fault].Target)
		}
	}

	if d.Verdict == "" {
		d.VerdictClass = "info"
		d.Verdict = fmt.Sprintf("%s ops, %s errors (%.1f%%), p99 %s; %d faults", fmtCount(d.Total.Count), fmtCount(d.Total.Errors()),
			100*d.Total.ErrorRate, fmtDur(d.Total.P99), len(h.Faults))
		if len(targets) > 0 {
			d.Verdict += " on " + strings.Join(targets, ", ")
		}
		if d.FaultsFailed > 0 {
			d.Verdict += fmt.Sprintf(" (%d did not apply or revert)", d.FaultsFailed)
		}
		if d.Total.Missed > 0 {
			d.Verdict += fmt.Sprintf("; %s ops missed by the framework", fmtCount(d.Total.Missed))
		}
	} else if opts.Failed {
		d.VerdictClass = "fail"
	} else {
		d.VerdictClass = "pass"
	}

	meta, ops := chartData(h, targets)
	d.Meta, d.Ops = template.JS(meta), template.JS(ops)
	opLogs := opts.OpLogs
	if opLogs == nil {
		opLogs = h.OpLogs
	}
	logs, err := json.Marshal(nonNilMap(opLogs)) // escapes <, > and &
	if err != nil {
		return nil, fmt.Errorf("op logs: %w", err)
	}
	d.Logs = template.JS(logs)
	return d, nil
}

// faultTargets returns the targets that faults were aimed at, sorted.
func faultTargets(h *History) []string {
	var ts []string
	for _, f := range h.Faults {
		if !slices.Contains(ts, f.Target) {
			ts = append(ts, f.Target)
		}
	}
	slices.Sort(ts)
	return ts
}

// windowRows summarizes every window, and every kind within it when there
// is more than one kind, in one pass over the ops. An op counts in the
// windows that hold it ([Window.Holds]), the rule invariants judge by.
func windowRows(h *History) []windowRow {
	ws := h.Windows()
	kinds := h.Kinds()
	per := len(kinds) + 1
	buckets := make([]tally, len(ws)*per)
	kindIndex := make(map[string]int, len(kinds))
	for i, k := range kinds {
		kindIndex[k] = i + 1
	}
	for i := range h.Ops {
		op := &h.Ops[i]
		for wi, w := range ws {
			if w.Holds(*op) {
				buckets[wi*per].add(op)
				if len(kinds) > 1 {
					buckets[wi*per+kindIndex[op.Kind]].add(op)
				}
			}
		}
	}
	var rows []windowRow
	for wi, w := range ws {
		for ki := range per {
			if ki > 0 && len(kinds) < 2 {
				break
			}
			s := buckets[wi*per+ki].stats()
			row := windowRow{Label: w.Label, Kind: "all", Fault: w.Fault, During: w.Phase == During, From: fmtDur(w.From), To: fmtDur(w.To), S: s,
				P50: fmtDur(s.P50), P90: fmtDur(s.P90), P99: fmtDur(s.P99), Max: fmtDur(s.Max),
				Rate: fmt.Sprintf("%.1f%%", 100*s.ErrorRate), Heat: s.ErrorRate}
			if ki > 0 {
				row.Kind, row.Sub = kinds[ki-1], true
			}
			if s.Count == 0 {
				row.Rate, row.P50, row.P90, row.P99, row.Max = "no ops", "", "", "", ""
			}
			rows = append(rows, row)
		}
	}
	return rows
}

// chartData returns the chart's metadata as JSON, and the ops as a flat
// JSON array of six integers each: ID and intended start (µs) as deltas
// from the previous op, latency (µs), outcome, kind index, error index
// (-1 for none).
func chartData(h *History, targets []string) (meta, ops []byte) {
	type fault struct {
		Target int    `json:"target"`
		Label  string `json:"label"`
		Start  int64  `json:"start"`
		End    int64  `json:"end"` // -1: never reverted
		Failed bool   `json:"failed"`
	}
	type series struct {
		Name string    `json:"name"`
		At   []int64   `json:"at"`
		V    []float64 `json:"v"`
	}
	m := struct {
		Duration int64    `json:"duration"`
		Targets  []string `json:"targets"`
		Colours  []string `json:"colours"`
		Kinds    []string `json:"kinds"`
		Errs     []string `json:"errs"`
		Faults   []fault  `json:"faults"`
		Samples  []series `json:"samples"`
	}{Duration: h.Duration.Microseconds(), Targets: nonNil(targets), Colours: []string{}, Kinds: nonNil(h.Kinds()),
		Errs: []string{}, Faults: []fault{}, Samples: []series{}}
	for i := range targets {
		m.Colours = append(m.Colours, laneColours[i%len(laneColours)])
	}
	for _, f := range h.Faults {
		end := f.End.Microseconds()
		if f.End == 0 {
			end = -1
		}
		m.Faults = append(m.Faults, fault{Target: slices.Index(targets, f.Target), Label: faultString(f),
			Start: f.Start.Microseconds(), End: end, Failed: !f.Applied()})
	}
	seriesIndex := map[string]int{}
	for _, s := range h.Samples {
		i, ok := seriesIndex[s.Name]
		if !ok {
			i = len(m.Samples)
			seriesIndex[s.Name] = i
			m.Samples = append(m.Samples, series{Name: s.Name})
		}
		m.Samples[i].At = append(m.Samples[i].At, s.At.Microseconds())
		m.Samples[i].V = append(m.Samples[i].V, finite(s.Value))
	}
	slices.SortStableFunc(m.Samples, func(a, b series) int { return cmp.Compare(a.Name, b.Name) })

	kindIndex := make(map[string]int, len(m.Kinds))
	for i, k := range m.Kinds {
		kindIndex[k] = i
	}
	errIndex := map[string]int{}
	ops = make([]byte, 0, 20*len(h.Ops)+2)
	ops = append(ops, '[')
	var prevID uint64
	var prevAt int64
	for i, op := range h.Ops {
		if i > 0 {
			ops = append(ops, ',')
		}
		e := -1
		if op.Err != "" {
			text := op.Err
			if len(text) > 300 {
				text = text[:300] + "…"
			}
			var ok bool
			if e, ok = errIndex[text]; !ok {
				if len(m.Errs) < maxReportErrs {
					e = len(m.Errs)
					m.Errs = append(m.Errs, text)
				} else {
					e = maxReportErrs
				}
				errIndex[text] = e
			}
		}
		at := op.Intended.Microseconds()
		ops = strconv.AppendInt(ops, int64(op.ID-prevID), 10)
		ops = append(ops, ',')
		ops = strconv.AppendInt(ops, at-prevAt, 10)
		ops = append(ops, ',')
		ops = strconv.AppendInt(ops, op.Latency().Microseconds(), 10)
		ops = append(ops, ',')
		ops = strconv.AppendInt(ops, int64(min(op.Outcome, Missed)), 10)
		ops = append(ops, ',')
		ops = strconv.AppendInt(ops, int64(kindIndex[op.Kind]), 10)
		ops = append(ops, ',')
		ops = strconv.AppendInt(ops, int64(e), 10)
		prevID, prevAt = op.ID, at
	}
	ops = append(ops, ']')
	if len(m.Errs) == maxReportErrs {
		m.Errs = append(m.Errs, "(other error)")
	}
	meta, err := json.Marshal(m)
	if err != nil {
		// Only strings, integers and finite floats: cannot happen.
		panic(fmt.Sprintf("sim: report metadata: %v", err))
	}
	return meta, ops
}

// fmtCount writes n with thousands separators: 100,000.
func fmtCount(n int) string {
	s := strconv.Itoa(n)
	start := 0
	if n < 0 {
		start = 1
	}
	for i := len(s) - 3; i > start; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// nonNil returns s, or an empty slice for nil, which JSON writes as [].
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// nonNilMap returns m, or an empty map for nil, which JSON writes as {}.
func nonNilMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return map[K]V{}
	}
	return m
}

// finite maps NaN and infinities, which JSON cannot hold, to 0.
func finite(v float64) float64 {
	if v != v || v > 1e308 || v < -1e308 {
		return 0
	}
	return v
}

// fmtDur prints a duration with about three significant digits.
func fmtDur(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	neg := ""
	if d < 0 {
		neg, d = "-", -d
	}
	if d < time.Microsecond {
		return fmt.Sprintf("%s%dns", neg, d)
	}
	units := []struct {
		name string
		size float64
		prec int
	}{{"µs", 1e3, 1}, {"ms", 1e6, 2}, {"s", 1e9, 3}}
	for i, u := range units {
		s := strconv.FormatFloat(float64(d)/u.size, 'f', u.prec, 64)
		if v, _ := strconv.ParseFloat(s, 64); v >= 1000 && i < len(units)-1 {
			continue
		}
		return neg + trimZeros(s) + u.name
	}
	return neg + d.String()
}

func trimZeros(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
