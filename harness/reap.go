package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/client"
)

// Reaping. Ryuk cannot run without a registry, and a test binary that is
// killed (a timeout, kill -9, a crashed CI job) runs no t.Cleanup. So
// every container and network an Env creates carries labels naming the
// run, the test binary's pid and start time, and the host; every local
// process is written down in a run record under
// os.TempDir()/shakedown-runs-<uid>/<run>.json together with the
// directory it uses; see runrecord.go for why only this user's records
// are read, and how a process is recognised before it is killed. At the start of a run (the first Docker or process dependency of
// each Env) what belongs to a DEAD owner on this host is removed: a pid
// that no longer exists, or exists with another start time. Live runs
// are never touched, so `go test ./...` with several test binaries at
// once is safe. Local processes also die with the test binary by
// themselves (Pdeathsig) in most cases; the record covers the rest.

// Reap removes the containers, networks, local processes and directories
// that runs on this host left behind when their test binary died. It
// returns how many things it removed. [New] does this by itself; Reap is
// for a TestMain or a CI step that wants to clean up first.
func Reap(ctx context.Context) (int, error) {
	log := logger{slog.New(slog.DiscardHandler)}
	n, err := reapProcesses(log)
	cli, derr := newDockerClient(ctx)
	if derr != nil {
		if os.Getenv("DOCKER_HOST") != "" {
			return n, errors.Join(err, derr) // an engine named that does not answer is an error
		}
		return n, err // no Docker: nothing to reap there
	}
	defer cli.Close()
	m, err2 := reapDocker(ctx, cli.Client, log)
	return n + m, errors.Join(err, err2)
}

// Leftovers lists what still exists of run runID (an [Env.RunID]):
// containers and networks carrying its label, and live processes in its
// run record. With runID "", it lists what any Env of this test binary
// left. After an Env's teardown it should be empty; tests and TestMain
// use it to prove nothing leaked.
func Leftovers(ctx context.Context, runID string) ([]string, error) {
	var out []string
	recs, err := readRecords(recordDir())
	for _, r := range recs {
		if (runID != "" && r.data.Run != runID) || (runID == "" && r.data.OwnerPID != os.Getpid()) {
			continue
		}
		for _, p := range r.data.Procs {
			if alive(p.PID, p.Start) {
				out = append(out, fmt.Sprintf("process %d of run %s", p.PID, r.data.Run))
			}
		}
		if _, serr := os.Stat(r.data.Root); serr == nil {
			out = append(out, fmt.Sprintf("directory %s of run %s", r.data.Root, r.data.Run))
		}
	}
	cli, derr := newDockerClient(ctx)
	if derr != nil {
		// No engine answers: it holds nothing of ours that we could list.
		// (An Env that used Docker has a client already; one that did not
		// must not warn at teardown because DOCKER_HOST is down.)
		return out, err
	}
	defer cli.Close()
	f := make(client.Filters)
	if runID != "" {
		f.Add("label", LabelRun+"="+runID)
	} else {
		f.Add("label", LabelPID+"="+strconv.Itoa(os.Getpid()))
	}
	cs, cerr := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if cerr == nil {
		for _, c := range cs.Items {
			out = append(out, fmt.Sprintf("container %s %v (%s) of run %s", shortID(c.ID), c.Names, c.State, c.Labels[LabelRun]))
		}
	}
	ns, nerr := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if nerr == nil {
		for _, n := range ns.Items {
			out = append(out, fmt.Sprintf("network %s of run %s", n.Name, n.Labels[LabelRun]))
		}
	}
	return out, errors.Join(err, cerr, nerr)
}

// ownerDead reports whether the labels name a test binary on this host
// that no longer runs.
func ownerDead(labels map[string]string) bool {
	host, _ := os.Hostname()
	if labels[LabelHost] != host {
		return false // another machine's run: we cannot tell
	}
	pid, err := strconv.Atoi(labels[LabelPID])
	if err != nil {
		return false
	}
	start, _ := strconv.ParseUint(labels[LabelPIDStart], 10, 64)
	return !alive(pid, start)
}

