package harness

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/require"
)

// recordingHandler keeps every log record, at every level.
type recordingHandler struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

// count returns how many records at level or above there are, and how
// many have a message in msgs.
func (h *recordingHandler) count(level slog.Level, msgs ...string) (atLevel int, named int, lines []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.recs {
		if r.Level >= level {
			atLevel++
			line := r.Level.String() + " " + r.Message
			r.Attrs(func(a slog.Attr) bool { line += " " + a.String(); return true })
			lines = append(lines, line)
		}
		for _, m := range msgs {
			if r.Message == m {
				named++
			}
		}
	}
	return atLevel, named, lines
}

// plantDeadRun creates what a killed test binary leaves: a labelled
// network and k running containers on it, owned by a pid that is dead
// (the pid is ours, the start time is not). Any reaper on the engine may
// take such a run, another test binary's too (a shared runner, or the
// loaders of scripts/falsealarms.sh); planted reports false when one
// removed part of it before it was whole, and the round does not count.
func plantDeadRun(t *testing.T, cli *client.Client, k int) (runID string, planted bool) {
	t.Helper()
	ctx := ctxFor(t, 2*time.Minute)
	host, _ := os.Hostname()
	runID = newRunID()
	labels := map[string]string{
		LabelRun:      runID,
		LabelPID:      strconv.Itoa(os.Getpid()),
		LabelPIDStart: "1",
		LabelHost:     host,
		LabelStarted:  strconv.FormatInt(time.Now().Unix(), 10),
	}
	name := "shakedown-" + runID
	_, err := cli.NetworkCreate(ctx, name, client.NetworkCreateOptions{Driver: "bridge", Labels: labels})
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = cli.NetworkRemove(context.Background(), name, client.NetworkRemoveOptions{}) })
	start := func(i int) error {
		res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
			Name:       name + "-" + strconv.Itoa(i),
			Config:     &container.Config{Image: testserverImage(), Labels: labels},
			HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(name)},
		})
		if err != nil {
			return err
		}
		t.Cleanup(func() {
			_, _ = cli.ContainerRemove(context.Background(), res.ID, client.ContainerRemoveOptions{Force: true})
		})
		_, err = cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{})
		return err
	}
	for i := 0; i < k; i++ {
		err := start(i)
		// Another reaper's doing: the network or a container gone, or a
		// container being removed.
		if cerrdefs.IsNotFound(err) || cerrdefs.IsConflict(err) {
			t.Logf("dead run %s reaped by another process while planted (%v): round not counted", runID, err)
			return runID, false
		}
		require.NoError(t, err)
	}
	return runID, true
}

// plantWholeDeadRun is plantDeadRun until a run is planted whole, at
// most 10 times.
func plantWholeDeadRun(t *testing.T, cli *client.Client, k int) string {
	t.Helper()
	for range 10 {
		if runID, planted := plantDeadRun(t, cli, k); planted {
			return runID
		}
	}
	require.FailNow(t, "other processes reaped every dead run planted, 10 times")
	return ""
}

// TestReapersRace: two Envs start at once and both reap the same dead
// run. Between them they remove everything, and neither logs a warning
// ("removal ... already in progress", "network ... has active endpoints").
func TestReapersRace(t *testing.T) {
	cli := dockerForTest(t)
	const rounds, perRun = 4, 4
	var benign int
	for round := 0; round < rounds; round++ {
		dead := plantWholeDeadRun(t, cli.Client, perRun)
		h := &recordingHandler{}
		log := slog.New(h)
		envs := []*Env{New(t, WithLogger(log)), New(t, WithLogger(log))}
		var wg sync.WaitGroup
		errs := make([]error, len(envs))
		for i, e := range envs {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = e.dockerAvailable() }()
		}
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err)
		}
		warnings, raced, lines := h.count(slog.LevelWarn,
			"container of dead run removed by another reaper", "network of dead run removed by another reaper")
		require.Zero(t, warnings, "racing reapers warn: %v", lines)
		benign += raced
		left, err := Leftovers(ctxFor(t, time.Minute), dead)
		require.NoError(t, err)
		require.Empty(t, left, "round %d: the dead run is gone", round)
	}
	t.Logf("%d rounds of %d containers: the reapers met each other %d times", rounds, perRun, benign)
}
