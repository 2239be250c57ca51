package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// defaultGrace is how long a graceful stop of a local process waits
// before it kills the process, as Docker's default stop timeout.
const defaultGrace = 10 * time.Second

// processRuntime runs an Env's local processes. Everything lives under
// one directory of its own (shakedown-<run>-* in processParent()), owned by the
// unprivileged user the servers run as, and is recorded in a run file
// (see [Reap] and runrecord.go) so that a later run can kill what a
// killed run left.
type processRuntime struct {
	env  *Env
	root string
	cred *syscall.Credential // nil when not root
	rec  *runRecord
}

// processes returns the Env's process runtime, creating it on first use.
func (e *Env) processes() (*processRuntime, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.procs != nil {
		return e.procs, nil
	}
	if n, err := reapProcesses(e.log); err != nil {
		e.log.Warn("reaping processes of dead runs failed", "err", err)
	} else if n > 0 {
		e.log.Info("reaped processes of dead runs", "count", n)
	}
	cred, err := unprivileged()
	if err != nil {
		return nil, err
	}
	parent, from := processParent()
	root, err := os.MkdirTemp(parent, "shakedown-"+e.runID+"-")
	if err != nil {
		return nil, fmt.Errorf("harness: the process backend's directory in %s (%s): %w", parent, from, err)
	}
	if cred != nil {
		if err := os.Chown(root, int(cred.Uid), int(cred.Gid)); err != nil {
			_ = os.RemoveAll(root)
			return nil, err
		}
	}
	rec, err := newRunRecord(e, root)
	if err != nil {
		_ = os.RemoveAll(root)
		return nil, err
	}
	pr := &processRuntime{env: e, root: root, cred: cred, rec: rec}
	e.procs = pr
	// Registered before any process: runs after they are all killed.
	e.closers = append(e.closers, closer{"process directory " + root, func(context.Context) error {
		return errors.Join(os.RemoveAll(root), rec.remove())
	}})
	return pr, nil
}

// EnvProcessDir, when set, is the directory under which the process
// backend keeps each Env's servers (their data directories, sockets and
// logs, in a directory of the Env's own, removed when it closes). By
// default that is /dev/shm when it is a tmpfs with at least 1 GiB free,
// and os.TempDir() otherwise: a Postgres data directory is about 1,300
// files, which a copy of the template creates in a quarter of a second
// in memory and in a second or more on a disk. A server killed by a
// crash fault keeps its files either way (a tmpfs lives until it is
// unmounted); only the machine's own crash loses them, which a test
// database does not need to survive.
const EnvProcessDir = "SHAKEDOWN_PROCESS_DIR"

// memDir is the tmpfs the process backend prefers, and memDirMin the
// room it must have left.
const (
	memDir    = "/dev/shm"
	memDirMin = 1 << 30
)

// processParent is the directory the process backend makes each Env's
// directory in (see EnvProcessDir), absolute (the run record names what
// it makes there, for a reaper in another working directory), and where
// that choice came from, for errors.
func processParent() (dir, from string) {
	if d := envProcessDir(); d != "" {
		return d, EnvProcessDir
	}
	if roomyTmpfs(memDir, memDirMin) {
		return memDir, "a tmpfs with room, the default"
	}
	return os.TempDir(), "os.TempDir(), the default where " + memDir + " is no tmpfs with room"
}

// envProcessDir is EnvProcessDir's directory made absolute, or "".
func envProcessDir() string {
	d := os.Getenv(EnvProcessDir)
	if d == "" {
		return ""
	}
	if abs, err := filepath.Abs(d); err == nil {
		return abs
	}
	return filepath.Clean(d)
}

// processParents are the directories an Env's process directory can be
// in, for the reaper: what a killed run chose may not be what this one
// would.
func processParents() []string {
	ps := []string{filepath.Clean(os.TempDir()), memDir}
	if d := envProcessDir(); d != "" {
		ps = append(ps, d)
	}
	return ps
}

