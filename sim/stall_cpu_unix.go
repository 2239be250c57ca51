//go:build unix

package sim

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user and system) the process used so far,
// or -1 if it cannot be read.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return -1
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
