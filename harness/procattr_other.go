//go:build unix && !linux

package harness

import "syscall"

// procAttr is how the harness starts a child process: with setpgid, in a
// process group of its own (no terminal signals), and, with cred, as
// that user. Without Linux's Pdeathsig, a child the test binary left
// behind when it died is ended by the reaper of the next run.
func procAttr(setpgid bool, cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: setpgid, Credential: cred}
}