// reapRaceWait bounds how long a reaper waits for a network whose
// containers another reaper is still removing.
const reapRaceWait = 30 * time.Second

// reapDocker removes the containers, then the networks, of dead runs.
// Several test binaries may start at once and reap the same dead run:
// what another reaper is removing or has removed counts as done, and a
// network whose containers it is still removing is retried for a while.
// Neither is an error, so racing reapers log no warning.
func reapDocker(ctx context.Context, cli *client.Client, log logger) (int, error) {
	f := make(client.Filters).Add("label", LabelRun)
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, c := range cs.Items {
		if !ownerDead(c.Labels) {
			continue
		}
		_, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		switch {
		case err == nil:
			log.Info("reaped container of dead run", "container", shortID(c.ID), "run", c.Labels[LabelRun], "pid", c.Labels[LabelPID])
			n++
		case isNotFound(err) || removalInProgress(err):
			log.Debug("container of dead run removed by another reaper", "container", shortID(c.ID), "run", c.Labels[LabelRun], "err", err)
		default:
			errs = append(errs, fmt.Errorf("remove container %s: %w", shortID(c.ID), err))
		}
	}
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return n, errors.Join(append(errs, err)...)
	}
	for _, nw := range ns.Items {
		if !ownerDead(nw.Labels) {
			continue
		}
		removed, err := removeDeadNetwork(ctx, cli, nw.ID, log)
		if err != nil {
			errs = append(errs, fmt.Errorf("remove network %s: %w", nw.Name, err))
			continue
		}
		if removed {
			log.Info("reaped network of dead run", "network", nw.Name, "run", nw.Labels[LabelRun])
			n++
		}
	}
	return n, errors.Join(errs...)
}

// removeDeadNetwork removes a dead run's network. While containers are
// still attached (another reaper is removing them) it retries, up to
// reapRaceWait; removed is false when another reaper removed it first.
func removeDeadNetwork(ctx context.Context, cli *client.Client, id string, log logger) (removed bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, reapRaceWait)
	defer cancel()
	err = poll(ctx, func(ctx context.Context) error {
		_, err := cli.NetworkRemove(ctx, id, client.NetworkRemoveOptions{})
		switch {
		case err == nil:
			removed = true
			return nil
		case isNotFound(err):
			log.Debug("network of dead run removed by another reaper", "network", shortID(id))
			return nil
		case hasActiveEndpoints(err):
			return err // containers on their way out: try again
		}
		return permanent(err)
	})
	return removed, err
}

// removalInProgress: another client is removing the container (HTTP 409
// "removal of container ... is already in progress").
func removalInProgress(err error) bool {
	return err != nil && strings.Contains(strings.ToLower(err.Error()), "already in progress")
}

// hasActiveEndpoints: containers are still attached to the network.
func hasActiveEndpoints(err error) bool {
	return err != nil && strings.Contains(strings.ToLower(err.Error()), "has active endpoints")
}

func reapProcesses(log logger) (int, error) { return reapProcessesIn(recordDir(), log) }

