package harness

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/sim/logs"
)

func TestLogLines(t *testing.T) {
	var mux bytes.Buffer
	// frame writes p as Docker multiplexes it: a header of the stream and
	// the size, then the bytes.
	frame := func(stream stdcopy.StdType, p string) {
		var hdr [8]byte
		hdr[0] = byte(stream)
		binary.BigEndian.PutUint32(hdr[4:], uint32(len(p)))
		mux.Write(hdr[:])
		mux.WriteString(p)
	}
	frame(stdcopy.Stdout, "2026-01-01T00:00:00.000000001Z {\"level\":\"WARN\"}\n")
	frame(stdcopy.Stderr, "2026-01-01T00:00:00.000000002Z panic: boom\r\n")
	frame(stdcopy.Stdout, "2026-01-01T00:00:00.000000003Z third\n")
	lines, err := logLines(mux.Bytes())
	require.NoError(t, err)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	require.Equal(t, []logLine{{t0.Add(1), `{"level":"WARN"}`}, {t0.Add(2), "panic: boom"}, {t0.Add(3), "third"}}, lines,
		"stdout and stderr merged in the order written")

	// A TTY container's stream is raw.
	lines, err = logLines([]byte("2026-01-01T00:00:00Z raw line\n"))
	require.NoError(t, err)
	require.Equal(t, []logLine{{t0, "raw line"}}, lines)

	_, err = logLines([]byte("no timestamp\n"))
	require.ErrorContains(t, err, "no timestamp")
}

// TestContainerReadLogs reads the lines of a container, JSON and text,
// stdout and stderr, then only the new ones, across a crash. It needs
// Docker and the Redis image (for its shell and a server to be ready).
func TestContainerReadLogs(t *testing.T) {
	e := New(t)
	image := os.Getenv(EnvRedisImage)
	if image == "" {
		image = "shakedown.local/redis:7"
	}
	script := `echo '{"level":"WARN","msg":"started","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}'; echo "plain on stderr" >&2; exec redis-server --port 6379 --protected-mode no --save ''`
	c := e.Container("talker", ContainerSpec{Image: image, Port: "6379", Entrypoint: []string{"sh", "-c", script}})
	ctx := ctxFor(t, time.Minute)

	type got struct {
		at   time.Time
		text string
	}
	read := func(since time.Time) []got {
		var out []got
		require.NoError(t, c.ReadLogs(ctx, since, func(at time.Time, text string) { out = append(out, got{at, text}) }))
		return out
	}
	all := read(time.Time{})
	texts := func(gs []got) (s []string) {
		for _, g := range gs {
			s = append(s, g.text)
		}
		return s
	}
	require.GreaterOrEqual(t, len(all), 2, "%q", texts(all))
	// Docker timestamps stdout and stderr as it reads each: the order
	// across the two is Docker's, not the writer's.
	require.Contains(t, texts(all), `{"level":"WARN","msg":"started","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}`)
	require.Contains(t, texts(all), "plain on stderr")
	require.WithinDuration(t, time.Now(), all[0].at, time.Minute)

	// As sim/logs polls it: the JSON line parsed, with its trace ID.
	capture := &logs.Capture{}
	counts, err := capture.Poll("talker", c.ReadLogs).Sample(ctx)
	require.NoError(t, err)
	require.Equal(t, float64(len(all)), counts["talker.records"])
	warn := capture.Trace("4bf92f3577b34da6a3ce929d0e0e4736")
	require.Len(t, warn, 1)
	require.Equal(t, slog.LevelWarn, warn[0].Level)
	require.Equal(t, "started", warn[0].Msg)

	last := all[len(all)-1].at
	again := read(last.Add(time.Nanosecond))
	require.Empty(t, again, "nothing new since the last line")

	// A crash and a restart: the new lines follow.
	require.NoError(t, c.Crash(ctx))
	require.NoError(t, c.Start(ctx))
	after := read(last.Add(time.Nanosecond))
	require.NotEmpty(t, after)
	require.True(t, slices.ContainsFunc(texts(after), func(s string) bool { return strings.HasPrefix(s, `{"level":"WARN","msg":"started"`) }),
		"the restarted container's first line: %q", texts(after))
}

// TestReadLogsNotAContainer: a node that is not a container says so.
func TestReadLogsNotAContainer(t *testing.T) {
	n := &Node{name: "db", rt: notAContainer{}}
	err := n.ReadLogs(context.Background(), time.Time{}, func(time.Time, string) {})
	require.ErrorContains(t, err, "harness: db: read logs: the node is process 42, not a container")
}

type notAContainer struct{ runtimeNode }

func (notAContainer) describe() string { return "process 42" }