// unprivileged returns the credential servers run with when the test
// runs as root (postgres and initdb refuse root): the user "postgres" if
// it exists, else "nobody".
func unprivileged() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
	}
	return nil, errors.New("running as root, and postgres refuses root, but neither user \"postgres\" nor \"nobody\" exists to run the servers as: " +
		"create one (useradd --system postgres) or run the tests as an ordinary user")
}

// dir creates a directory for one dependency, owned by the server user.
func (pr *processRuntime) dir(name string) (string, error) {
	d := filepath.Join(pr.root, name)
	if err := os.Mkdir(d, 0o700); err != nil {
		return "", err
	}
	return d, pr.chown(d)
}

func (pr *processRuntime) chown(path string) error {
	if pr.cred == nil {
		return nil
	}
	return os.Chown(path, int(pr.cred.Uid), int(pr.cred.Gid))
}

// freePort returns a port on 127.0.0.1 that was free a moment ago. The
// server binds it itself; a clash with another program in between makes
// the start fail with a clear error rather than a wrong connection.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// run runs a short command (initdb) to completion as the server user.
func (pr *processRuntime) run(ctx context.Context, logPath string, argv ...string) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = serverEnv()
	cmd.SysProcAttr = procAttr(true, pr.cred)
	out, err := cmd.CombinedOutput()
	_ = os.WriteFile(logPath, out, 0o644)
	if err != nil {
		return fmt.Errorf("%s: %w: %s", filepath.Base(argv[0]), err, tail(out, 2000))
	}
	return nil
}

func serverEnv() []string {
	env := []string{"LC_ALL=C", "LANG=C"}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "PATH" || k == "TZ" {
			env = append(env, kv)
		}
	}
	return env
}

func tail(b []byte, n int) string {
	b = bytes.TrimSpace(b)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// processNode is a local server process as a runtimeNode. Its address
// never changes: the same port and data directory across restarts.
type processNode struct {
	pr      *processRuntime
	name    string
	args    func(port int) []string // the command line for a port
	argv    []string
	dir     string
	logPath string
	addr    string
	stopSig syscall.Signal
	// closeGrace, when not 0, makes the teardown a graceful stop that
	// kills only after it.
	closeGrace time.Duration
	cred       *syscall.Credential

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and was waited for
}

func (n *processNode) describe() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil && n.cmd.Process != nil {
		return fmt.Sprintf("process %d", n.cmd.Process.Pid)
	}
	return "process (not running)"
}

func (n *processNode) start(ctx context.Context) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done != nil {
		select {
		case <-n.done:
		default:
			return n.addr, nil // still running
		}
	}
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return "", err
	}
	defer logf.Close()
	cmd := exec.Command(n.argv[0], n.argv[1:]...)
	cmd.Dir = n.dir
	cmd.Env = serverEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group (no terminal signals); killed with the test
	// binary (on Linux), and by the reaper if that did not happen.
	cmd.SysProcAttr = procAttr(true, n.cred)
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	n.cmd, n.done = cmd, done
	if err := n.pr.rec.addProc(cmd.Process.Pid, cmd.Args); err != nil {
		n.pr.env.log.Warn("recording pid for the reaper failed", "pid", cmd.Process.Pid, "err", err)
	}
	return n.addr, nil
}

// recordTitle writes down the command line the server shows once it is
// ready, when it retitled itself (redis-server does): the reaper matches
// a process against its record before it kills it.
func (n *processNode) recordTitle() {
	if cmd, _ := n.current(); cmd != nil {
		if err := n.pr.rec.retitled(cmd.Process.Pid); err != nil {
			n.pr.env.log.Warn("recording the process title for the reaper failed", "pid", cmd.Process.Pid, "err", err)
		}
	}
}

// exited returns a non-nil error when the process has exited, with the
// end of its log: a readiness check that sees it gives up at once.
func (n *processNode) exited() error {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if done == nil {
		return permanent(errors.New("process not started"))
	}
	select {
	case <-done:
		log, _ := os.ReadFile(n.logPath)
		return permanent(fmt.Errorf("%s exited (%v); log %s ends: %s", filepath.Base(n.argv[0]), cmd.ProcessState, n.logPath, tail(log, 1500)))
	default:
		return nil
	}
}

