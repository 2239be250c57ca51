package search

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/shakedown/shakedown/sim"
)

// Environment variables a check reads.
const (
	// EnvIterations bounds the iterations of every check in the process.
	EnvIterations = "SHAKEDOWN_ITERATIONS"
	// EnvReplay names a schedule file that a check runs once instead of
	// exploring.
	EnvReplay = "SHAKEDOWN_REPLAY"
)

// Iterations returns the number of iterations SHAKEDOWN_ITERATIONS asks
// for, and whether it is set. A value that is not a positive number is an
// error.
func Iterations() (n int, ok bool, err error) {
	v, ok := os.LookupEnv(EnvIterations)
	if !ok {
		return 0, false, nil
	}
	n, err = strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, true, fmt.Errorf("properties: %s=%q is not a positive number of iterations", EnvIterations, v)
	}
	return n, true, nil
}

// Failure is what a check keeps of a failing (or replayed) run: its
// schedule and seed, its history, and the names of what broke and what
// held.
type Failure struct {
	Schedule sim.Schedule
	Seed     int64
	History  *sim.History
	// Broken and Held name the invariants (or rules of a spec) that broke
	// and that held.
	Broken, Held []string
}

// Save writes a failure's schedule file and HTML report into dir (default
// testdata/shakedown/<test name>), and reports a write error on t. It
// returns the schedule file's bytes, the command that replays it and the
// report's path ("(not written)" when it could not be written).
func Save(t testing.TB, dir string, f Failure) (data []byte, replay, reportPath string) {
	t.Helper()
	if dir == "" {
		dir = filepath.Join("testdata", "shakedown", SafeName(t.Name()))
	}
	schedPath := filepath.Join(dir, "schedule.json")
	reportPath = filepath.Join(dir, "report.html")
	replay = ReplayCommand(t.Name(), schedPath)
	data, err := SaveSchedule(schedPath, t.Name(), f)
	if err != nil {
		t.Errorf("shakedown: %v", err)
	}
	if err := WriteReport(reportPath, t.Name(), f, replay); err != nil {
		t.Errorf("shakedown: %v", err)
		reportPath = "(not written)"
	}
	return data, replay, reportPath
}

// WriteReport writes the HTML report of f's history to path, with the
// verdict f's names give and the command that replays it.
func WriteReport(path, test string, f Failure, replay string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	file, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	verdict := "held: " + strings.Join(f.Held, "; ")
	failed := len(f.Broken) > 0
	if failed {
		verdict = "FAIL: " + strings.Join(f.Broken, "; ")
	}
	err = sim.WriteReport(file, f.History, sim.ReportOptions{Title: test, Verdict: verdict, Failed: failed, Replay: replay})
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	return nil
}

// Saved is the schedule file a check writes for a failing schedule, and
// that a replay reads back. A bare schedule ({"steps":[...]}) is read too.
type Saved struct {
	Test     string       `json:"test,omitempty"`
	Seed     int64        `json:"seed"`
	Schedule sim.Schedule `json:"schedule"`
	// Broken lists the invariants that broke, for people; a replay
	// ignores it.
	Broken []string `json:"broken,omitempty"`
}

// SaveSchedule writes f's schedule and seed to path (creating its
// directory) and returns the JSON written.
func SaveSchedule(path, test string, f Failure) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(Saved{Test: test, Seed: f.Seed, Schedule: f.Schedule, Broken: f.Broken}); err != nil {
		return nil, fmt.Errorf("save schedule: %w", err)
	}
	data := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return data, fmt.Errorf("save schedule: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return data, fmt.Errorf("save schedule: %w", err)
	}
	return data, nil
}

// LoadSchedule reads a file [SaveSchedule] wrote, or a bare schedule. The
// seed is zero and hasSeed false for a bare schedule.
func LoadSchedule(path string) (s sim.Schedule, seed int64, hasSeed bool, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return sim.Schedule{}, 0, false, fmt.Errorf("properties: load schedule: %w", err)
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return sim.Schedule{}, 0, false, fmt.Errorf("properties: load schedule %s: %w", path, err)
	}
	if _, bare := probe["steps"]; bare {
		s, err := sim.ParseSchedule(data)
		if err != nil {
			return sim.Schedule{}, 0, false, fmt.Errorf("properties: load schedule %s: %w", path, err)
		}
		return s, 0, false, nil
	}
	var raw struct {
		Test     string          `json:"test"`
		Seed     *int64          `json:"seed"`
		Schedule json.RawMessage `json:"schedule"`
		Broken   []string        `json:"broken"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return sim.Schedule{}, 0, false, fmt.Errorf("properties: load schedule %s: %w", path, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return sim.Schedule{}, 0, false, fmt.Errorf("properties: load schedule %s: trailing data after the JSON object", path)
	}
	if raw.Schedule == nil {
		return sim.Schedule{}, 0, false, fmt.Errorf("properties: load schedule %s: field \"schedule\" is required (or give a bare {\"steps\":[...]})", path)
	}
	s, err = sim.ParseSchedule(raw.Schedule)
	if err != nil {
		return sim.Schedule{}, 0, false, fmt.Errorf("properties: load schedule %s: %w", path, err)
	}
	if raw.Seed == nil {
		return s, 0, false, nil
	}
	return s, *raw.Seed, true, nil
}

// ReplayCommand is the shell command that replays the schedule file path
// (relative to the package directory) in the test called test:
//
//	SHAKEDOWN_REPLAY=testdata/shakedown/TestCheckout/schedule.json go test -run '^TestCheckout$' ./checkout
func ReplayCommand(test, path string) string {
	elems := strings.Split(test, "/")
	for i, e := range elems {
		elems[i] = "^" + regexp.QuoteMeta(e) + "$"
	}
	return fmt.Sprintf("%s=%s go test -run %s %s", EnvReplay, shellQuote(path), shellQuote(strings.Join(elems, "/")), packageDir())
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// packageDir is the test's package directory relative to its module root
// ("./checkout"), or "." when the module root is not found.
func packageDir() string {
	wd, err := os.Getwd()
	if err != nil {
		return "."
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			rel, err := filepath.Rel(dir, wd)
			if err != nil || rel == "." {
				return "."
			}
			return "./" + filepath.ToSlash(rel)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "."
		}
		dir = parent
	}
}
