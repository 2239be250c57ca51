package harness

import (
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// sleeper is a live process of the test's own, the kind of process a
// hostile record would name.
type sleeper struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

func startSleeper(t *testing.T) *sleeper {
	t.Helper()
	s := &sleeper{cmd: exec.Command("sleep", "300"), exited: make(chan struct{})}
	require.NoError(t, s.cmd.Start())
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() { _ = s.cmd.Process.Kill(); <-s.exited })
	return s
}

func (s *sleeper) killed() bool { return isClosed(s.exited) }

// execed waits until the kernel has set up the sleeper's arguments:
// right after Start, /proc/<pid>/cmdline can still read empty (the new
// program's memory holds no arguments yet), and a process recognised
// then is told apart from its record by that alone. A dead run's
// processes, the reaper's business, are long past it.
func (s *sleeper) execed(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		cmdline, err := procCmdline(s.cmd.Process.Pid)
		require.NoError(t, err)
		if len(cmdline) > 0 {
			return
		}
		require.True(t, time.Now().Before(deadline), "the sleeper's command line stayed empty for 10s")
		time.Sleep(time.Millisecond)
	}
}

// record is a record that truly describes s, with an owner that is dead
// (its pid now has another start time).
func (s *sleeper) record(t *testing.T) recordData {
	t.Helper()
	s.execed(t)
	host, _ := os.Hostname()
	pid := s.cmd.Process.Pid
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	require.NoError(t, err)
	// The command line as started, not as /proc shows it right after
	// Start: it can still read empty then (see [runRecord.addProc]).
	return recordData{
		Run: "hostile", Host: host, OwnerPID: os.Getpid(), OwnerStart: 1,
		Procs: []procData{{PID: pid, Start: procStartTime(pid), Exe: exe, Argv: s.cmd.Args}},
	}
}

func writeRecordFile(t *testing.T, path string, d recordData, mode os.FileMode) {
	t.Helper()
	b, err := json.Marshal(d)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, mode))
	require.NoError(t, os.Chmod(path, mode)) // past the umask
}

func privateTestDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "records")
	require.NoError(t, os.Mkdir(dir, 0o700))
	return dir
}

