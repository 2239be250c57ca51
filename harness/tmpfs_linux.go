package harness

import "syscall"

// tmpfsMagic is statfs(2)'s f_type of a tmpfs.
const tmpfsMagic = 0x01021994

// roomyTmpfs reports whether dir is a tmpfs with at least min bytes free
// to an unprivileged user.
func roomyTmpfs(dir string, min uint64) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return false
	}
	return int64(st.Type) == tmpfsMagic && uint64(st.Bavail)*uint64(st.Bsize) >= min
}
