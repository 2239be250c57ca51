package harness

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/require"
	"github.com/testcontainers/testcontainers-go"
)

// dockerForTest returns a Docker client for tests that talk to the
// engine directly. Without Docker it skips, or fails when
// SHAKEDOWN_REQUIRE_DOCKER=1.
func dockerForTest(t *testing.T) *testcontainers.DockerClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), dockerProbeTimeout)
	defer cancel()
	cli, err := newDockerClient(ctx)
	if err != nil {
		if os.Getenv(EnvRequireDocker) == "1" {
			t.Fatalf("needs Docker: %v (failing because %s=1)", err, EnvRequireDocker)
		}
		t.Skipf("needs Docker: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// closedPort is a TCP port on 127.0.0.1 that nothing listens on (a
// moment ago).
func closedPort(t *testing.T) int {
	t.Helper()
	p, err := freePort()
	require.NoError(t, err)
	return p
}

// TestDockerHostNotAnswering: a DOCKER_HOST that points nowhere is
// refused with an error that names it; shakedown never falls back to the
// local socket, whether the engine is asked directly or through an Env.
func TestDockerHostNotAnswering(t *testing.T) {
	for _, host := range []string{
		"tcp://127.0.0.1:" + strconv.Itoa(closedPort(t)),
		"unix://" + filepath.Join(t.TempDir(), "nothing.sock"),
	} {
		t.Run(host, func(t *testing.T) {
			t.Setenv("DOCKER_HOST", host)
			ctx := ctxFor(t, 30*time.Second)
			cli, err := newDockerClient(ctx)
			require.Nil(t, cli)
			require.ErrorIs(t, err, errDockerDown)
			require.ErrorContains(t, err, "DOCKER_HOST="+host)
			require.ErrorContains(t, err, "does not fall back")
			require.NotContains(t, err.Error(), "rootless")

			_, err = Reap(ctx)
			require.ErrorContains(t, err, "DOCKER_HOST="+host, "Reap does not pass over an engine that was named")

			f := &fakeTB{TB: t}
			defer f.teardown()
			e := New(f, WithBackend(Docker))
			stop := catch(func() { e.Container("web", ContainerSpec{Image: testserverImage(), Port: "8080"}) })
			require.NotNil(t, stop)
			require.Contains(t, stop.msg, "DOCKER_HOST="+host)
		})
	}
}

// TestDockerDownMessages: the error for an engine that does not answer
// names the engine that was asked, and says "rootless" only when no
// rootful engine was configured at all.
func TestDockerDownMessages(t *testing.T) {
	t.Setenv("DOCKER_HOST", "")
	// A default socket that exists but where no engine answers.
	sock := filepath.Join(t.TempDir(), "docker.sock")
	require.NoError(t, os.WriteFile(sock, nil, 0o600))
	target := configuredDocker(sock)
	if tcHostProperty() != "" {
		t.Skip("~/.testcontainers.properties sets tc.host, which comes before the default socket")
	}
	require.True(t, target.exists)
	ctx := ctxFor(t, 30*time.Second)
	_, err := newDockerClientFor(ctx, target)
	require.ErrorIs(t, err, errDockerDown)
	require.ErrorContains(t, err, sock)
	require.ErrorContains(t, err, "DOCKER_HOST is unset")
	require.ErrorContains(t, err, "systemctl start docker")
	require.NotContains(t, err.Error(), "rootless")

	// No socket at all: testcontainers searched further and says what
	// it says; our sentence comes first and names what is missing.
	missing := configuredDocker(filepath.Join(t.TempDir(), "absent.sock"))
	require.False(t, missing.exists)
	err = dockerDownError(missing, errors.New("rootless Docker not found"))
	require.ErrorContains(t, err, "DOCKER_HOST is unset and "+defaultDockerSocket+" does not exist")
}

// TestDockerHostTCP runs a container through DOCKER_HOST=tcp://127.0.0.1:PORT,
// a TCP proxy to the local engine's socket. testcontainers-go chooses its
// engine once per process, so the Env runs in a child test binary whose
// DOCKER_HOST is set from the start.
func TestDockerHostTCP(t *testing.T) {
	if os.Getenv("SHAKEDOWN_DOCKER_HOST_CHILD") == "1" {
		t.Skip("in the child")
	}
	parent := dockerForTest(t)
	sock, ok := strings.CutPrefix(parent.DaemonHost(), "unix://")
	if !ok {
		t.Skipf("the engine is at %s, not on a unix socket to expose over TCP", parent.DaemonHost())
	}
	proxy := startUnixProxy(t, sock)

	ctx := ctxFor(t, 5*time.Minute)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestDockerHostTCPChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "DOCKER_HOST=tcp://"+proxy.addr, "SHAKEDOWN_DOCKER_HOST_CHILD=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "child:\n%s", out)
	require.Contains(t, string(out), "--- PASS: TestDockerHostTCPChild", "child:\n%s", out)
	require.Positive(t, proxy.accepted.Load(), "the child reached the engine through the TCP proxy")
	t.Logf("child, through %d connections to the proxy:\n%s", proxy.accepted.Load(), out)
}

func TestDockerHostTCPChild(t *testing.T) {
	if os.Getenv("SHAKEDOWN_DOCKER_HOST_CHILD") != "1" {
		t.Skip("run by TestDockerHostTCP")
	}
	host := os.Getenv("DOCKER_HOST")
	require.True(t, strings.HasPrefix(host, "tcp://127.0.0.1:"), host)
	var runID string
	t.Run("env", func(t *testing.T) {
		e := New(t, WithBackend(Docker))
		runID = e.RunID()
		c := testserver(e, "web")
		require.Equal(t, host, e.docker.cli.DaemonHost(), "the Env's client uses DOCKER_HOST")
		ctx := ctxFor(t, time.Minute)
		require.NoError(t, healthz(ctx, c.Addr()), "the container answers through its Link")
		res, err := e.docker.cli.ContainerInspect(ctx, c.ID(), client.ContainerInspectOptions{})
		require.NoError(t, err)
		require.True(t, res.Container.State.Running)
	})
	left, err := Leftovers(ctxFor(t, time.Minute), runID)
	require.NoError(t, err)
	require.Empty(t, left)
}

// unixProxy forwards TCP connections on 127.0.0.1 to a unix socket.
type unixProxy struct {
	addr     string
	accepted atomic.Int64
}

func startUnixProxy(t *testing.T, sock string) *unixProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &unixProxy{addr: l.Addr().String()}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	track := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			p.accepted.Add(1)
			out, err := net.Dial("unix", sock)
			if err != nil {
				_ = in.Close()
				continue
			}
			track(in)
			track(out)
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(out, in); _ = out.(*net.UnixConn).CloseWrite() }()
			go func() { defer wg.Done(); _, _ = io.Copy(in, out); _ = in.(*net.TCPConn).CloseWrite() }()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return p
}

