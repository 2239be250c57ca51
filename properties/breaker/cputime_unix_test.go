//go:build unix

package breaker_test

import (
	"syscall"
	"time"
)

// brkCPUTime is the CPU time (user and system) the process used so far.
// On a loaded machine it tells the cost of code apart from the time it
// spent waiting for a core.
func brkCPUTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
