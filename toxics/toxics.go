package toxics

import (
	"fmt"
	"math"
	"time"
)

// Kind names a fault in schedules, logs and JSON.
type Kind string

// Link fault kinds, mildest first. Generators that shrink toward index 0
// therefore shrink toward milder faults.
const (
	KindLatency   Kind = "latency"
	KindBandwidth Kind = "bandwidth"
	KindSlicer    Kind = "slicer"
	KindSlowClose Kind = "slow_close"
	KindCorrupt   Kind = "corrupt"
	KindDataLimit Kind = "data_limit"
	KindTimeout   Kind = "timeout"
	KindBlackhole Kind = "blackhole"
	KindReset     Kind = "reset"
	KindDown      Kind = "down"
)

// Node fault kinds, mildest first.
const (
	KindPause   Kind = "pause"
	KindRestart Kind = "restart"
	KindStop    Kind = "stop"
	KindCrash   Kind = "crash"
)

var (
	linkKinds = []Kind{KindLatency,
		KindLoss, KindTargeted,
		KindBandwidth, KindSlicer, KindSlowClose,
		KindConnLimit,
		KindCorrupt,
		KindDataLimit, KindTimeout,
		KindConnectHang,
		KindBlackhole, KindReset, KindDown}
	nodeKinds = []Kind{KindPause, KindRestart, KindStop, KindCrash}
	dataKinds = []Kind{KindData} // node kinds too; see data.go
	// protocolKinds are link kinds too; see resp.go.
	protocolKinds = []Kind{KindRedisDelay, KindRedisError, KindPgError, KindPgRefuse}
)

// LinkKinds returns every link fault kind, mildest first.
func LinkKinds() []Kind { return append([]Kind(nil), linkKinds...) }

// NodeKinds returns every node fault kind, mildest first.
func NodeKinds() []Kind { return append([]Kind(nil), nodeKinds...) }

// IsLink reports whether k is a link fault kind.
func (k Kind) IsLink() bool { return contains(linkKinds, k) || contains(protocolKinds, k) }

// IsNode reports whether k is a node fault kind.
func (k Kind) IsNode() bool { return contains(nodeKinds, k) || contains(dataKinds, k) }

