package harness

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/require"
)

func TestPressureFile(t *testing.T) {
	const id = "01af0a60b27f055414b3c12f2929fb85ff7e2c6bfbd53c259a1cf72cc7f7c44d"
	v1 := "9:name=systemd:/docker/" + id + "\n1:cpu:/docker/" + id + "\n0::/docker/" + id + "\n"
	v2 := "0::/system.slice/docker-" + id + ".scope\n"
	only := func(want string) func(string) bool { return func(p string) bool { return p == want } }

	require.Equal(t, "/sys/fs/cgroup/unified/docker/"+id+"/cpu.pressure",
		pressureFile(v1, id, only("/sys/fs/cgroup/unified/docker/"+id+"/cpu.pressure")), "hybrid v1 host")
	require.Equal(t, "/sys/fs/cgroup/system.slice/docker-"+id+".scope/cpu.pressure",
		pressureFile(v2, id, only("/sys/fs/cgroup/system.slice/docker-"+id+".scope/cpu.pressure")), "cgroup v2, systemd driver")
	require.Empty(t, pressureFile(v2, "another", func(string) bool { return true }), "a process that is not the container's")
	require.Empty(t, pressureFile("1:cpu:/docker/"+id+"\n", id, func(string) bool { return true }), "no unified hierarchy")
	require.Empty(t, pressureFile(v1, id, func(string) bool { return false }), "a kernel without PSI")
}

// A container node says how long its processes waited for a CPU and how
// much CPU they used, where this process can see them; it is false while
// the container is down, and after a restart it says again.
func TestNodeCPUStall(t *testing.T) {
	e := New(t, WithBackend(Docker))
	r := e.Redis("cache")
	ctx := ctxFor(t, 2*time.Minute)
	dn := r.rt.(*dockerNode)
	res, err := e.docker.cli.ContainerInspect(ctx, dn.id, client.ContainerInspectOptions{})
	require.NoError(t, err)
	cg, err := os.ReadFile("/proc/" + strconv.Itoa(res.Container.State.Pid) + "/cgroup")
	_, psi := os.Stat("/proc/pressure/cpu")
	if err != nil || !strings.Contains(string(cg), dn.id) || psi != nil {
		require.Empty(t, dn.pressure, "the container's process is out of sight or the kernel has no PSI, yet a pressure file was chosen")
		_, _, ok := r.CPUStall()
		require.False(t, ok)
		t.Skipf("the container's cgroup cannot be read from here (cgroup read: %v, PSI: %v)", err, psi)
	}
	require.NotEmpty(t, dn.pressure, "the container's process is in sight (%q), yet no pressure file was found", strings.TrimSpace(string(cg)))
	waited, used, ok := r.CPUStall()
	require.True(t, ok)
	require.GreaterOrEqual(t, waited, time.Duration(0))
	require.Positive(t, used, "a Redis server that started and answered its readiness check has used some CPU")

	require.NoError(t, r.Crash(ctx))
	_, _, ok = r.CPUStall()
	require.False(t, ok, "a container that is down has no cgroup to read")
	require.NoError(t, r.Start(ctx))
	_, used, ok = r.CPUStall()
	require.True(t, ok, "started again, the container's cgroup is back at the same path")
	require.Positive(t, used, "started again, it has used some CPU")
}
