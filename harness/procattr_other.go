//go:build unix && !linux

package harness

import "syscall"

// procAttr is how the harness starts a child process: with setpgid, in a
// process group of its own (no terminal signals), and, with cred, as
// that user. Without Linux's Pdeathsig, a child survives a test binary
// that was killed, and the reaper, which reads /proc to recognise a
// recorded process, does not end it either.
func procAttr(setpgid bool, cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: setpgid, Credential: cred}
}