// TestImageMissing: an image that is not on the engine is reported
// before testcontainers tries a registry, with the fix and the variable
// that chose the image.
func TestImageMissing(t *testing.T) {
	dockerForTest(t)
	const absent = "shakedown.local/absent:never"
	cases := []struct {
		name string
		env  string // variable set to the absent image
		run  func(e *Env)
		want []string
	}{
		{"postgres", EnvPostgresImage, func(e *Env) { e.Postgres("pg") }, []string{"make images", EnvPostgresImage}},
		{"redis", EnvRedisImage, func(e *Env) { e.Redis("r") }, []string{"make images", EnvRedisImage}},
		{"container", "", func(e *Env) { e.Container("web", ContainerSpec{Image: absent, Port: "8080"}) }, []string{"make images", "choose an image that is present"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.env != "" {
				t.Setenv(c.env, absent)
			}
			f := &fakeTB{TB: t}
			e := New(f, WithBackend(Docker))
			stop := catch(func() { c.run(e) })
			f.teardown()
			require.NotNil(t, stop)
			require.Equal(t, "fatal", stop.kind, stop.msg)
			t.Log(stop.msg)
			require.Contains(t, stop.msg, "image "+absent+" is not present locally")
			for _, w := range c.want {
				require.Contains(t, stop.msg, w)
			}
			if c.env == "" {
				require.NotContains(t, stop.msg, "SHAKEDOWN_")
			}
			left, err := Leftovers(ctxFor(t, time.Minute), e.RunID())
			require.NoError(t, err)
			require.Empty(t, left)
		})
	}
}
