package harness

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/toxics"
)

func TestAddress(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) }))
	t.Cleanup(srv.Close)
	e := New(t)
	s := e.Address("api", srv.Listener.Addr().String())
	ctx := ctxFor(t, time.Minute)

	require.Equal(t, "api", s.Name())
	require.Equal(t, srv.Listener.Addr().String(), s.DirectAddr())
	require.NotEqual(t, s.DirectAddr(), s.Addr())
	require.NoError(t, s.Ready(ctx))
	code, body, err := httpGet(ctx, "http://"+s.Addr()+"/", 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, body)

	require.True(t, s.Supports(toxics.KindLatency))
	require.False(t, s.Supports(toxics.KindCrash), "the env does not own the process behind an address")
	_, err = s.Apply(ctx, toxics.Crash{})
	require.ErrorContains(t, err, "existing address")

	_, err = s.Apply(ctx, toxics.Down{})
	require.NoError(t, err)
	_, _, err = httpGet(ctx, "http://"+s.Addr()+"/", time.Second)
	require.Error(t, err)
	require.NoError(t, e.Reset(ctx))
	code, _, err = httpGet(ctx, "http://"+s.Addr()+"/", 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)

	d, err := e.Dependency("api")
	require.NoError(t, err)
	require.Same(t, s, d)
	_, err = e.Dependency("nope")
	require.ErrorContains(t, err, `"nope"`)
	require.Len(t, e.Dependencies(), 1)

	_, err = e.Partition(ctx, []string{"api"}, []string{"api2"})
	require.Error(t, err, "an address cannot be partitioned")
}

func TestSeedAndRunID(t *testing.T) {
	e1 := New(t, WithSeed(42))
	require.Equal(t, int64(42), e1.Seed())
	t.Setenv(EnvSeed, "7")
	e2 := New(t)
	require.Equal(t, int64(7), e2.Seed())
	e3 := New(t)
	require.Equal(t, int64(7), e3.Seed())
	require.NotEqual(t, e2.RunID(), e3.RunID(), "run IDs are unique even when seeds are equal")
	require.NotNil(t, e1.Logger())
	require.Equal(t, "process", Process.String())
	b, err := ParseBackend("Docker")
	require.NoError(t, err)
	require.Equal(t, Docker, b)
}

// TestBadInput checks that bad input stops the test with a message that
// says what and where, and never panics.
func TestBadInput(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	good := srv.Listener.Addr().String()
	cases := []struct {
		name string
		env  map[string]string
		run  func(e *Env)
		want string
	}{
		{"bad seed variable", map[string]string{EnvSeed: "x"}, nil, "SHAKEDOWN_SEED"},
		{"bad backend variable", map[string]string{EnvBackend: "podman"}, nil, "podman"},
		{"address without port", nil, func(e *Env) { e.Address("a", "127.0.0.1") }, "is not host:port"},
		{"address with bad port", nil, func(e *Env) { e.Address("a", "127.0.0.1:99999") }, "99999"},
		{"bad name", nil, func(e *Env) { e.Address("a b", good) }, `"a b"`},
		{"empty name", nil, func(e *Env) { e.Address("", good) }, "dependency name"},
		{"duplicate name", nil, func(e *Env) { e.Address("a", good); e.Address("a", good) }, "already used"},
		{"address with unknown protocol", nil, func(e *Env) { e.Address("a", good, WithProtocol("mysql")) }, `protocol "mysql"`},
		{"container with unknown protocol", nil, func(e *Env) {
			e.Container("c", ContainerSpec{Image: "x", Port: "80"}, WithProtocol("mysql"))
		}, `protocol "mysql"`},
		{"container without image", nil, func(e *Env) { e.Container("c", ContainerSpec{Port: "80"}) }, "Image"},
		{"container with bad port", nil, func(e *Env) { e.Container("c", ContainerSpec{Image: "x", Port: "http"}) }, "Port"},
		{"container with udp port", nil, func(e *Env) { e.Container("c", ContainerSpec{Image: "x", Port: "53/udp"}) }, "TCP"},
		{"postgres bad user", nil, func(e *Env) { e.Postgres("p", WithUser("Robert'); DROP")) }, "user"},
		{"postgres bad database", nil, func(e *Env) { e.Postgres("p", WithDatabase("")) }, "database"},
		{"negative start timeout", nil, func(e *Env) { e.Redis("r", WithStartTimeout(-time.Second)) }, "negative"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			f := &fakeTB{TB: t}
			defer f.teardown()
			stop := catch(func() {
				e := New(f)
				if c.run != nil {
					c.run(e)
				}
			})
			require.NotNil(t, stop, "want t.Fatalf")
			require.Equal(t, "fatal", stop.kind)
			require.Contains(t, stop.msg, c.want)
		})
	}
}

