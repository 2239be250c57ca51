//go:build !linux

package harness

// roomyTmpfs reports false: only Linux's /dev/shm is known to be a tmpfs.
func roomyTmpfs(string, uint64) bool { return false }