// current returns the running process, or nil when there is none. Once
// the process was waited for its pid may belong to someone else, so every
// signal is sent only after this check.
func (n *processNode) current() (*exec.Cmd, chan struct{}) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || isClosed(n.done) {
		return nil, nil
	}
	return n.cmd, n.done
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func (n *processNode) stop(ctx context.Context, grace time.Duration) error {
	cmd, done := n.current()
	if cmd == nil {
		return nil
	}
	if grace <= 0 {
		grace = defaultGrace
	}
	_ = cmd.Process.Signal(n.stopSig)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
		n.pr.env.log.Warn("graceful stop timed out, killing", "dependency", n.name, "grace", grace)
	case <-ctx.Done():
	}
	return n.kill(ctx)
}

// kill kills the server and every process it started (Postgres backends
// live in their own sessions, so a process group is not enough), then
// waits until they are gone.
func (n *processNode) kill(ctx context.Context) error {
	cmd, done := n.current()
	if cmd == nil {
		return nil
	}
	pid := cmd.Process.Pid
	// Freeze the parent so it forks no more children while we look.
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	kids := descendants(pid)
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for _, k := range kids {
		_ = syscall.Kill(k.pid, syscall.SIGKILL)
	}
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return waitGone(ctx, kids)
}

func (n *processNode) pause(ctx context.Context) error {
	cmd, _ := n.current()
	if cmd == nil {
		return errors.New("not running")
	}
	pid := cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return err
	}
	all := append(descendants(pid), procInfo{pid: pid})
	for _, k := range all[:len(all)-1] {
		_ = syscall.Kill(k.pid, syscall.SIGSTOP)
	}
	// Signals are delivered asynchronously: return once every process is
	// really stopped, so the pause is in force when Apply returns.
	return poll(ctx, func(context.Context) error {
		for _, k := range all {
			if _, _, state, err := procStat(k.pid); err == nil && state != 'T' && state != 'Z' && state != 'X' {
				return fmt.Errorf("process %d not stopped yet (state %c)", k.pid, state)
			}
		}
		return nil
	})
}

func (n *processNode) unpause(context.Context) error {
	cmd, _ := n.current()
	if cmd == nil {
		return errors.New("not running")
	}
	pid := cmd.Process.Pid
	for _, k := range descendants(pid) {
		_ = syscall.Kill(k.pid, syscall.SIGCONT)
	}
	return syscall.Kill(pid, syscall.SIGCONT)
}

// closeNode ends the process at teardown: it kills it, or, with a
// closeGrace, stops it as stop does (a killed Postgres leaves its shared
// memory segments behind in the kernel).
func (n *processNode) closeNode(ctx context.Context) error {
	if n.closeGrace > 0 {
		_ = n.unpause(ctx) // a paused server cannot shut down
		return n.stop(ctx, n.closeGrace)
	}
	return n.kill(ctx)
}

// startProcessNode starts n, waits for ready, starts the Link and
// registers the teardown. The port is chosen here; when another program
// took it between the choice and the server's bind, it tries another.
func (e *Env) startProcessNode(ctx context.Context, n *processNode, ready func(context.Context, string) error, startTimeout time.Duration) (*Node, error) {
	checked := func(ctx context.Context, addr string) error {
		if err := n.exited(); err != nil {
			return err
		}
		if err := ready(ctx, addr); err != nil {
			return err
		}
		n.recordTitle()
		return nil
	}
	e.onClose("process "+n.name, n.closeNode)
	var addr string
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		n.argv = n.args(port)
		n.addr = "127.0.0.1:" + strconv.Itoa(port)
		_ = os.Truncate(n.logPath, 0)
		if addr, err = n.start(ctx); err != nil {
			return nil, err
		}
		err = poll(ctx, func(ctx context.Context) error { return checked(ctx, addr) })
		if err == nil {
			break
		}
		log, _ := os.ReadFile(n.logPath)
		if attempt < 3 && bytes.Contains(bytes.ToLower(log), []byte("address already in use")) {
			e.log.Info("port taken meanwhile, trying another", "dependency", n.name, "port", port)
			_ = n.kill(ctx)
			continue
		}
		return nil, fmt.Errorf("not ready on %s: %w", addr, err)
	}
	link, err := e.newLink(n.name, addr)
	if err != nil {
		return nil, err
	}
	return newNode(e, n.name, link, n, addr, checked, startTimeout), nil
}

