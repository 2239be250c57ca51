package sim

import (
	"errors"
	"net"
	"syscall"
)

// ErrNotStarted is the error of an open-loop op that was due but could not
// start before the run ended, because [OpenLoop.MaxInFlight] ops were
// already in flight. Such an op is recorded as [Missed]: the framework
// never issued it. (The ops in flight that held the slots meanwhile carry
// the system's latency.)
var ErrNotStarted = errors.New("sim: op not started: MaxInFlight ops were in flight until the run ended")

// ErrCutOff starts the error of an op that the runner cut off at the end
// of the drain, before the op's own [Workload.Timeout]; such an op is
// recorded as [Missed], and its error goes on with what the op returned.
var ErrCutOff = errors.New("sim: op cut off by the end of the run (still running when the drain ended, before its own Workload.Timeout)")

// ErrHung starts the error of an op of a workload with no
// [Workload.Timeout] that was still running when the drain ended: it had
// no answer for as long as the run waited, and returned only once the
// runner cancelled it. Its outcome is the one the workload's classifier
// gives what it returned (the system's, not the framework's: a client
// that hangs is a finding), and its error goes on with what the op
// returned.
var ErrHung = errors.New("sim: op had no answer through the whole drain (its workload has no Timeout) and returned only when the run cancelled it")

// ErrPanic wraps the value of a panic in an op, a target or a sampler; the
// panic is recovered so that it cannot crash the test binary.
var ErrPanic = errors.New("sim: panic")

// Classify is the default way a [Workload] turns an op's error into an
// [Outcome]:
//
//   - nil is [OK];
//   - [ErrNotStarted] and [ErrCutOff], the framework's own, are [Missed];
//   - an error that shows nothing reached the server is [Failed]: a refused
//     connection (ECONNREFUSED), any *net.OpError from a dial and a DNS
//     error;
//   - everything else is [Unknown]: timeouts and deadlines
//     ([context.DeadlineExceeded], [os.ErrDeadlineExceeded]), cancellation,
//     connection resets and broken pipes after the request was sent,
//     [io.EOF] and [io.ErrUnexpectedEOF], and any error it does not
//     recognise, since it may have come after the server applied the op.
//
// Workloads that know better (an HTTP 503 that the service guarantees is
// returned before any write, say) set [Workload.Classify] and may call
// Classify for the errors they do not handle themselves. Only the runner
// decides that an op was missed: a Workload.Classify that returns Missed
// gets Unknown.
func Classify(err error) Outcome {
	if err == nil {
		return OK
	}
	if errors.Is(err, ErrNotStarted) || errors.Is(err, ErrCutOff) {
		return Missed
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
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
