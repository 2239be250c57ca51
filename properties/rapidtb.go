package properties

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"unicode"

	"pgregory.net/rapid"
)

// captureTB is the rapid.TB that Explore hands to rapid.Check: it keeps
// rapid's verdict instead of failing a test, forwards logs, and turns
// FailNow into a panic that runRapid recovers. rapid only reads the test
// deadline from a *testing.T, so Explore enforces the deadline itself.
type captureTB struct {
	name string
	ctx  context.Context
	logf func(format string, args ...any)

	mu     sync.Mutex
	errs   []string
	failed bool
}

type failNow struct{}

func (c *captureTB) Helper()      {}
func (c *captureTB) Name() string { return c.name }

// Context lets rapid's T.Context derive from the caller's context.
func (c *captureTB) Context() context.Context { return c.ctx }

func (c *captureTB) Logf(format string, args ...any) {
	if c.logf != nil {
		c.logf(format, args...)
	}
}
func (c *captureTB) Log(args ...any) { c.Logf("%s", fmt.Sprintln(args...)) }
func (c *captureTB) Errorf(format string, args ...any) {
	c.mu.Lock()
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
	c.failed = true
	c.mu.Unlock()
}
func (c *captureTB) Error(args ...any) { c.Errorf("%s", fmt.Sprint(args...)) }
func (c *captureTB) Fatalf(format string, args ...any) {
	c.Errorf(format, args...)
	c.FailNow()
}
func (c *captureTB) Fatal(args ...any) { c.Fatalf("%s", fmt.Sprint(args...)) }
func (c *captureTB) FailNow() {
	c.mu.Lock()
	c.failed = true
	c.mu.Unlock()
	panic(failNow{})
}
func (c *captureTB) Fail() {
	c.mu.Lock()
	c.failed = true
	c.mu.Unlock()
}
func (c *captureTB) Failed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failed
}
func (c *captureTB) Skipf(format string, args ...any) { c.Logf(format, args...); c.SkipNow() }
func (c *captureTB) Skip(args ...any)                 { c.Log(args...); c.SkipNow() }
func (c *captureTB) SkipNow()                         { panic(failNow{}) }

func (c *captureTB) errors() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.errs...)
}

// runRapid runs rapid.Check on tb and returns what rapid reported. A panic
// that is not rapid's FailNow is passed on.
func runRapid(tb *captureTB, prop func(*rapid.T)) (errs []string) {
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

// failFileOf returns the fail file rapid named in its report, if any.
func failFileOf(errs []string) string {
	for _, e := range errs {
		if m := failFileRe.FindStringSubmatch(e); m != nil {
			return m[1]
		}
	}
	return ""
}

// failFiles lists the fail files rapid keeps for a test name.
func failFiles(name string) map[string]bool {
	safe := safeName(name)
	matches, _ := filepath.Glob(filepath.Join("testdata", "rapid", safe, safe+"-*.fail"))
	out := map[string]bool{}
	for _, m := range matches {
		out[m] = true
	}
	return out
}

// safeName is rapid's way of turning a test name into a file name.
func safeName(name string) string {
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

// removeFailFile deletes a fail file rapid wrote under testdata/rapid, if
// it was not there before, and the directories it made when they are left
// empty.
func removeFailFile(path string, before map[string]bool) {
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
