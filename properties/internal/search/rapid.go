// Package search is the exploration machinery that properties and
// properties/breaker share: the rapid driver, the test's deadline, rapid's
// fail files, the environment variables a check reads, and the schedule
// file and report a failure leaves behind.
package search

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"pgregory.net/rapid"
)

// Capture is the rapid.TB that an exploration hands to rapid.Check: it
// keeps rapid's verdict instead of failing a test, forwards logs, and
// turns FailNow into a panic that [Rapid] recovers. rapid only reads the
// test deadline from a *testing.T, so an exploration enforces the
// deadline itself (see [Deadline]).
type Capture struct {
	name string
	ctx  context.Context
	logf func(format string, args ...any)

	mu     sync.Mutex
	errs   []string
	failed bool
}

// NewCapture returns a Capture named name (the test's name, which rapid
// uses for its fail files) whose Context is ctx. logf, if not nil,
// receives rapid's logs.
func NewCapture(name string, ctx context.Context, logf func(format string, args ...any)) *Capture {
	return &Capture{name: name, ctx: ctx, logf: logf}
}

type failNow struct{}

func (c *Capture) Helper()      {}
func (c *Capture) Name() string { return c.name }

// Context lets rapid's T.Context derive from the caller's context.
func (c *Capture) Context() context.Context { return c.ctx }

func (c *Capture) Logf(format string, args ...any) {
	if c.logf != nil {
		c.logf(format, args...)
	}
}
func (c *Capture) Log(args ...any) { c.Logf("%s", fmt.Sprintln(args...)) }
func (c *Capture) Errorf(format string, args ...any) {
	c.mu.Lock()
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
	c.failed = true
	c.mu.Unlock()
}
func (c *Capture) Error(args ...any) { c.Errorf("%s", fmt.Sprint(args...)) }
func (c *Capture) Fatalf(format string, args ...any) {
	c.Errorf(format, args...)
	c.FailNow()
}
func (c *Capture) Fatal(args ...any) { c.Fatalf("%s", fmt.Sprint(args...)) }
func (c *Capture) FailNow() {
	c.mu.Lock()
	c.failed = true
	c.mu.Unlock()
	panic(failNow{})
}
func (c *Capture) Fail() {
	c.mu.Lock()
	c.failed = true
	c.mu.Unlock()
}
func (c *Capture) Failed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failed
}
func (c *Capture) Skipf(format string, args ...any) { c.Logf(format, args...); c.SkipNow() }
func (c *Capture) Skip(args ...any)                 { c.Log(args...); c.SkipNow() }
func (c *Capture) SkipNow()                         { panic(failNow{}) }

func (c *Capture) errors() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.errs...)
}

// Rapid runs rapid.Check on tb and returns what rapid reported. A panic
// that is not rapid's FailNow is passed on.
func Rapid(tb *Capture, prop func(*rapid.T)) (errs []string) {
	defer func() {
		if p := recover(); p != nil {
			if _, ok := p.(failNow); !ok {
				panic(p)
			}
		}
		errs = tb.errors()
	}()
	rapid.Check(tb, prop)
	return nil
}

var failFileRe = regexp.MustCompile(`-rapid\.failfile="([^"]+)"`)

// FailFileOf returns the fail file rapid named in its report, if any.
func FailFileOf(errs []string) string {
	for _, e := range errs {
		if m := failFileRe.FindStringSubmatch(e); m != nil {
			return m[1]
		}
	}
	return ""
}

// FailFiles lists the fail files rapid keeps for a test name.
func FailFiles(name string) map[string]bool {
	safe := SafeName(name)
	matches, _ := filepath.Glob(filepath.Join("testdata", "rapid", safe, safe+"-*.fail"))
	out := map[string]bool{}
	for _, m := range matches {
		out[m] = true
	}
	return out
}

// SafeName is rapid's way of turning a test name into a file name.
func SafeName(name string) string {
	var b strings.Builder
	for _, r := range name {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteRune('_')
		}
	}
	return b.String()
}

// RemoveFailFile deletes a fail file rapid wrote under testdata/rapid, if
// it was not there before, and the directories it made when they are left
// empty.
func RemoveFailFile(path string, before map[string]bool) {
	if path == "" || before[path] || !strings.Contains(filepath.ToSlash(path), "testdata/rapid/") {
		return
	}
	_ = os.Remove(path)
	dir := filepath.Dir(path)
	for range 3 { // testdata/rapid/<Test>, testdata/rapid, testdata
		if os.Remove(dir) != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}

// Deadline returns t's deadline, or the zero time when it has none. In
// a testing/synctest bubble, where time is virtual and T.Deadline panics,
// there is none.
func Deadline(t testing.TB) (d time.Time) {
	dt, ok := t.(interface{ Deadline() (time.Time, bool) })
	if !ok {
		return time.Time{}
	}
	defer func() {
		if recover() != nil {
			d = time.Time{}
		}
	}()
	d, _ = dt.Deadline()
	return d
}

// DropExpected removes rapid's complaint about skipped tests, which is how
// an exploration stops at its iteration bound.
func DropExpected(errs []string) []string {
	var out []string
	for _, e := range errs {
		if !strings.HasPrefix(e, "[rapid] only generated") {
			out = append(out, e)
		}
	}
	return out
}

// RapidChecks returns the number of test cases rapid tries, from its
// -rapid.checks flag (a fifth of it with -short), and whether the flag
// is registered.
func RapidChecks() (int, bool) {
	f := flag.Lookup("rapid.checks")
	if f == nil {
		return 0, false
	}
	n, err := strconv.Atoi(f.Value.String())
	if err != nil {
		return 0, false
	}
	if testing.Short() {
		n /= 5
	}
	return n, true
}
