package toxics

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Link fault kinds of issue 15: a lossy link, connect-time faults,
// per-connection targeting and a connection limit. Their places in the
// mildest-first order are in toxics.go.
const (
	KindLoss        Kind = "loss"
	KindTargeted    Kind = "targeted"
	KindConnLimit   Kind = "conn_limit"
	KindConnectHang Kind = "connect_hang"
)

// Segment and retransmission figures of the lossy-link emulation ([Loss]).
const (
	// SegmentSize is the most bytes one emulated segment carries: the
	// MSS of a 1500-byte Ethernet frame. A write (on the simulated
	// network) or a read chunk (on harness.Link) is cut into segments of
	// at most this size, and each segment is lost or not on its own.
	SegmentSize = 1460
	// MinRTO is the retransmission timeout of a segment lost once
	// (Linux's TCP_RTO_MIN).
	MinRTO = 200 * time.Millisecond
	// MaxRTO bounds the doubling of the retransmission timeout
	// (Linux's TCP_RTO_MAX).
	MaxRTO = 120 * time.Second
	// MaxRetransmissions bounds the tries of one segment (Linux's
	// tcp_retries2): where TCP would give the connection up, the
	// emulation delivers the segment after its last timeout.
	MaxRetransmissions = 15
)

// Loss emulates what TCP makes of a lossy path, as a client sees it: no
// byte is lost or reordered, but a lost segment arrives one
// retransmission timeout late, and everything behind it waits for it
// (head-of-line blocking). The kernel cannot drop packets on these
// machines (no netem), so this is an emulation in user space, not packet
// loss.
//
// Bytes are cut into segments of at most [SegmentSize] bytes. Each
// segment is lost with Probability while the link is in its good state and
// with BadProbability in its bad state; before each segment the state
// moves from good to bad with EnterBad and from bad to good with LeaveBad
// (a Gilbert–Elliott model, which gives losses in bursts). With EnterBad 0
// the loss is independent per segment. A lost segment is sent again after
// the retransmission timeout, [MinRTO] at first and doubling on each
// consecutive loss of the same segment (up to [MaxRTO]); every
// retransmission is lost or not like any segment. Unlike TCP, the
// emulation has no fast retransmit (a loss always costs a full timeout) and
// never gives a connection up: after [MaxRetransmissions] lost tries the
// segment arrives with the last timeout. The draws are seeded by whoever
// applies the fault. Reverting the fault delivers what it holds at once.
type Loss struct {
	Probability    float64
	BadProbability float64
	EnterBad       float64
	LeaveBad       float64
	Direction      Direction
}

func (Loss) Kind() Kind { return KindLoss }
func (f Loss) Validate() error {
	prob := func(field string, p float64, hi float64, reason string) error {
		if math.IsNaN(p) || p < 0 || p > hi || (hi < 1 && p >= hi) {
			return &FieldError{Kind: KindLoss, Field: field, Value: p, Reason: reason}
		}
		return nil
	}
	if err := firstErr(
		prob("probability", f.Probability, 0.99, "must be in [0, 0.99): a segment must get through in the good state"),
		prob("bad_probability", f.BadProbability, 1, "must be in [0, 1]"),
		prob("enter_bad", f.EnterBad, 1, "must be in [0, 1]"),
		prob("leave_bad", f.LeaveBad, 1, "must be in [0, 1]"),
	); err != nil {
		return err
	}
	if f.EnterBad > 0 && f.LeaveBad == 0 {
		return &FieldError{Kind: KindLoss, Field: "leave_bad", Value: f.LeaveBad, Reason: "must be positive when enter_bad is (the bad state must end)"}
	}
	if f.EnterBad == 0 && f.BadProbability != 0 {
		return &FieldError{Kind: KindLoss, Field: "bad_probability", Value: f.BadProbability, Reason: "needs enter_bad > 0 (the bad state is never entered)"}
	}
	if f.Probability == 0 && (f.EnterBad == 0 || f.BadProbability == 0) {
		return &FieldError{Kind: KindLoss, Field: "probability", Value: f.Probability, Reason: "loses nothing: set probability, or enter_bad and bad_probability"}
	}
	return f.Direction.validate(KindLoss)
}
func (f Loss) String() string {
	s := fmt.Sprintf("p=%g", f.Probability)
	if f.EnterBad > 0 {
		s += fmt.Sprintf(" bad=%g enter=%g leave=%g", f.BadProbability, f.EnterBad, f.LeaveBad)
	}
	return call(KindLoss, withDir(s, f.Direction))
}