// postgresProcess starts a local Postgres on a copy of a template (see
// pgtemplate.go), built on first use, and sets the Env's password.
func (e *Env) postgresProcess(ctx context.Context, name string, cfg postgresConfig, p *Postgres) (*Node, error) {
	pr, err := e.processes()
	if err != nil {
		return nil, err
	}
	initdb, err1 := lookBinary("initdb")
	pgbin, err2 := lookBinary("postgres")
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	cache, tmpl, err := pr.postgresTemplate(ctx, pgTemplate{initdb: initdb, postgres: pgbin, user: p.user, database: p.database})
	if err != nil {
		return nil, err
	}
	defer cache.Close()
	dir, err := pr.dir(name)
	if err != nil {
		return nil, err
	}
	own, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer own.Close()
	from, err := cache.OpenRoot(tmpl)
	if err != nil {
		return nil, err
	}
	defer from.Close()
	t0 := time.Now()
	if err := copyTree(from, own, "data", pr.cred); err != nil {
		return nil, fmt.Errorf("copy postgres template %s: %w", tmpl, err)
	}
	e.log.Debug("postgres template copied", "dependency", name, "template", tmpl, "took", time.Since(t0).Round(time.Millisecond))
	data := filepath.Join(dir, "data")
	var port int
	n := &processNode{
		pr: pr, name: name, dir: dir,
		args: func(p int) []string {
			port = p
			return []string{pgbin, "-D", data, "-p", strconv.Itoa(p), "-k", dir}
		},
		logPath: filepath.Join(dir, "postgres.log"),
		stopSig: syscall.SIGINT, // fast shutdown; SIGTERM would wait for clients to leave
		// The fast shutdown removes the server's System V segment, which
		// a kill leaves in the kernel.
		closeGrace: 5 * time.Second,
		cred:       pr.cred,
	}
	// The template has no password: the first readiness check sets the
	// Env's own through the Unix socket, once the server listens. The
	// password stays in the data directory across restarts.
	ready := p.readyOn(p.database)
	var passwordSet atomic.Bool
	first := func(ctx context.Context, addr string) error {
		if !passwordSet.Load() {
			if err := p.setPassword(ctx, dir, port); err != nil {
				return err
			}
			passwordSet.Store(true)
		}
		return ready(ctx, addr)
	}
	return e.startProcessNode(ctx, n, first, cfg.startTimeout)
}

func (e *Env) redisProcess(ctx context.Context, name string, cfg redisConfig, r *Redis) (*Node, error) {
	pr, err := e.processes()
	if err != nil {
		return nil, err
	}
	bin, err := lookBinary("redis-server")
	if err != nil {
		return nil, err
	}
	dir, err := pr.dir(name)
	if err != nil {
		return nil, err
	}
	n := &processNode{
		pr: pr, name: name, dir: dir,
		args: func(port int) []string {
			return []string{bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
				"--requirepass", r.password, "--daemonize", "no", "--appendonly", "no"}
		},
		logPath: filepath.Join(dir, "redis.log"),
		stopSig: syscall.SIGTERM, // saves a snapshot (default save points) and exits
		cred:    pr.cred,
	}
	return e.startProcessNode(ctx, n, r.ready, cfg.startTimeout)
}

// permanentError stops poll at once: retrying cannot help.
type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

func permanent(err error) error { return &permanentError{err} }
