package sim

import (
	"errors"
	"net"
	"syscall"
)

// ErrNotStarted is the error of an open-loop op that was due but could not
// start before the run ended, because [OpenLoop.MaxInFlight] ops were
// already in flight. Such an op is recorded as [Failed], with its latency
// counted from its intended start, so a system that stalls the load still
// shows its latency.
var ErrNotStarted = errors.New("sim: op not started: MaxInFlight ops were in flight until the run ended")

// ErrPanic wraps the value of a panic in an op, a target or a sampler; the
// panic is recovered so that it cannot crash the test binary.
var ErrPanic = errors.New("sim: panic")

// Classify is the default way a [Workload] turns an op's error into an
// [Outcome]:
//
//   - nil is [OK];
//   - an error that shows nothing reached the server is [Failed]: a refused
//     connection (ECONNREFUSED), any *net.OpError from a dial, a DNS error,
//     and [ErrNotStarted];
//   - everything else is [Unknown]: timeouts and deadlines
//     ([context.DeadlineExceeded], [os.ErrDeadlineExceeded]), cancellation,
//     connection resets and broken pipes after the request was sent,
//     [io.EOF] and [io.ErrUnexpectedEOF], and any error it does not
//     recognise, since it may have come after the server applied the op.
//
// Workloads that know better (an HTTP 503 that the service guarantees is
// returned before any write, say) set [Workload.Classify] and may call
// Classify for the errors they do not handle themselves.
func Classify(err error) Outcome {
	if err == nil {
		return OK
	}
	if errors.Is(err, ErrNotStarted) || errors.Is(err, syscall.ECONNREFUSED) {
		return Failed
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return Failed
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return Failed
	}
	// Timeouts, cancellation, resets, broken pipes, EOF and anything
	// unrecognised may have come after the server applied the op.
	return Unknown
}