// ConnectHang makes new connections hang at connect time; live
// connections are not touched. With Accepted false, the proxy stops
// accepting and its listen backlog fills, so a dial hangs in the TCP
// handshake until the client's connect timeout (a dial made while the
// backlog still has room completes, and waits there like an accepted one
// that nothing answers). With Accepted true, dials complete and the proxy
// accepts them but never dials the upstream: the client's writes are
// taken and nothing answers. Reverted, the hung connections go on:
// handshakes complete (at the client's next SYN retransmission) and held
// connections are forwarded with what they sent.
type ConnectHang struct {
	Accepted bool
}

func (ConnectHang) Kind() Kind      { return KindConnectHang }
func (ConnectHang) Validate() error { return nil }
func (f ConnectHang) String() string {
	if f.Accepted {
		return call(KindConnectHang, "accepted")
	}
	return call(KindConnectHang, "handshake")
}

// ConnLimit lets at most Max connections through at once. Connections open
// when the fault begins stay, even past Max; a new one past the limit is
// reset at once (an RST: the client reads ECONNRESET), or, with Hold, waits
// as if in the listen backlog (its dial completes, nothing answers) until
// fewer than Max are open, first come first served. Reverted, held
// connections go on.
type ConnLimit struct {
	Max  int
	Hold bool
}

func (ConnLimit) Kind() Kind { return KindConnLimit }
func (f ConnLimit) Validate() error {
	if f.Max < 0 {
		return &FieldError{Kind: KindConnLimit, Field: "max", Value: f.Max, Reason: "must not be negative"}
	}
	return nil
}
func (f ConnLimit) String() string {
	s := fmt.Sprintf("max=%d", f.Max)
	if f.Hold {
		s += " hold"
	}
	return call(KindConnLimit, s)
}

// Opened says which connections a [Conns] selector takes by when they
// opened. The zero value, AnyTime, takes every connection.
type Opened uint8

const (
	// AnyTime takes connections whenever they opened.
	AnyTime Opened = iota
	// Before takes only connections open when the fault began.
	Before
	// After takes only connections opened while the fault is active.
	After
)

func (o Opened) String() string {
	switch o {
	case AnyTime:
		return "any"
	case Before:
		return "before"
	case After:
		return "after"
	}
	return fmt.Sprintf("Opened(%d)", uint8(o))
}

// ParseOpened parses "any", "before" or "after".
func ParseOpened(s string) (Opened, error) {
	switch s {
	case "any":
		return AnyTime, nil
	case "before":
		return Before, nil
	case "after":
		return After, nil
	}
	return 0, fmt.Errorf("toxics: opened %q is not one of any, before, after", s)
}

// Conns selects connections: those matching every field that is set. The
// zero value selects every connection.
type Conns struct {
	// Share, when in (0, 1), takes each connection with that probability,
	// drawn once per connection from the seed of whoever applies the
	// fault. 0 (or 1) takes every connection.
	Share float64
	// Nth, when positive, takes only the Nth connection opened after the
	// fault began (1 is the first).
	Nth int
	// Opened takes connections by when they opened.
	Opened Opened
}

// Picks reports whether c takes a connection: before says it was open when
// the fault began; nth is its place among the connections opened since
// (1 for the first; ignored when before); u is a uniform draw in [0, 1)
// made once for that connection.
func (c Conns) Picks(before bool, nth uint64, u float64) bool {
	switch {
	case c.Opened == Before && !before, c.Opened == After && before:
		return false
	case c.Nth > 0 && (before || nth != uint64(c.Nth)):
		return false
	case c.Share > 0 && c.Share < 1 && u >= c.Share:
		return false
	}
	return true
}

