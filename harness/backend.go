package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Backend says how [Env.Postgres] and [Env.Redis] run their servers.
// [Env.Container] always needs Docker.
type Backend int

const (
	// Auto uses Docker when its engine answers, and local processes when
	// it does not but the server binaries are on PATH.
	Auto Backend = iota
	// Docker runs every dependency in a container.
	Docker
	// Process runs Postgres and Redis as local processes on 127.0.0.1.
	Process
)

func (b Backend) String() string {
	switch b {
	case Auto:
		return "auto"
	case Docker:
		return "docker"
	case Process:
		return "process"
	}
	return fmt.Sprintf("Backend(%d)", int(b))
}

// ParseBackend parses "auto", "docker" or "process" (the values of
// SHAKEDOWN_BACKEND).
func ParseBackend(s string) (Backend, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "auto", "":
		return Auto, nil
	case "docker":
		return Docker, nil
	case "process":
		return Process, nil
	}
	return 0, fmt.Errorf("backend %q is not one of auto, docker, process", s)
}

// startServer is what [Env.Postgres] and [Env.Redis] share once their own
// options are checked: it resolves cfg's defaults (the image, the start
// timeout), claims name, picks the backend and starts the server with
// start, stopping the test with t.Fatalf when that fails. It returns nil
// when the test was skipped for want of a backend.
func (e *Env) startServer(kind, name string, cfg *depConfig, defaultImage string, bins []string, start func(ctx context.Context, docker bool) (*Node, error)) *Node {
	e.t.Helper()
	if cfg.image == "" {
		cfg.image = defaultImage
	}
	if cfg.startTimeout < 0 {
		e.fatalf("harness: %s(%q): start timeout %v is negative", kind, name, cfg.startTimeout)
	}
	if cfg.startTimeout == 0 {
		cfg.startTimeout = defaultStartTimeout
	}
	if err := e.claim(name); err != nil {
		e.fatalf("%v", err)
	}
	docker, ok := e.useDocker(kind+" "+name, bins...)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.startTimeout)
	defer cancel()
	t0 := time.Now()
	n, err := start(ctx, docker)
	if err != nil {
		e.release(name)
		e.fatalf("harness: %s(%q): %v", kind, name, err)
		return nil
	}
	e.log.Info(strings.ToLower(kind)+" ready", "dependency", name, "addr", n.Addr(), "direct", n.DirectAddr(), "node", n.rt.describe(), "took", time.Since(t0).Round(time.Millisecond))
	return n
}

// dockerProbeTimeout bounds the check that a Docker engine answers.
const dockerProbeTimeout = 10 * time.Second

// backendProbe remembers, per Env, whether Docker answered.
type backendProbe struct {
	once sync.Once
	err  error
}

// dockerAvailable reports whether the Docker engine answers, asking once
// per Env.
func (e *Env) dockerAvailable() error {
	e.dockerOK.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), dockerProbeTimeout)
		defer cancel()
		rt, err := newDockerRuntime(ctx, e)
		if err != nil {
			e.dockerOK.err = err
			return
		}
		e.mu.Lock()
		e.docker = rt
		e.mu.Unlock()
	})
	return e.dockerOK.err
}

// useDocker decides whether a Postgres or Redis runs in Docker (true) or
// as a local process (false). bins are the binaries the process backend
// needs. When neither is possible it skips the test, or fails it when
// SHAKEDOWN_REQUIRE_DOCKER=1; in that case ok is false.
func (e *Env) useDocker(what string, bins ...string) (docker, ok bool) {
	e.t.Helper()
	switch e.backend {
	case Docker:
		if err := e.dockerAvailable(); err != nil {
			e.noDocker(what, err)
			return false, false
		}
		return true, true
	case Process:
		if missing := missingBinaries(bins); len(missing) > 0 {
			e.t.Skipf("harness: %s: backend is process but %s not on PATH; install them (Debian: apt-get install -y postgresql redis-server) or use the Docker backend", what, strings.Join(missing, ", "))
			return false, false
		}
		return false, true
	}
	err := e.dockerAvailable()
	if err == nil {
		return true, true
	}
	if os.Getenv(EnvRequireDocker) == "1" {
		e.noDocker(what, err)
		return false, false
	}
	if missing := missingBinaries(bins); len(missing) == 0 {
		e.log.Info("docker unavailable, using local processes", "dependency", what, "reason", err)
		return false, true
	} else {
		e.t.Skipf("harness: %s: Docker does not answer (%v) and %s not on PATH. "+
			"Start Docker (check `docker info`, DOCKER_HOST), or install the servers for the process backend "+
			"(Debian: apt-get install -y postgresql redis-server; put initdb and postgres on PATH)",
			what, err, strings.Join(missing, ", "))
	}
	return false, false
}

// needDocker is useDocker for dependencies that only run in Docker.
func (e *Env) needDocker(what string) bool {
	e.t.Helper()
	if err := e.dockerAvailable(); err != nil {
		e.noDocker(what, err)
		return false
	}
	return true
}

func (e *Env) noDocker(what string, err error) {
	e.t.Helper()
	msg := fmt.Sprintf("harness: %s needs Docker, which does not answer: %v. "+
		"Start the Docker engine (check `docker info` and DOCKER_HOST)", what, err)
	if os.Getenv(EnvRequireDocker) == "1" {
		e.t.Fatalf("%s; failing because %s=1", msg, EnvRequireDocker)
	}
	e.t.Skipf("%s, or set %s=process with postgres/redis-server installed; set %s=1 to fail instead of skipping",
		msg, EnvBackend, EnvRequireDocker)
}

func missingBinaries(bins []string) []string {
	var missing []string
	for _, b := range bins {
		if _, err := lookBinary(b); err != nil {
			missing = append(missing, b)
		}
	}
	return missing
}

// lookBinary finds a server binary on PATH or, failing that, where
// Debian's postgresql-NN packages install theirs (not on PATH), newest
// version first.
func lookBinary(name string) (string, error) {
	path, err := exec.LookPath(name)
	if err == nil {
		return path, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(dir string) int {
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, dir := range dirs {
		if p, err2 := exec.LookPath(filepath.Join(dir, name)); err2 == nil {
			return p, nil
		}
	}
	return "", err
}
