//go:build !unix

package sim

import "time"

// processCPU cannot be read here: a stall is judged by the gap alone.
func processCPU() time.Duration { return -1 }