// otherUser is a user that is not the running one, for the cases only
// root can set up (chown to someone else).
func otherUser(t *testing.T) (uid, gid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file to another user")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

// TestReapIgnoresHostileRecords plants records that name a live process
// of the test's own and shows the reaper kills it only when the record
// is this user's, in a private directory, and still describes it.
func TestReapIgnoresHostileRecords(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	cases := []struct {
		name    string
		plant   func(t *testing.T, s *sleeper) (dir string)
		killed  bool
		wantErr string
	}{
		{
			name: "control: a true record in a private directory is reaped",
			plant: func(t *testing.T, s *sleeper) string {
				dir := privateTestDir(t)
				writeRecordFile(t, filepath.Join(dir, "r.json"), s.record(t), 0o600)
				return dir
			},
			killed: true,
		},
		{
			name: "start time differs (the pid was reused)",
			plant: func(t *testing.T, s *sleeper) string {
				dir := privateTestDir(t)
				d := s.record(t)
				d.Procs[0].Start++
				writeRecordFile(t, filepath.Join(dir, "r.json"), d, 0o600)
				return dir
			},
		},
		{
			name: "command line differs",
			plant: func(t *testing.T, s *sleeper) string {
				dir := privateTestDir(t)
				d := s.record(t)
				d.Procs[0].Argv = []string{"sleep", "301"}
				d.Procs[0].Title = []string{"sleep 301"}
				writeRecordFile(t, filepath.Join(dir, "r.json"), d, 0o600)
				return dir
			},
		},
		{
			name: "executable differs",
			plant: func(t *testing.T, s *sleeper) string {
				dir := privateTestDir(t)
				d := s.record(t)
				d.Procs[0].Exe = "/bin/true"
				writeRecordFile(t, filepath.Join(dir, "r.json"), d, 0o600)
				return dir
			},
		},
		{
			name: "a record that names only the pid (the old format)",
			plant: func(t *testing.T, s *sleeper) string {
				dir := privateTestDir(t)
				d := s.record(t)
				d.Procs[0] = procData{PID: d.Procs[0].PID, Start: d.Procs[0].Start}
				writeRecordFile(t, filepath.Join(dir, "r.json"), d, 0o600)
				return dir
			},
		},
		{
			name: "the record names the reaper itself",
			plant: func(t *testing.T, s *sleeper) string {
				dir := privateTestDir(t)
				d := s.record(t)
				self, _ := procCmdline(os.Getpid())
				exe, _ := os.Executable()
				d.Procs = append(d.Procs[:0], procData{PID: os.Getpid(), Start: procStartTime(os.Getpid()), Exe: exe, Argv: self})
				writeRecordFile(t, filepath.Join(dir, "r.json"), d, 0o600)
				return dir
			},
		},
		{
			name: "record writable by others",
			plant: func(t *testing.T, s *sleeper) string {
				dir := privateTestDir(t)
				writeRecordFile(t, filepath.Join(dir, "r.json"), s.record(t), 0o666)
				return dir
			},
		},
		{
			name: "record owned by another user",
			plant: func(t *testing.T, s *sleeper) string {
				uid, gid := otherUser(t)
				dir := privateTestDir(t)
				path := filepath.Join(dir, "r.json")
				writeRecordFile(t, path, s.record(t), 0o600)
				require.NoError(t, os.Chown(path, uid, gid))
				return dir
			},
		},
		{
			name: "record is a symbolic link to a true record elsewhere",
			plant: func(t *testing.T, s *sleeper) string {
				dir := privateTestDir(t)
				elsewhere := filepath.Join(t.TempDir(), "true.json")
				writeRecordFile(t, elsewhere, s.record(t), 0o600)
				require.NoError(t, os.Symlink(elsewhere, filepath.Join(dir, "r.json")))
				return dir
			},
		},
		{
			name: "directory writable by others",
			plant: func(t *testing.T, s *sleeper) string {
				dir := privateTestDir(t)
				writeRecordFile(t, filepath.Join(dir, "r.json"), s.record(t), 0o600)
				require.NoError(t, os.Chmod(dir, 0o777))
				return dir
			},
			wantErr: "group or others can write to it",
		},
		{
			name: "directory writable by its group",
			plant: func(t *testing.T, s *sleeper) string {
				dir := privateTestDir(t)
				writeRecordFile(t, filepath.Join(dir, "r.json"), s.record(t), 0o600)
				require.NoError(t, os.Chmod(dir, 0o770))
				return dir
			},
			wantErr: "mode 0770",
		},
		{
			name: "directory owned by another user",
			plant: func(t *testing.T, s *sleeper) string {
				uid, gid := otherUser(t)
				dir := privateTestDir(t)
				writeRecordFile(t, filepath.Join(dir, "r.json"), s.record(t), 0o600)
				require.NoError(t, os.Chown(dir, uid, gid))
				return dir
			},
			wantErr: "is owned by uid",
		},
		{
			name: "directory is a symbolic link to a private directory",
			plant: func(t *testing.T, s *sleeper) string {
				dir := privateTestDir(t)
				writeRecordFile(t, filepath.Join(dir, "r.json"), s.record(t), 0o600)
				link := filepath.Join(t.TempDir(), "link")
				require.NoError(t, os.Symlink(dir, link))
				return link
			},
			wantErr: "is a symbolic link",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := startSleeper(t)
			dir := c.plant(t, s)
			n, err := reapProcessesIn(dir, logger{log})
			if c.wantErr != "" {
				require.ErrorContains(t, err, c.wantErr)
				require.ErrorContains(t, err, "rm -rf", "the error says how to fix it")
			} else {
				require.NoError(t, err)
			}
			if c.killed {
				require.Equal(t, 1, n)
				<-s.exited // reapProcessesIn waited for it to be gone
				return
			}
			require.Zero(t, n)
			require.False(t, s.killed(), "the process a hostile record names is not killed")
			require.True(t, alive(s.cmd.Process.Pid, 0))
		})
	}
}

