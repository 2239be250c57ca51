//go:build !unix

package breaker_test

import "time"

// brkCPUTime is not measured on this platform.
func brkCPUTime() time.Duration { return 0 }
