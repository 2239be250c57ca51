package harness

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Run records. A run record names the local processes of one Env, so
// that a later run can kill what a killed test binary left behind. The
// reaper sends SIGKILL to what a record names, so a record must be one
// that only this user could have written:
//
//   - records live in a private directory, os.TempDir()/shakedown-runs-<uid>,
//     created with mode 0700. Before each use it is checked without
//     following symbolic links: a real directory, owned by the running
//     user, writable by no one else. Anything else is refused with an
//     error that says what is wrong and how to fix it.
//   - a record file that is not a regular file owned by the running user,
//     or that group or others may write, is ignored.
//   - before any signal, the process is pinned (a pidfd, so the pid cannot
//     be reused under us) and its start time (/proc/<pid>/stat field 22),
//     executable (/proc/<pid>/exe) and command line (/proc/<pid>/cmdline)
//     are checked against the record. A server that retitles itself
//     (redis-server does) is matched against the title recorded once it
//     was ready.

// recordDir is where this user's run records live.
func recordDir() string {
	return filepath.Join(os.TempDir(), "shakedown-runs-"+strconv.Itoa(os.Geteuid()))
}

// privateUse says what a private directory holds and why it must be
// private, for the errors of [openPrivate].
type privateUse struct {
	what string // "run records"
	why  string // completes "...there, so it must be private"
	env  string // the variable that chooses another place
}

// recordsUse is the use of [recordDir].
var recordsUse = privateUse{
	what: "run records",
	why:  "shakedown keeps the records of its local processes there and kills what they name",
	env:  "TMPDIR",
}

// openPrivateDir opens the run records directory dir (see
// [openPrivate]).
func openPrivateDir(dir string, create bool) (*os.Root, error) {
	return openPrivate(dir, create, recordsUse)
}

// openPrivate opens dir as an [os.Root] after checking that only the
// running user can write to it. With create it first makes the directory
// (mode 0700) if it is missing; without, a missing directory returns an
// error satisfying errors.Is(err, os.ErrNotExist).
func openPrivate(dir string, create bool, use privateUse) (*os.Root, error) {
	if create {
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("%s: create %s: %w", use.what, dir, err)
		}
	}
	before, err := os.Lstat(dir)
	if err != nil {
		return nil, err
	}
	if err := checkPrivate(dir, before, use); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: open %s: %w", use.what, dir, err)
	}
	// What was opened is what was checked: not swapped in between.
	after, err := root.Stat(".")
	if err != nil || !os.SameFile(before, after) {
		_ = root.Close()
		return nil, fmt.Errorf("%s: %s changed while it was being opened; refusing to use it", use.what, dir)
	}
	return root, nil
}

// checkPrivate says why fi (dir's Lstat) is not a directory only the
// running user can write, or returns nil.
func checkPrivate(dir string, fi os.FileInfo, use privateUse) error {
	fix := fmt.Sprintf("%s, so it must be private; "+
		"remove it (rm -rf %s) and let the next run create it, or set %s to a directory of your own", use.why, dir, use.env)
	euid := os.Geteuid()
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		return fmt.Errorf("%s: %s is a symbolic link; %s", use.what, dir, fix)
	case !fi.IsDir():
		return fmt.Errorf("%s: %s is not a directory; %s", use.what, dir, fix)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != euid {
		owner := -1
		if ok {
			owner = int(st.Uid)
		}
		return fmt.Errorf("%s: %s is owned by uid %d, not by this user (uid %d); %s", use.what, dir, owner, euid, fix)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("%s: %s has mode %04o: group or others can write to it; %s", use.what, dir, perm, fix)
	}
	return nil
}

// runRecord is the file that lists an Env's local processes.
type runRecord struct {
	dir  string // the records directory
	name string // the file's name in dir
	path string // dir/name
	mu   sync.Mutex
	data recordData
}

type recordData struct {
	Run        string     `json:"run"`
	Host       string     `json:"host"`
	OwnerPID   int        `json:"owner_pid"`
	OwnerStart uint64     `json:"owner_start"`
	Started    int64      `json:"started"`
	Root       string     `json:"root"`
	Procs      []procData `json:"procs"`
}

// procData is one process as it was started: enough to recognise it
// later, and nothing else.
type procData struct {
	PID   int      `json:"pid"`
	Start uint64   `json:"start"`           // /proc/<pid>/stat field 22
	Exe   string   `json:"exe"`             // /proc/<pid>/exe
	Argv  []string `json:"argv"`            // the command line it was started with
	Title []string `json:"title,omitempty"` // its /proc/<pid>/cmdline once ready, when it retitled itself
}

func newRunRecord(e *Env, root string) (*runRecord, error) {
	host, _ := os.Hostname()
	pid := os.Getpid()
	r := &runRecord{
		dir:  recordDir(),
		name: e.runID + ".json",
		path: filepath.Join(recordDir(), e.runID+".json"),
		data: recordData{Run: e.runID, Host: host, OwnerPID: pid, OwnerStart: procStartTime(pid), Started: e.started.Unix(), Root: root},
	}
	return r, r.write(true)
}