func (c Conns) validate() error {
	if math.IsNaN(c.Share) || c.Share < 0 || c.Share > 1 {
		return &FieldError{Kind: KindTargeted, Field: "share", Value: c.Share, Reason: "must be in [0, 1] (0: every connection)"}
	}
	if c.Nth < 0 {
		return &FieldError{Kind: KindTargeted, Field: "nth", Value: c.Nth, Reason: "must not be negative (0: any)"}
	}
	if c.Opened > After {
		return &FieldError{Kind: KindTargeted, Field: "opened", Value: uint8(c.Opened), Reason: "is not one of any, before, after"}
	}
	if c.Nth > 0 && c.Opened == Before {
		return &FieldError{Kind: KindTargeted, Field: "nth", Value: c.Nth, Reason: "counts connections opened after the fault began, and opened is before"}
	}
	return nil
}

func (c Conns) String() string {
	var parts []string
	if c.Share > 0 && c.Share < 1 {
		parts = append(parts, fmt.Sprintf("share=%g", c.Share))
	}
	if c.Nth > 0 {
		parts = append(parts, fmt.Sprintf("nth=%d", c.Nth))
	}
	if c.Opened != AnyTime {
		parts = append(parts, "opened "+c.Opened.String())
	}
	if len(parts) == 0 {
		return "all"
	}
	return strings.Join(parts, " ")
}

// Targeted applies a link fault to the connections Conns selects only,
// so that, say, half of a pool can be blackholed:
//
//	toxics.Targeted{Fault: toxics.Blackhole{}, Conns: toxics.Conns{Share: 0.5, Opened: toxics.Before}}
//
// The fault acts on a selected connection exactly as it would alone, with
// its times (a timeout's After, a data limit's bytes) counted from when
// the fault began or the connection opened, whichever is later. Fault may
// be any link fault that acts on connections one by one: not Down,
// ConnLimit or ConnectHang, which act on the listener, and not another
// Targeted.
type Targeted struct {
	Fault LinkFault
	Conns Conns
}

func (Targeted) Kind() Kind { return KindTargeted }
func (f Targeted) Validate() error {
	switch inner := f.Fault.(type) {
	case nil:
		return &FieldError{Kind: KindTargeted, Field: "fault", Value: nil, Reason: "is required"}
	case Down, ConnLimit, ConnectHang, Targeted:
		return &FieldError{Kind: KindTargeted, Field: "fault", Value: inner.Kind(), Reason: "acts on the listener or is targeted already; it takes a fault that acts on connections one by one"}
	default:
		if err := inner.Validate(); err != nil {
			return err
		}
	}
	return f.Conns.validate()
}
func (f Targeted) String() string {
	inner := "<nil>"
	if f.Fault != nil {
		inner = f.Fault.String()
	}
	return call(KindTargeted, inner+" on "+f.Conns.String())
}

func (Loss) fault()        {}
func (ConnectHang) fault() {}
func (ConnLimit) fault()   {}
func (Targeted) fault()    {}

func (Loss) linkFault()        {}
func (ConnectHang) linkFault() {}
func (ConnLimit) linkFault()   {}
func (Targeted) linkFault()    {}

// Untarget returns the fault a link fault acts with and the connections it
// selects: a [Targeted]'s inner fault and selector, or f itself and the
// selector of every connection.
func Untarget(f Fault) (Fault, Conns) {
	if t, ok := f.(Targeted); ok && t.Fault != nil {
		return t.Fault, t.Conns
	}
	return f, Conns{}
}

// SegmentDelay draws how late one segment arrives under f: the sum of the
// retransmission timeouts of its lost tries ([MinRTO], doubling up to
// [MaxRTO], at most [MaxRetransmissions] tries). bad is the
// Gilbert–Elliott state of the path, carried from segment to segment;
// draw returns uniform numbers in [0, 1), two per try (the state's move,
// then the loss). The Link and the simulated network both draw with it,
// from their seeds.
func (f Loss) SegmentDelay(bad *bool, draw func() float64) time.Duration {
	var d time.Duration
	rto := MinRTO
	for try := 0; try < MaxRetransmissions && f.lost(bad, draw(), draw()); try++ {
		d += rto
		rto = min(2*rto, MaxRTO)
	}
	return d
}

// lost moves the Gilbert–Elliott state with the draw u and reports
// whether the segment sent then is lost, with the draw v.
func (f Loss) lost(bad *bool, u, v float64) bool {
	if *bad {
		if u < f.LeaveBad {
			*bad = false
		}
	} else if u < f.EnterBad {
		*bad = true
	}
	p := f.Probability
	if *bad {
		p = f.BadProbability
	}
	return v < p
}
