package harness

import (
	"io"
	"net"
	"syscall"
)

const (
	// spliceNonblock is SPLICE_F_NONBLOCK: the pipe end of a splice does
	// not block (the sockets are non-blocking already).
	spliceNonblock = 0x2
	// spliceMax is the most one splice asks to move, and the size asked
	// for the pipe, which bounds what it moves.
	spliceMax = 1 << 20
)

// spliceRelay moves the bytes of one direction kernel to kernel: splice(2)
// from the source socket into a pipe of its own, then from the pipe into
// the destination socket. It owns its pipe, rather than going through
// io.Copy's, so that the Link knows whether it is reading (which a hand-over
// interrupts) or writing (which it does not wait for), see linkDir.
type spliceRelay struct {
	src, dst syscall.RawConn
	r, w     int // the pipe's ends
	inPipe   int // bytes in the pipe

	// The closures passed to RawConn, made once so that fill and flush
	// allocate nothing, and the result of the last splice they made.
	fillFn, flushFn func(fd uintptr) bool
	n               int
	err             error
}

// newRelay returns a relay from src to dst: a splice relay, or a copy
// through a buffer if a pipe cannot be had.
func newRelay(src, dst *net.TCPConn) relay {
	sr, err := newSpliceRelay(src, dst)
	if err != nil {
		return newCopyRelay(src, dst)
	}
	return sr
}

func newSpliceRelay(src, dst *net.TCPConn) (*spliceRelay, error) {
	rs, err := src.SyscallConn()
	if err != nil {
		return nil, err
	}
	rd, err := dst.SyscallConn()
	if err != nil {
		return nil, err
	}
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		return nil, err
	}
	// A pipe as large as a splice asks for, as io.Copy's are: fewer
	// system calls per byte in bulk. A smaller one (the system's limits
	// may refuse) only costs more calls.
	_, _, _ = syscall.Syscall(syscall.SYS_FCNTL, uintptr(p[0]), syscall.F_SETPIPE_SZ, spliceMax)
	r := &spliceRelay{src: rs, dst: rd, r: p[0], w: p[1]}
	r.fillFn = func(fd uintptr) bool {
		for {
			n, err := syscall.Splice(int(fd), nil, r.w, nil, spliceMax, spliceNonblock)
			switch err {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN: // nothing to read yet: wait for it
				return false
			}
			r.n, r.err = int(n), err
			return true
		}
	}
	r.flushFn = func(fd uintptr) bool {
		for r.inPipe > 0 {
			n, err := syscall.Splice(r.r, nil, int(fd), nil, r.inPipe, spliceNonblock)
			switch {
			case err == syscall.EINTR:
			case err == syscall.EAGAIN: // the socket is full: wait for room
				return false
			case err != nil:
				r.err = err
				return true
			case n == 0:
				r.err = io.ErrNoProgress
				return true
			default:
				r.inPipe -= int(n)
			}
		}
		return true
	}
	return r, nil
}

func (r *spliceRelay) fill() (int, error) {
	r.n, r.err = 0, nil
	if err := r.src.Read(r.fillFn); err != nil {
		return 0, err
	}
	r.inPipe += r.n
	return r.n, r.err
}

func (r *spliceRelay) flush() error {
	r.err = nil
	if err := r.dst.Write(r.flushFn); err != nil {
		return err
	}
	return r.err
}

func (r *spliceRelay) close() {
	_ = syscall.Close(r.r)
	_ = syscall.Close(r.w)
}