// TestRecordDirCreatedPrivate: the records directory is created 0700 and
// records are written 0600.
func TestRecordDirCreatedPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "records")
	root, err := openPrivateDir(dir, true)
	require.NoError(t, err)
	require.NoError(t, root.Close())
	fi, err := os.Lstat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())

	r := &runRecord{dir: dir, name: "x.json", path: filepath.Join(dir, "x.json"), data: recordData{Run: "x"}}
	require.NoError(t, r.write(false))
	fi, err = os.Lstat(r.path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	recs, err := readRecords(dir)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.NoError(t, r.remove())

	recs, err = readRecords(filepath.Join(dir, "missing"))
	require.NoError(t, err, "no directory, no records")
	require.Empty(t, recs)
}

// TestRecordRecognisesRetitledServer: a server that retitles itself
// (redis-server writes its address over its argv) is still recognised
// once its title was recorded.
func TestRecordRecognisesRetitledServer(t *testing.T) {
	s := startSleeper(t)
	d := s.record(t).Procs[0]
	p, err := os.FindProcess(d.PID)
	require.NoError(t, err)
	defer p.Release()
	require.NoError(t, recognise(p, d))
	title := d.Argv
	d.Argv = []string{"sleep", "as", "started"}
	require.Error(t, recognise(p, d))
	d.Title = title
	require.NoError(t, recognise(p, d))
}

// TestReapLocalServers: a dead run's local Postgres and Redis are
// recognised from their records and reaped. redis-server writes its
// address over its argv once it listens; the record keeps that title.
func TestReapLocalServers(t *testing.T) {
	if missing := missingBinaries([]string{"redis-server", "initdb", "postgres"}); len(missing) > 0 {
		t.Skipf("needs %v on PATH", missing)
	}
	e := New(t, WithBackend(Process))
	r := e.Redis("cache")
	p := e.Postgres("pg")
	var dones []chan struct{}
	for _, n := range []*Node{r.Node, p.Node} {
		cmd, done := n.rt.(*processNode).current()
		require.NotNil(t, cmd)
		dones = append(dones, done)
	}

	rec := e.procs.rec
	rec.mu.Lock()
	d := rec.data
	d.Procs = append([]procData(nil), rec.data.Procs...)
	rec.mu.Unlock()
	require.Len(t, d.Procs, 2)
	require.NotEmpty(t, d.Procs[0].Title, "redis-server retitled itself and the title was recorded")
	cmdline, err := procCmdline(d.Procs[0].PID)
	require.NoError(t, err)
	require.NotEqual(t, d.Procs[0].Argv, cmdline)

	// The same record, its owner dead, in a directory of the test's own.
	d.OwnerStart = 1
	d.Root = "" // the Env removes its own directory
	dir := privateTestDir(t)
	writeRecordFile(t, filepath.Join(dir, "r.json"), d, 0o600)
	h := &recordingHandler{}
	n, err := reapProcessesIn(dir, logger{slog.New(h)})
	require.NoError(t, err)
	_, _, lines := h.count(slog.LevelDebug)
	require.Equal(t, 2, n, "%v", lines)
	for _, done := range dones {
		<-done
	}
}

// TestRecordRightAfterStart: a process recorded the moment Start returns
// is recognised later. /proc/<pid>/cmdline can still read empty then
// (about one start in ten here), so a record taken from /proc instead of
// the argv asked for would name a process no reaper ever recognises.
func TestRecordRightAfterStart(t *testing.T) {
	r := &runRecord{dir: privateTestDir(t), name: "r.json"}
	for i := range 50 {
		s := startSleeper(t)
		require.NoError(t, r.addProc(s.cmd.Process.Pid, s.cmd.Args))
		s.execed(t) // recorded at once; recognised as a reaper would, later
		require.NoError(t, recognise(s.cmd.Process, r.data.Procs[i]), "start %d", i)
		require.NoError(t, s.cmd.Process.Kill())
		<-s.exited
	}
}