// addProc records a process that was just started from argv
// (exec.Cmd.Start returns once the new program runs). argv is what was
// asked for, not what /proc shows: right after Start the kernel may not
// have set up the new program's arguments yet, so /proc/<pid>/cmdline
// reads empty about one start in ten, and a server that retitles itself
// (redis-server) can show an empty command line while it does. Its
// executable (/proc/<pid>/exe) and start time are set by then.
func (r *runRecord) addProc(pid int, argv []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	exe, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	r.data.Procs = append(r.data.Procs, procData{PID: pid, Start: procStartTime(pid), Exe: exe, Argv: slices.Clone(argv)})
	return r.write(false)
}

// retitled records the command line pid shows now, if it changed it
// since it started (redis-server does, once it listens).
func (r *runRecord) retitled(pid int) error {
	cmdline, err := procCmdline(pid)
	if err != nil {
		return nil // gone: nothing to recognise
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.data.Procs {
		p := &r.data.Procs[i]
		if p.PID != pid || slices.Equal(p.Argv, cmdline) || slices.Equal(p.Title, cmdline) {
			continue
		}
		if p.Start != procStartTime(pid) {
			continue
		}
		p.Title = cmdline
		return r.write(false)
	}
	return nil
}

// write replaces the file atomically, so a reaper never reads half.
func (r *runRecord) write(create bool) error {
	b, err := json.Marshal(r.data)
	if err != nil {
		return err
	}
	root, err := openPrivateDir(r.dir, create)
	if err != nil {
		return err
	}
	defer root.Close()
	tmp := r.name + ".tmp"
	if err := root.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return root.Rename(tmp, r.name)
}

func (r *runRecord) remove() error {
	root, err := openPrivateDir(r.dir, false)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer root.Close()
	err = root.Remove(r.name)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// readRecords reads this user's run records from dir. A missing
// directory holds no records; a directory others could write to is an
// error, and none of its records are read.
func readRecords(dir string) ([]*runRecord, error) {
	root, err := openPrivateDir(dir, false)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer root.Close()
	d, err := root.Open(".")
	if err != nil {
		return nil, err
	}
	entries, err := d.ReadDir(-1)
	_ = d.Close()
	if err != nil {
		return nil, err
	}
	var out []*runRecord
	for _, ent := range entries {
		if !strings.HasSuffix(ent.Name(), ".json") || !ent.Type().IsRegular() {
			continue
		}
		b, err := readOwnFile(root, ent.Name())
		if err != nil {
			continue // removed meanwhile, or not ours
		}
		r := &runRecord{dir: dir, name: ent.Name(), path: filepath.Join(dir, ent.Name())}
		if json.Unmarshal(b, &r.data) != nil {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// maxRecordSize bounds what is read of a record.
const maxRecordSize = 1 << 20

// readOwnFile reads name from root if it is a regular file owned by the
// running user that no one else may write.
func readOwnFile(root *os.Root, name string) ([]byte, error) {
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("%s: not a regular file", name)
	case !ok || int(st.Uid) != os.Geteuid():
		return nil, fmt.Errorf("%s: owned by another user", name)
	case fi.Mode().Perm()&0o022 != 0:
		return nil, fmt.Errorf("%s: writable by others", name)
	}
	return io.ReadAll(io.LimitReader(f, maxRecordSize))
}

// procCmdline is /proc/<pid>/cmdline split at its NULs, with the
// padding a retitled process leaves dropped.
func procCmdline(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return nil, err
	}
	return splitCmdline(b), nil
}

func splitCmdline(b []byte) []string {
	s := strings.TrimRight(string(b), "\x00")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\x00")
}

// recognise reports whether the live process p is the one the record
// describes: same start time, executable and command line (as started,
// or as it retitled itself). It returns why not.
func recognise(p *os.Process, d procData) error {
	if d.Start == 0 || d.Exe == "" || len(d.Argv) == 0 {
		return fmt.Errorf("record does not identify the process (start time %d, executable %q, command line %q)", d.Start, d.Exe, d.Argv)
	}
	_, start, state, err := procStat(p.Pid)
	if err != nil || state == 'Z' || state == 'X' {
		return errors.New("not running")
	}
	if start != d.Start {
		return fmt.Errorf("start time %d, record says %d: another process", start, d.Start)
	}
	exe, err := os.Readlink("/proc/" + strconv.Itoa(p.Pid) + "/exe")
	if err != nil || exe != d.Exe {
		return fmt.Errorf("executable %q, record says %q", exe, d.Exe)
	}
	cmdline, err := procCmdline(p.Pid)
	if err != nil {
		return err
	}
	if !slices.Equal(cmdline, d.Argv) && (len(d.Title) == 0 || !slices.Equal(cmdline, d.Title)) {
		return fmt.Errorf("command line %q, record says %q", cmdline, d.Argv)
	}
	return nil
}
