package harness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// mountType returns the filesystem type /proc/mounts gives dir's mount
// point ("" when dir is not one).
func mountType(t *testing.T, dir string) string {
	b, err := os.ReadFile("/proc/mounts")
	require.NoError(t, err)
	for line := range strings.SplitSeq(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[1] == dir {
			return f[2]
		}
	}
	return ""
}

// TestProcessDir: where the process backend keeps each Env's servers.
// SHAKEDOWN_PROCESS_DIR wins; else /dev/shm when it is a tmpfs with room;
// else os.TempDir(). The reaper removes a dead run's directory in any of
// those, and nothing else.
func TestProcessDir(t *testing.T) {
	require.False(t, roomyTmpfs("/proc", 0), "procfs is no tmpfs")
	require.False(t, roomyTmpfs(filepath.Join(t.TempDir(), "missing"), 0), "a missing directory is no tmpfs")
	shm := mountType(t, memDir) == "tmpfs"
	require.Equal(t, shm, roomyTmpfs(memDir, 0), "/dev/shm per /proc/mounts")
	require.False(t, roomyTmpfs(memDir, 1<<62), "no tmpfs has 4 EiB free")

	t.Setenv(EnvProcessDir, "")
	parent, _ := processParent()
	if roomyTmpfs(memDir, memDirMin) {
		require.Equal(t, memDir, parent)
	} else {
		require.Equal(t, os.TempDir(), parent)
	}

	// A relative directory is taken from the working directory, and
	// recorded absolute.
	mine := t.TempDir()
	t.Chdir(filepath.Dir(mine))
	t.Setenv(EnvProcessDir, filepath.Base(mine))
	parent, from := processParent()
	require.Equal(t, mine, parent)
	require.Equal(t, EnvProcessDir, from)
	t.Setenv(EnvProcessDir, mine)
	for _, parent := range []string{mine, os.TempDir()} {
		d, err := os.MkdirTemp(parent, "shakedown-owned-")
		require.NoError(t, err)
		t.Cleanup(func() { _ = os.RemoveAll(d) })
		require.True(t, ownedRoot(d), d)
	}
	other := filepath.Join(t.TempDir(), "nested")
	require.NoError(t, os.Mkdir(other, 0o700))
	d := filepath.Join(other, "shakedown-x")
	require.NoError(t, os.Mkdir(d, 0o700))
	require.False(t, ownedRoot(d), "a directory outside the process backend's parents")
	notOurs := filepath.Join(mine, "postgres-x")
	require.NoError(t, os.Mkdir(notOurs, 0o700))
	require.False(t, ownedRoot(notOurs), "a directory not named as the process backend names its own")
	link := filepath.Join(mine, "shakedown-link")
	require.NoError(t, os.Symlink(other, link))
	require.False(t, ownedRoot(link), "a symbolic link")

	// An Env of the process backend makes its directory there.
	e := New(t, WithBackend(Process))
	pr, err := e.processes()
	require.NoError(t, err)
	require.Equal(t, mine, filepath.Dir(pr.root))

	// One that does not exist is an error that names it and the variable.
	missing := filepath.Join(mine, "missing")
	t.Setenv(EnvProcessDir, missing)
	_, err = New(t, WithBackend(Process)).processes()
	require.ErrorContains(t, err, missing)
	require.ErrorContains(t, err, EnvProcessDir)
}
