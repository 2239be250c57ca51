package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/toxics"
)

// outputTB captures what an Env writes with t.Output.
type outputTB struct {
	testing.TB
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *outputTB) Output() io.Writer { return o }
func (o *outputTB) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}
func (o *outputTB) lines() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Split(strings.TrimSpace(o.buf.String()), "\n")
}

// here returns "log_test.go:N", N being the line of here's caller.
func here() string {
	_, _, line, _ := runtime.Caller(1)
	return fmt.Sprintf("log_test.go:%d", line)
}

// TestLogAttribution checks that the Env's log lines name the call that
// caused them, not the harness line that logged (nor a writer calling
// t.Log).
func TestLogAttribution(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	tb := &outputTB{TB: t}
	e := New(tb)
	s := e.Address("api", srv.Listener.Addr().String())
	ctx := ctxFor(t, time.Minute)

	revert, err := s.Apply(ctx, toxics.Latency{Delay: time.Millisecond})
	applied := here()
	require.NoError(t, err)
	require.NoError(t, revert(ctx))
	reverted := here()

	_, err = s.Apply(ctx, toxics.Blackhole{})
	require.NoError(t, err)
	require.NoError(t, e.Reset(ctx)) // reverts on a goroutine of its own
	reset := here()

	e.Logger().Warn("from the test", "k", "v")
	warned := here()
	e.Logger().Debug("not written")

	lines := tb.lines()
	require.Len(t, lines, 5, "%q", lines)
	prefix := func(site string) string { // the call is on the line above here()
		file, line, _ := strings.Cut(site, ":")
		var n int
		fmt.Sscan(line, &n)
		return fmt.Sprintf("%s:%d: ", file, n-1)
	}
	require.True(t, strings.HasPrefix(lines[0], prefix(applied)+"fault applied run="+e.RunID()+" link=api fault="), lines[0])
	require.True(t, strings.HasPrefix(lines[1], prefix(reverted)+"fault reverted "), lines[1])
	require.Contains(t, lines[2], "fault applied")
	require.True(t, strings.HasPrefix(lines[3], prefix(reset)+"fault reverted "), "on Reset's goroutine, attributed to Reset's caller: %s", lines[3])
	require.Equal(t, prefix(warned)+`WARN from the test run=`+e.RunID()+` k=v`, lines[4])
}

func TestIsStd(t *testing.T) {
	for fn, want := range map[string]bool{
		"sync.(*Once).doSlow":                    true,
		"testing.tRunner":                        true,
		"net/http.HandlerFunc.ServeHTTP":         true,
		"runtime.goexit":                         true,
		"main.main":                              false,
		"github.com/shakedown/shakedown/sim.Run": false,
		"github.com/x/y.(*T).M.func1":            false,
	} {
		require.Equal(t, want, isStd(fn), fn)
	}
}

// TestLogOwnLine checks a record nothing outside harness caused (a Link's
// goroutine accepting a connection) keeps harness's own line, and that a
// user's handler sees the same PCs.
func TestLogOwnLine(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug, AddSource: true}))
	l := NewLink(t, "echo", serveTCP(t, echo), WithLogger(log))
	ping(t, dial(t, l.Addr()), 'a')
	_, err := l.Apply(context.Background(), toxics.Blackhole{})
	applied := here()
	require.NoError(t, err)
	out := buf.String()
	require.Regexp(t, `source=\S+/harness/link\.go:\d+ msg="connection open"`, out)
	file, line, _ := strings.Cut(applied, ":")
	n, _ := strconv.Atoi(line)
	require.Regexp(t, fmt.Sprintf(`source=\S+/harness/%s:%d msg="fault applied"`, regexp.QuoteMeta(file), n-1), out)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
