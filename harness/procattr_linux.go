package harness

import "syscall"

// procAttr is how the harness starts a child process: with setpgid, in a
// process group of its own (no terminal signals), and, with cred, as
// that user. On Linux the child is also killed when the test binary
// dies (Pdeathsig), and by the reaper if that did not happen.
func procAttr(setpgid bool, cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: setpgid, Pdeathsig: syscall.SIGKILL, Credential: cred}
}