func contains(ks []Kind, k Kind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

// Fault is one thing that can go wrong. The concrete types in this package
// are the only implementations: [LinkFault], [NodeFault] or [NetworkFault].
type Fault interface {
	// Kind names the fault.
	Kind() Kind
	// Validate returns a *FieldError naming the first field whose value
	// is out of range, or nil.
	Validate() error
	// String is a compact one-line form for logs, such as
	// "latency(200ms±20ms downstream)".
	String() string
	fault()
}

// LinkFault acts on the connections between a client and a dependency.
type LinkFault interface {
	Fault
	linkFault()
}

// NodeFault acts on a dependency itself (a container or process).
type NodeFault interface {
	Fault
	nodeFault()
}

// Direction says which way of a link a fault affects. The zero value, Both,
// affects both ways.
type Direction uint8

const (
	// Both affects data in both directions.
	Both Direction = iota
	// Upstream affects data from the client to the dependency.
	Upstream
	// Downstream affects data from the dependency to the client.
	Downstream
)

func (d Direction) String() string {
	switch d {
	case Both:
		return "both"
	case Upstream:
		return "upstream"
	case Downstream:
		return "downstream"
	}
	return fmt.Sprintf("Direction(%d)", uint8(d))
}

// Has reports whether the direction d includes the one-way direction w
// (Upstream or Downstream).
func (d Direction) Has(w Direction) bool { return d == Both || d == w }

// ParseDirection parses "both", "upstream" or "downstream".
func ParseDirection(s string) (Direction, error) {
	switch s {
	case "both":
		return Both, nil
	case "upstream":
		return Upstream, nil
	case "downstream":
		return Downstream, nil
	}
	return 0, fmt.Errorf("toxics: direction %q is not one of both, upstream, downstream", s)
}

func (d Direction) validate(k Kind) error {
	if d > Downstream {
		return &FieldError{Kind: k, Field: "direction", Value: uint8(d), Reason: "is not one of both, upstream, downstream"}
	}
	return nil
}

// FieldError says which field of which fault holds a bad value.
type FieldError struct {
	Kind   Kind
	Field  string
	Value  any
	Reason string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("toxics: %s.%s = %v: %s", e.Kind, e.Field, e.Value, e.Reason)
}

// Validate validates f, treating nil as an error.
func Validate(f Fault) error {
	if f == nil {
		return fmt.Errorf("toxics: fault is nil")
	}
	return f.Validate()
}

func nonNegative(k Kind, field string, d time.Duration) error {
	if d < 0 {
		return &FieldError{Kind: k, Field: field, Value: d, Reason: "must not be negative"}
	}
	return nil
}

func positive(k Kind, field string, d time.Duration) error {
	if d <= 0 {
		return &FieldError{Kind: k, Field: field, Value: d, Reason: "must be positive"}
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func withDir(s string, d Direction) string {
	if d == Both {
		return s
	}
	if s == "" {
		return d.String()
	}
	return s + " " + d.String()
}

func call(k Kind, args string) string { return string(k) + "(" + args + ")" }

// Latency delays every chunk of data by Delay, plus or minus a uniformly
// drawn Jitter (the draw is seeded by whoever applies the fault).
type Latency struct {
	Delay     time.Duration
	Jitter    time.Duration
	Direction Direction
}

func (Latency) Kind() Kind { return KindLatency }
func (f Latency) Validate() error {
	if err := firstErr(positive(KindLatency, "delay", f.Delay), nonNegative(KindLatency, "jitter", f.Jitter)); err != nil {
		return err
	}
	if f.Jitter > f.Delay {
		return &FieldError{Kind: KindLatency, Field: "jitter", Value: f.Jitter, Reason: fmt.Sprintf("must not exceed delay %v", f.Delay)}
	}
	return f.Direction.validate(KindLatency)
}
func (f Latency) String() string {
	s := f.Delay.String()
	if f.Jitter > 0 {
		s += "±" + f.Jitter.String()
	}
	return call(KindLatency, withDir(s, f.Direction))
}

// Bandwidth limits throughput to Rate bytes per second. A Rate of 0 stalls
// the data; when the fault is reverted the buffered data is delivered and
// connections survive.
type Bandwidth struct {
	Rate      int64
	Direction Direction
}

func (Bandwidth) Kind() Kind { return KindBandwidth }
func (f Bandwidth) Validate() error {
	if f.Rate < 0 {
		return &FieldError{Kind: KindBandwidth, Field: "rate", Value: f.Rate, Reason: "must not be negative (bytes per second)"}
	}
	return f.Direction.validate(KindBandwidth)
}
func (f Bandwidth) String() string {
	return call(KindBandwidth, withDir(fmt.Sprintf("%dB/s", f.Rate), f.Direction))
}

// Slicer cuts data into chunks of about AverageSize bytes (plus or minus
// SizeVariation) sent Delay apart: it exercises clients that assume one
// read returns one message.
type Slicer struct {
	AverageSize   int
	SizeVariation int
	Delay         time.Duration
	Direction     Direction
}

func (Slicer) Kind() Kind { return KindSlicer }
func (f Slicer) Validate() error {
	if f.AverageSize < 1 {
		return &FieldError{Kind: KindSlicer, Field: "average_size", Value: f.AverageSize, Reason: "must be at least 1 byte"}
	}
	if f.SizeVariation < 0 || f.SizeVariation >= f.AverageSize {
		return &FieldError{Kind: KindSlicer, Field: "size_variation", Value: f.SizeVariation, Reason: fmt.Sprintf("must be at least 0 and less than average_size %d", f.AverageSize)}
	}
	return firstErr(nonNegative(KindSlicer, "delay", f.Delay), f.Direction.validate(KindSlicer))
}
func (f Slicer) String() string {
	s := fmt.Sprintf("%dB", f.AverageSize)
	if f.SizeVariation > 0 {
		s += fmt.Sprintf("±%dB", f.SizeVariation)
	}
	if f.Delay > 0 {
		s += " every " + f.Delay.String()
	}
	return call(KindSlicer, withDir(s, f.Direction))
}

// SlowClose delays the close of a connection by Delay after the other side
// closed it.
type SlowClose struct {
	Delay     time.Duration
	Direction Direction
}

func (SlowClose) Kind() Kind { return KindSlowClose }
func (f SlowClose) Validate() error {
	return firstErr(positive(KindSlowClose, "delay", f.Delay), f.Direction.validate(KindSlowClose))
}
func (f SlowClose) String() string {
	return call(KindSlowClose, withDir(f.Delay.String(), f.Direction))
}

// Corrupt flips one random bit in each byte with the given Probability
// (0 < Probability <= 1). The draws are seeded by whoever applies the
// fault. It stands for the data failures a client must survive without
// hanging or crashing.
type Corrupt struct {
	Probability float64
	Direction   Direction
}

func (Corrupt) Kind() Kind { return KindCorrupt }
func (f Corrupt) Validate() error {
	if math.IsNaN(f.Probability) || f.Probability <= 0 || f.Probability > 1 {
		return &FieldError{Kind: KindCorrupt, Field: "probability", Value: f.Probability, Reason: "must be in (0, 1]"}
	}
	return f.Direction.validate(KindCorrupt)
}
func (f Corrupt) String() string {
	return call(KindCorrupt, withDir(fmt.Sprintf("p=%g", f.Probability), f.Direction))
}

// DataLimit closes a connection once Bytes bytes have passed in the
// fault's direction since the fault began (or since the connection opened,
// for connections opened during the fault).
type DataLimit struct {
	Bytes     int64
	Direction Direction
}

func (DataLimit) Kind() Kind { return KindDataLimit }
func (f DataLimit) Validate() error {
	if f.Bytes < 0 {
		return &FieldError{Kind: KindDataLimit, Field: "bytes", Value: f.Bytes, Reason: "must not be negative"}
	}
	return f.Direction.validate(KindDataLimit)
}
func (f DataLimit) String() string {
	return call(KindDataLimit, withDir(fmt.Sprintf("%dB", f.Bytes), f.Direction))
}

// Timeout drops all data and closes each connection After the fault began
// (or After it opened, for connections opened during the fault), whether
// or not data flows. After 0 closes at once: live connections when the
// fault begins, new ones as soon as they are accepted (a dial succeeds).
// The close is a clean one on both sides: the client reads what had
// arrived before the fault, then EOF, never a reset, whatever it sent
// meanwhile and however the timing falls; harness.Link and sim's network
// both do exactly this.
type Timeout struct {
	After     time.Duration
	Direction Direction
}

func (Timeout) Kind() Kind { return KindTimeout }
func (f Timeout) Validate() error {
	return firstErr(nonNegative(KindTimeout, "after", f.After), f.Direction.validate(KindTimeout))
}
func (f Timeout) String() string {
	return call(KindTimeout, withDir(f.After.String(), f.Direction))
}

// Blackhole silently drops data; connections stay open, and when the fault
// is reverted they carry data again (what was sent meanwhile is lost).
type Blackhole struct {
	Direction Direction
}

func (Blackhole) Kind() Kind { return KindBlackhole }
func (f Blackhole) Validate() error {
	return f.Direction.validate(KindBlackhole)
}
func (f Blackhole) String() string { return call(KindBlackhole, withDir("", f.Direction)) }

// Reset aborts live connections with a TCP RST and resets new ones as soon
// as they are accepted.
type Reset struct{}

func (Reset) Kind() Kind       { return KindReset }
func (Reset) Validate() error  { return nil }
func (f Reset) String() string { return call(KindReset, "") }

// Down refuses new connections and closes live ones, as if the dependency's
// host went away.
type Down struct{}

func (Down) Kind() Kind       { return KindDown }
func (Down) Validate() error  { return nil }
func (f Down) String() string { return call(KindDown, "") }

// Pause freezes the node (SIGSTOP, docker pause) until the fault is
// reverted. Its connections stay open but nothing answers.
type Pause struct{}

func (Pause) Kind() Kind       { return KindPause }
func (Pause) Validate() error  { return nil }
func (f Pause) String() string { return call(KindPause, "") }

// Restart stops the node gracefully and starts it again at once. Reverting
// it does nothing.
type Restart struct{}

func (Restart) Kind() Kind       { return KindRestart }
func (Restart) Validate() error  { return nil }
func (f Restart) String() string { return call(KindRestart, "") }

// Stop shuts the node down gracefully (SIGTERM, waiting up to Grace before
// killing it; 0 means the runtime's default); reverting the fault starts it
// again.
type Stop struct {
	Grace time.Duration
}

func (Stop) Kind() Kind { return KindStop }
func (f Stop) Validate() error {
	return nonNegative(KindStop, "grace", f.Grace)
}
func (f Stop) String() string {
	if f.Grace == 0 {
		return call(KindStop, "")
	}
	return call(KindStop, "grace="+f.Grace.String())
}

// Crash kills the node with no clean shutdown (SIGKILL); reverting the
// fault starts it again.
type Crash struct{}

func (Crash) Kind() Kind       { return KindCrash }
func (Crash) Validate() error  { return nil }
func (f Crash) String() string { return call(KindCrash, "") }

func (Latency) fault()   {}
func (Bandwidth) fault() {}
func (Slicer) fault()    {}
func (SlowClose) fault() {}
func (Corrupt) fault()   {}
func (DataLimit) fault() {}
func (Timeout) fault()   {}
func (Blackhole) fault() {}
func (Reset) fault()     {}
func (Down) fault()      {}
func (Pause) fault()     {}
func (Restart) fault()   {}
func (Stop) fault()      {}
func (Crash) fault()     {}

func (Latency) linkFault()   {}
func (Bandwidth) linkFault() {}
func (Slicer) linkFault()    {}
func (SlowClose) linkFault() {}
func (Corrupt) linkFault()   {}
func (DataLimit) linkFault() {}
func (Timeout) linkFault()   {}
func (Blackhole) linkFault() {}
func (Reset) linkFault()     {}
func (Down) linkFault()      {}

func (Pause) nodeFault()   {}
func (Restart) nodeFault() {}
func (Stop) nodeFault()    {}
func (Crash) nodeFault()   {}

// DirectionOf returns the direction a link fault affects; faults that act
// on whole connections (Reset, Down) and node faults return Both.
func DirectionOf(f Fault) Direction {
	switch f := f.(type) {
	case Latency:
		return f.Direction
	case Bandwidth:
		return f.Direction
	case Slicer:
		return f.Direction
	case SlowClose:
		return f.Direction
	case Corrupt:
		return f.Direction
	case DataLimit:
		return f.Direction
	case Timeout:
		return f.Direction
	case Blackhole:
		return f.Direction
	case Loss:
		return f.Direction
	case Targeted:
		return DirectionOf(f.Fault)
	}
	return Both
}
