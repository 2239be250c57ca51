package harness

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// logger is the log of an Env or a Link: a *slog.Logger whose records
// carry, as their PC, the call that caused them rather than the harness
// line that logged (see callSite). Any handler reads it: the test log's
// (testHandler) and a user's given with [WithLogger] and AddSource alike.
type logger struct{ l *slog.Logger }

func (g logger) Debug(msg string, args ...any) {
	g.log(context.Background(), slog.LevelDebug, msg, args)
}
func (g logger) Info(msg string, args ...any) { g.log(context.Background(), slog.LevelInfo, msg, args) }
func (g logger) Warn(msg string, args ...any) { g.log(context.Background(), slog.LevelWarn, msg, args) }

// InfoContext is Info for a record that may be logged on a goroutine of
// harness's own: when nothing outside harness is on the stack, the call
// site noted in ctx by withCallSite is used.
func (g logger) InfoContext(ctx context.Context, msg string, args ...any) {
	g.log(ctx, slog.LevelInfo, msg, args)
}

func (g logger) log(ctx context.Context, level slog.Level, msg string, args []any) {
	h := g.l.Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	var pcs [32]uintptr
	n := runtime.Callers(3, pcs[:]) // skip Callers, log, Info: pcs[0] is the harness line
	pc, outside := callSite(pcs[:n])
	if noted, ok := ctx.Value(callSiteKey{}).(uintptr); ok && !outside {
		pc = noted
	}
	r := slog.NewRecord(time.Now(), level, msg, pc)
	r.Add(args...)
	_ = h.Handle(ctx, r)
}

type callSiteKey struct{}

// withCallSite notes in ctx the call site of the harness function that
// calls withCallSite (see callSite), for the records logged on the
// goroutines it starts: Reset heals every dependency on one of its own.
func withCallSite(ctx context.Context) context.Context {
	var pcs [32]uintptr
	n := runtime.Callers(2, pcs[:]) // skip Callers: pcs[0] is the harness function
	if pc, outside := callSite(pcs[:n]); outside {
		return context.WithValue(ctx, callSiteKey{}, pc)
	}
	return ctx
}

// harnessDir is the directory of this package's source files.
var harnessDir = func() string {
	_, file, _, _ := runtime.Caller(0)
	return path.Dir(file)
}()

// passedOver reports whether f is a frame a log line is not attributed
// to: harness's own code (its tests are users of it) and the standard
// library (sync.Once, testing's cleanup, a goroutine's start).
func passedOver(f runtime.Frame) bool {
	if path.Dir(f.File) == harnessDir {
		return !strings.HasSuffix(f.File, "_test.go")
	}
	return isStd(f.Function)
}

// isStd reports whether fn, a frame's function ("sync.(*Once).doSlow",
// "github.com/x/y.TestZ"), is of the standard library: the first element
// of its package path has no dot, as go/build decides, and is not main.
func isStd(fn string) bool {
	elem, _, found := strings.Cut(fn, "/")
	if !found {
		elem, _, _ = strings.Cut(fn, ".")
	}
	return !strings.Contains(elem, ".") && elem != "main"
}

// frameOf resolves pc to the first of its (inlined) frames that is not
// passed over, or to its first frame when all are.
func frameOf(pc uintptr) (f runtime.Frame, outside bool) {
	frames := runtime.CallersFrames([]uintptr{pc})
	first, more := frames.Next()
	for g, ok := first, true; ok; {
		if !passedOver(g) {
			return g, true
		}
		if !more {
			break
		}
		g, more = frames.Next()
	}
	return first, false
}

// callSite picks a log record's PC from the stack of the logging call,
// pcs[0] being the harness line that logged: the first frame outside
// harness and the standard library, which is the code that called
// harness (a test's env.Postgres or db.Crash, sim's Runner applying a
// fault); or, when nothing did (a Link's accept loop, a teardown run by
// testing, a heal on a goroutine of its own), the harness line itself,
// and outside is false.
func callSite(pcs []uintptr) (pc uintptr, outside bool) {
	if len(pcs) == 0 {
		return 0, false
	}
	for _, pc := range pcs {
		if _, outside := frameOf(pc); outside {
			return pc, true
		}
	}
	return pcs[0], false
}

// testLog is where an Env's default logger writes: the test's output,
// through t.Output, until the Env's teardown ends. Later records are
// dropped, because testing panics on output after a test has completed.
type testLog struct {
	mu    sync.Mutex
	w     io.Writer
	attrs bytes.Buffer // the attributes of the record being written
	done  bool
}

func (o *testLog) stop() {
	o.mu.Lock()
	o.done = true
	o.mu.Unlock()
}

// testHandler writes each record as one line of the test log,
// "file:line: [LEVEL ]message key=value ...", like t.Log but with the
// record's own file and line: the call that caused it (see callSite), not
// the place that wrote the line. The level is written when it is not
// Info; Debug records are not written.
type testHandler struct {
	out  *testLog
	text slog.Handler // formats the attributes, With's included, into out.attrs
}

func newTestHandler(t testing.TB) *testHandler {
	out := &testLog{w: t.Output()}
	text := slog.NewTextHandler(&out.attrs, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.MessageKey) {
				return slog.Attr{}
			}
			return a
		},
	})
	return &testHandler{out: out, text: text}
}

func (h *testHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *testHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &testHandler{out: h.out, text: h.text.WithAttrs(as)}
}

func (h *testHandler) WithGroup(name string) slog.Handler {
	return &testHandler{out: h.out, text: h.text.WithGroup(name)}
}

func (h *testHandler) Handle(ctx context.Context, r slog.Record) error {
	var line bytes.Buffer
	if r.PC != 0 {
		f, _ := frameOf(r.PC)
		line.WriteString(path.Base(f.File))
		line.WriteByte(':')
		line.WriteString(strconv.Itoa(f.Line))
		line.WriteString(": ")
	}
	if r.Level != slog.LevelInfo {
		line.WriteString(r.Level.String())
		line.WriteByte(' ')
	}
	line.WriteString(r.Message)

	h.out.mu.Lock()
	defer h.out.mu.Unlock()
	if h.out.done {
		return nil
	}
	h.out.attrs.Reset()
	if err := h.text.Handle(ctx, r); err != nil {
		return err
	}
	if attrs := bytes.TrimSpace(h.out.attrs.Bytes()); len(attrs) > 0 {
		line.WriteByte(' ')
		line.Write(attrs)
	}
	line.WriteByte('\n')
	_, err := h.out.w.Write(line.Bytes())
	return err
}
