package harness

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/require"
)

// tcpListener is one listening socket of /proc/net/tcp or tcp6.
type tcpListener struct {
	addr  netip.AddrPort
	inode uint64
	pid   int // the process of ours holding it, 0 if none
}

func (l tcpListener) String() string {
	return fmt.Sprintf("%s (pid %d, inode %d)", l.addr, l.pid, l.inode)
}

// parseProcNetTCP returns the listening sockets in a /proc/net/tcp or
// /proc/net/tcp6 table.
func parseProcNetTCP(r io.Reader) ([]tcpListener, error) {
	var out []tcpListener
	sc := bufio.NewScanner(r)
	sc.Scan() // header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[3] != "0A" { // 0A: TCP_LISTEN
			continue
		}
		addr, err := parseHexAddrPort(f[1])
		if err != nil {
			return nil, fmt.Errorf("%q: %w", sc.Text(), err)
		}
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q: inode: %w", sc.Text(), err)
		}
		out = append(out, tcpListener{addr: addr, inode: inode})
	}
	return out, sc.Err()
}

// parseHexAddrPort parses the kernel's "0100007F:1F90": the address as
// 32-bit words in host (little-endian) order, the port in hex.
func parseHexAddrPort(s string) (netip.AddrPort, error) {
	a, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, errors.New("no port")
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, err
	}
	raw, err := hex.DecodeString(a)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("address %q", a)
	}
	for i := 0; i < len(raw); i += 4 {
		binary.BigEndian.PutUint32(raw[i:], binary.LittleEndian.Uint32(raw[i:]))
	}
	addr, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(addr, uint16(port)), nil
}

// socketsOf maps the socket inodes held by pids to the pid.
func socketsOf(pids []int) map[uint64]int {
	out := map[uint64]int{}
	for _, pid := range pids {
		fds, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/fd/*")
		for _, fd := range fds {
			target, err := os.Readlink(fd)
			if err != nil {
				continue
			}
			if s, ok := strings.CutPrefix(target, "socket:["); ok {
				if inode, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64); err == nil {
					out[inode] = pid
				}
			}
		}
	}
	return out
}

// ownListeners lists the TCP listeners of this process and every process
// below it.
func ownListeners() ([]tcpListener, error) {
	pids := []int{os.Getpid()}
	for _, d := range descendants(os.Getpid()) {
		pids = append(pids, d.pid)
	}
	inodes := socketsOf(pids)
	var out []tcpListener
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if errors.Is(err, os.ErrNotExist) {
			continue // no IPv6
		}
		if err != nil {
			return nil, err
		}
		ls, err := parseProcNetTCP(f)
		_ = f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", table, err)
		}
		for _, l := range ls {
			if pid, ok := inodes[l.inode]; ok {
				l.pid = pid
				out = append(out, l)
			}
		}
	}
	return out, nil
}

var loopback4 = netip.MustParseAddr("127.0.0.1")

// notLoopback lists the listeners not bound to 127.0.0.1.
func notLoopback(ls []tcpListener) []string {
	var bad []string
	for _, l := range ls {
		if l.addr.Addr().Unmap() != loopback4 {
			bad = append(bad, "listener "+l.String())
		}
	}
	return bad
}

// publishedNotLoopback lists the published ports of run's containers
// that are not bound to 127.0.0.1, and how many bindings it saw.
func publishedNotLoopback(ctx context.Context, cli *client.Client, run string) (bad []string, seen int, err error) {
	f := make(client.Filters).Add("label", LabelRun+"="+run)
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, 0, err
	}
	for _, c := range cs.Items {
		res, err := cli.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
		if err != nil {
			return nil, 0, err
		}
		ctr := res.Container
		if ctr.HostConfig != nil {
			for port, bs := range ctr.HostConfig.PortBindings {
				for _, b := range bs {
					seen++
					if b.HostIP != loopback4 {
						bad = append(bad, fmt.Sprintf("container %s asks to publish %s on %q", shortID(c.ID), port, b.HostIP))
					}
				}
			}
		}
		if ctr.NetworkSettings != nil {
			for port, bs := range ctr.NetworkSettings.Ports {
				for _, b := range bs {
					seen++
					if b.HostIP != loopback4 {
						bad = append(bad, fmt.Sprintf("container %s publishes %s on %s:%s", shortID(c.ID), port, b.HostIP, b.HostPort))
					}
				}
			}
		}
	}
	return bad, seen, nil
}

func TestParseProcNetTCP(t *testing.T) {
	const table = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0 100 0 0 10 0
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 222 1 0 100 0 0 10 0
   2: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 333 1 0 100 0 0 10 0
`
	const table6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 444 1 0 100 0 0 10 0
   1: 00000000000000000000000000000000:1F92 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 555 1 0 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:1F93 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 666 1 0 100 0 0 10 0
`
	ls, err := parseProcNetTCP(strings.NewReader(table))
	require.NoError(t, err)
	ls6, err := parseProcNetTCP(strings.NewReader(table6))
	require.NoError(t, err)
	all := append(ls, ls6...)
	var got []string
	for _, l := range all {
		got = append(got, l.addr.String())
	}
	require.Equal(t, []string{"127.0.0.1:8080", "0.0.0.0:22", "[::1]:8081", "[::]:8082", "[::ffff:127.0.0.1]:8083"}, got, "established connections are not listeners")
	require.Equal(t, []string{"listener 0.0.0.0:22 (pid 0, inode 222)", "listener [::1]:8081 (pid 0, inode 444)", "listener [::]:8082 (pid 0, inode 555)"}, notLoopback(all))
}

// TestLoopbackOnly lists the sockets while an Env runs containers, and
// while one runs local processes, and fails on any listener of this
// process or its children, or any published port of the run's
// containers, that is not bound to 127.0.0.1.
func TestLoopbackOnly(t *testing.T) {
	check := func(t *testing.T, e *Env) {
		ls, err := ownListeners()
		require.NoError(t, err)
		require.NotEmpty(t, ls, "the Links listen")
		bad := notLoopback(ls)
		var seen int
		if e.docker != nil {
			ctx := ctxFor(t, time.Minute)
			var pbad []string
			pbad, seen, err = publishedNotLoopback(ctx, e.docker.cli.Client, e.RunID())
			require.NoError(t, err)
			bad = append(bad, pbad...)
		}
		require.Empty(t, bad, "bound beyond loopback")
		t.Logf("%d listeners of this process tree, %d port bindings of the run's containers: all on 127.0.0.1", len(ls), seen)
	}
	t.Run("docker", func(t *testing.T) {
		e := New(t, WithBackend(Docker))
		e.Postgres("pg")
		e.Redis("cache")
		testserver(e, "web")
		check(t, e)
	})
	t.Run("process", func(t *testing.T) {
		e := New(t, WithBackend(Process))
		p := e.Postgres("pg")
		r := e.Redis("cache")
		ls, err := ownListeners()
		require.NoError(t, err)
		for _, n := range []*Node{p.Node, r.Node} {
			pid := 0
			if cmd, _ := n.rt.(*processNode).current(); cmd != nil {
				pid = cmd.Process.Pid
			}
			require.True(t, hasListenerOf(ls, pid), "the listener of %s (pid %d) is seen: %v", n.Name(), pid, ls)
		}
		check(t, e)
	})
}

func hasListenerOf(ls []tcpListener, pid int) bool {
	for _, l := range ls {
		if l.pid == pid {
			return true
		}
	}
	return false
}
