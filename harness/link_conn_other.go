//go:build !unix

package harness

import (
	"errors"
	"net"
)

// setBacklog is not available here: a handshake hang then only stops
// accepting, and dials complete into the listen backlog.
func setBacklog(net.Listener, int) error {
	return errors.New("harness: changing a listen backlog needs a unix system")
}
