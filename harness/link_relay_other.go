//go:build !linux

package harness

import "net"

// newRelay returns a relay from src to dst; without splice(2), a copy
// through a buffer.
func newRelay(src, dst *net.TCPConn) relay {
	return newCopyRelay(src, dst)
}
