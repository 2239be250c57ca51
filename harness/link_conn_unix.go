//go:build unix

package harness

import (
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// setBacklog listens again on ln's socket with the given backlog (n < 0:
// the system's maximum, as Go's own listen uses). On Linux a second
// listen(2) on a listening socket changes its backlog and nothing else.
func setBacklog(ln net.Listener, n int) error {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil
	}
	if n < 0 {
		n = maxBacklog()
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return err
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) { lerr = syscall.Listen(int(fd), n) }); err != nil {
		return err
	}
	return os.NewSyscallError("listen", lerr)
}

// maxBacklog is the backlog Go's net package gives a listener.
func maxBacklog() int {
	b, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > 0 {
			return n
		}
	}
	return syscall.SOMAXCONN
}