// reapProcessesIn reaps what the records in dir name. Only records this
// user wrote are read (see [readRecords]), and a process is signalled only
// when it is still the one its record describes (see [recognise]).
func reapProcessesIn(dir string, log logger) (int, error) {
	recs, err := readRecords(dir)
	host, _ := os.Hostname()
	n := 0
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	for _, r := range recs {
		d := r.data
		if d.Host != host || alive(d.OwnerPID, d.OwnerStart) {
			continue
		}
		var killed []procInfo
		for _, p := range d.Procs {
			gone, ok := killRecorded(p, log, d.Run)
			killed = append(killed, gone...)
			if ok {
				n++
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := waitGone(ctx, killed); err != nil {
			errs = append(errs, err)
		}
		cancel()
		if ownedRoot(d.Root) {
			if err := os.RemoveAll(d.Root); err != nil {
				errs = append(errs, err)
			}
		}
		if err := r.remove(); err != nil {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// killRecorded kills the process p describes, and its descendants, if it
// is still that process. The process is pinned first (os.FindProcess
// holds a pidfd on Linux), so the pid checked is the pid signalled.
func killRecorded(p procData, log logger, run string) (killed []procInfo, ok bool) {
	if p.PID <= 0 || p.PID == os.Getpid() {
		return nil, false
	}
	proc, err := os.FindProcess(p.PID)
	if err != nil {
		return nil, false
	}
	defer proc.Release()
	if err := recognise(proc, p); err != nil {
		if alive(p.PID, 0) {
			log.Debug("not reaping a process its record no longer describes", "pid", p.PID, "run", run, "why", err)
		}
		return nil, false
	}
	kids := descendants(p.PID)
	if err := proc.Signal(syscall.SIGKILL); err != nil {
		return nil, false
	}
	for _, k := range kids {
		signalIfSame(k, syscall.SIGKILL)
	}
	log.Info("reaped process of dead run", "pid", p.PID, "run", run)
	return append(kids, procInfo{p.PID, p.Start}), true
}

// signalIfSame sends sig to k if its pid still names the process that
// started at k.start.
func signalIfSame(k procInfo, sig syscall.Signal) {
	proc, err := os.FindProcess(k.pid)
	if err != nil {
		return
	}
	defer proc.Release()
	if alive(k.pid, k.start) {
		_ = proc.Signal(sig)
	}
}

// ownedRoot guards RemoveAll: only directories the process runtime
// makes, and no symbolic link.
func ownedRoot(dir string) bool {
	if dir == "" || !slices.Contains(processParents(), filepath.Dir(dir)) || !strings.HasPrefix(filepath.Base(dir), "shakedown-") {
		return false
	}
	fi, err := os.Lstat(dir)
	return err == nil && fi.IsDir()
}

// procInfo names a process by pid and start time, against pid reuse.
type procInfo struct {
	pid   int
	start uint64
}

// procStat reads the parent, start time (clock ticks since boot) and
// state of pid from /proc.
func procStat(pid int) (ppid int, start uint64, state byte, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, 0, err
	}
	ppid, start, state, err = parseProcStat(b)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return ppid, start, state, nil
}

// parseProcStat parses the fields procStat needs from the text of
// /proc/<pid>/stat. The command name (field 2) is in parentheses and may
// contain anything, spaces and parentheses included: any process can
// choose it, so it is skipped by the last ')'.
func parseProcStat(b []byte) (ppid int, start uint64, state byte, err error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, 0, errors.New("no command")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), f[1] field 4 (ppid), f[19] field 22 (starttime).
	if len(f) < 20 {
		return 0, 0, 0, errors.New("short")
	}
	ppid, err1 := strconv.Atoi(f[1])
	start, err2 := strconv.ParseUint(f[19], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, 0, err
	}
	return ppid, start, f[0][0], nil
}

func procStartTime(pid int) uint64 {
	_, s, _, _ := procStat(pid)
	return s
}

// alive reports whether pid runs and, when start is not 0, is the
// process that started then. Zombies count as gone.
func alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	_, s, state, err := procStat(pid)
	if err != nil || state == 'Z' || state == 'X' {
		return false
	}
	return start == 0 || s == start
}

// descendants lists every process below pid.
func descendants(pid int) []procInfo {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]procInfo{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, start, _, err := procStat(p)
		if err != nil {
			continue
		}
		children[ppid] = append(children[ppid], procInfo{p, start})
	}
	var out []procInfo
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c.pid)
		}
	}
	return out
}

// waitGone waits until none of procs is alive.
func waitGone(ctx context.Context, procs []procInfo) error {
	return poll(ctx, func(context.Context) error {
		for _, p := range procs {
			if alive(p.pid, p.start) {
				return fmt.Errorf("process %d still running", p.pid)
			}
		}
		return nil
	})
}
