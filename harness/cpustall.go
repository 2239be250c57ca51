package harness

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/shakedown/shakedown/internal/psi"
)

// CPUStall is, so far, the time during which a process of the node
// waited for a CPU and the CPU time its processes used, from the pressure
// stall information and the cpu.stat of its container's cgroup (the
// sim.CPUStaller method: a real run records them beside its ops, so a
// report can tell a dependency the machine starved from a slow client).
// used is negative when the cgroup has no cpu.stat to read. It is false
// for a process node, a container that is down, an engine that is not on
// this machine, or a kernel without PSI. The totals start again from
// zero when the container restarts.
func (n *Node) CPUStall() (waited, used time.Duration, ok bool) {
	dn, isDocker := n.rt.(*dockerNode)
	if !isDocker || dn.pressure == "" {
		return 0, 0, false
	}
	if waited, ok = psi.ReadSome(dn.pressure); !ok {
		return 0, 0, false
	}
	used, known := psi.ReadUsage(filepath.Join(filepath.Dir(dn.pressure), "cpu.stat"))
	if !known {
		used = -1
	}
	return waited, used, true
}

// ConnsOpened is the number of connections the node's Link has passed on
// to it so far: those it accepted, less those it refused or reset at once
// (the sim.ConnCounter method: a real run records them beside the CPU the
// node used, so a verdict can tell the work of reconnecting from a storm
// of requests).
func (n *Node) ConnsOpened() int64 {
	st := n.link.Stats()
	return st.Accepted - st.Refused
}

// Answers is how many requests the node's Link has seen answered so far,
// how long they waited for their answers, summed, and how many wait now
// (LinkStats.Exchanges, AnswerTime and Waiting; the sim.AnswerTimer
// method: a real run records them beside the CPU the node used, so a
// verdict can tell a dependency that kept its clients waiting from one
// that answered as it always did, and how much its clients asked of it).
func (n *Node) Answers() (int64, time.Duration, int64) {
	st := n.link.Stats()
	return st.Exchanges, st.AnswerTime, st.Waiting
}

// cgroupPressure finds the cpu.pressure file of a running container's
// cgroup, or "" when there is none this process can read: the engine is
// not a local socket, the container's process is not in this process's
// PID namespace (checked: its cgroup must name the container), or the
// kernel has no PSI. On cgroup v2 the file is under /sys/fs/cgroup; on a
// hybrid v1 host, under /sys/fs/cgroup/unified.
func (d *dockerRuntime) cgroupPressure(ctx context.Context, id string) string {
	if !strings.HasPrefix(d.cli.DaemonHost(), "unix://") {
		return ""
	}
	res, err := d.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil || res.Container.State == nil || res.Container.State.Pid <= 0 {
		return ""
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(res.Container.State.Pid) + "/cgroup")
	if err != nil {
		return ""
	}
	return pressureFile(string(b), id, func(p string) bool {
		_, ok := psi.ReadSome(p)
		return ok
	})
}

// pressureFile picks, from the text of /proc/<pid>/cgroup, the unified
// hierarchy's cpu.pressure for the container id, or "".
func pressureFile(cgroup, id string, readable func(string) bool) string {
	for _, line := range strings.Split(cgroup, "\n") {
		path, ok := strings.CutPrefix(line, "0::")
		if !ok || !strings.Contains(path, id) {
			continue
		}
		for _, root := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
			if f := filepath.Join(root, path, "cpu.pressure"); readable(f) {
				return f
			}
		}
	}
	return ""
}