func TestApplyRejectsBadFaults(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	e := New(t)
	s := e.Address("api", srv.Listener.Addr().String())
	ctx := ctxFor(t, time.Minute)
	_, err := s.Apply(ctx, nil)
	require.Error(t, err)
	_, err = s.Apply(ctx, toxics.Slicer{AverageSize: 0})
	require.ErrorContains(t, err, "average_size")
	_, err = s.Apply(ctx, toxics.Bandwidth{Rate: -1})
	require.ErrorContains(t, err, "rate")
}

// TestNoDocker checks the skip and the failure when Docker does not
// answer, by making the Env's probe fail.
func TestNoDocker(t *testing.T) {
	for _, require1 := range []bool{false, true} {
		t.Run("require="+strconv.FormatBool(require1), func(t *testing.T) {
			if require1 {
				t.Setenv(EnvRequireDocker, "1")
			} else {
				t.Setenv(EnvRequireDocker, "")
			}
			f := &fakeTB{TB: t}
			defer f.teardown()
			stop := catch(func() {
				e := New(f, WithBackend(Docker))
				e.dockerOK.once.Do(func() { e.dockerOK.err = errors.New("simulated: no socket") })
				e.Redis("r")
			})
			require.NotNil(t, stop)
			if require1 {
				require.Equal(t, "fatal", stop.kind)
			} else {
				require.Equal(t, "skip", stop.kind)
			}
			require.Contains(t, stop.msg, "simulated: no socket")
			require.Contains(t, stop.msg, "Start the Docker engine")
		})
	}
}

// TestNothingLeftBehind builds an Env with every kind of resource, leaves
// it in a mess (a partition in force, a paused container, a crashed
// process, a panic), tears it down and lists what is left by label.
func TestNothingLeftBehind(t *testing.T) {
	ctx := ctxFor(t, 5*time.Minute)
	f := &fakeTB{TB: t}
	var runID string
	// Deferred, so it runs even when a require below ends the test.
	defer func() {
		f.teardown()
		left, err := Leftovers(ctx, runID)
		require.NoError(t, err)
		require.Empty(t, left, "teardown leaves nothing of run %s", runID)
	}()
	stop := catch(func() {
		defer func() {
			if r := recover(); r != nil && r != "test panics" {
				panic(r)
			}
		}()
		e := New(f)
		runID = e.RunID()
		if e.dockerAvailable() == nil {
			a, b := testserver(e, "a"), testserver(e, "b")
			_, err := e.Partition(ctx, []string{"a"}, []string{"b"})
			require.NoError(t, err)
			require.NoError(t, a.Pause(ctx))
			require.NoError(t, b.Crash(ctx))
		}
		if len(missingBinaries([]string{"redis-server"})) == 0 {
			e2 := New(f, WithBackend(Process))
			r := e2.Redis("r")
			require.NoError(t, r.Pause(ctx))
			left, err := Leftovers(ctx, e2.RunID())
			require.NoError(t, err)
			require.NotEmpty(t, left, "a live run is listed")
			t.Cleanup(func() {
				left, err := Leftovers(context.Background(), e2.RunID())
				require.NoError(t, err)
				require.Empty(t, left)
			})
		}
		panic("test panics")
	})
	require.Nil(t, stop)
}

func TestReapDocker(t *testing.T) {
	e := New(t)
	if err := e.dockerAvailable(); err != nil {
		t.Skipf("needs Docker: %v", err)
	}
	ctx := ctxFor(t, 2*time.Minute)
	cli := e.docker.cli
	create := func(labels map[string]string) string {
		res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
			Config: &container.Config{Image: testserverImage(), Labels: labels},
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = e.docker.remove(context.Background(), res.ID) })
		return res.ID
	}
	live := ownerLabels(e)
	dead := ownerLabels(e)
	dead[LabelPIDStart] = "1" // same pid, another start time: a dead process whose pid was reused
	otherHost := ownerLabels(e)
	otherHost[LabelHost] = "elsewhere"
	otherHost[LabelPIDStart] = "1"
	liveID, deadID, otherID := create(live), create(dead), create(otherHost)

	_, err := Reap(ctx)
	require.NoError(t, err)
	exists := func(id string) bool {
		_, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		return err == nil
	}
	require.True(t, exists(liveID), "a live run's container is never reaped")
	require.False(t, exists(deadID), "a dead run's container is reaped")
	require.True(t, exists(otherID), "another host's container is left alone")
}

func TestReapProcesses(t *testing.T) {
	sleeper := exec.Command("sleep", "300")
	require.NoError(t, sleeper.Start())
	exited := make(chan struct{})
	go func() { _ = sleeper.Wait(); close(exited) }()
	t.Cleanup(func() { _ = sleeper.Process.Kill(); <-exited })

	root, err := os.MkdirTemp("", "shakedown-reaptest-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	e := New(t)
	rec, err := newRunRecord(e, root)
	require.NoError(t, err)
	t.Cleanup(func() { _ = rec.remove() })
	rec.data.OwnerStart = 1 // the owner is "dead": its pid now has another start time
	require.NoError(t, rec.addProc(sleeper.Process.Pid, sleeper.Args))
	// Reap once the kernel has set up the sleeper's arguments, as a
	// dead run's processes are (see sleeper.execed).
	require.Eventually(t, func() bool {
		cmdline, err := procCmdline(sleeper.Process.Pid)
		return err == nil && len(cmdline) > 0
	}, 10*time.Second, time.Millisecond)

	n, err := reapProcesses(e.log)
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, 1)
	select {
	case <-exited:
	case <-time.After(30 * time.Second): // generous: the kill is immediate
		t.Fatal("the dead run's process was not killed")
	}
	_, err = os.Stat(root)
	require.ErrorIs(t, err, os.ErrNotExist, "the dead run's directory is removed")
	_, err = os.Stat(rec.path)
	require.ErrorIs(t, err, os.ErrNotExist, "the record is removed")

	// A live run's record is left alone.
	rec2, err := newRunRecord(New(t), filepath.Join(os.TempDir(), "shakedown-never-created"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = rec2.remove() })
	_, err = reapProcesses(e.log)
	require.NoError(t, err)
	_, err = os.Stat(rec2.path)
	require.NoError(t, err)
}

// Every dependency is a target of package sim's Runner. The interface is
// repeated here because harness does not import sim.
var _ = []interface {
	Name() string
	Supports(k toxics.Kind) bool
	Apply(ctx context.Context, f toxics.Fault) (revert func(context.Context) error, err error)
}{Dependency(nil), (*Postgres)(nil), (*Redis)(nil), (*Container)(nil), (*Service)(nil), (*Node)(nil)}

var (
	_ Dependency = (*Postgres)(nil)
	_ Dependency = (*Redis)(nil)
	_ Dependency = (*Container)(nil)
	_ Dependency = (*Service)(nil)
)
