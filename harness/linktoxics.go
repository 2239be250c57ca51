package harness

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/Shopify/toxiproxy/v2/stream"
	tpx "github.com/Shopify/toxiproxy/v2/toxics"

	"github.com/shakedown/shakedown/toxics"
)

// The custom toxics below replace Toxiproxy's built-in ones, which draw
// from the global math/rand (jitter, slicer sizes), count bandwidth in KB/s
// and log through zerolog's global logger, restart their timers on every
// chunk (timeout), or stop reading their input once they close (limit_data),
// which strands the goroutines in front of them.
//
// Rules every toxic here follows, because Toxiproxy interrupts a stub not
// only to remove its toxic but also to re-wire it when a neighbour is added
// or removed (and then runs Pipe again on the same stub):
//   - every blocking step selects on stub.Interrupt as well;
//   - anything that must survive a re-wire (a chunk not yet sent, a timer,
//     the random source) lives in stub.State, never in Pipe's locals;
//   - Cleanup (called only when the toxic is removed) flushes what the
//     toxic still holds, so a revert delivers instead of dropping;
//   - a toxic that closes its stream early keeps draining its input until
//     the input closes, so the stubs in front of it never block forever.

// Type names in Toxiproxy's global registry.
const (
	toxicLatency   = "shakedown_latency"
	toxicBandwidth = "shakedown_bandwidth"
	toxicSlicer    = "shakedown_slicer"
	toxicSlowClose = "shakedown_slow_close"
	toxicCorrupt   = "shakedown_corrupt"
	toxicDataLimit = "shakedown_data_limit"
	toxicTimeout   = "shakedown_timeout"
	toxicBlackhole = "shakedown_blackhole"
)

var toxicsRegistered sync.Once

// registerLinkToxics adds the custom toxics to Toxiproxy's registry (a process
// global of Toxiproxy's, written once, never changed afterwards).
func registerLinkToxics() {
	toxicsRegistered.Do(func() {
		tpx.Register(toxicLatency, new(latencyToxic))
		tpx.Register(toxicBandwidth, new(bandwidthToxic))
		tpx.Register(toxicSlicer, new(slicerToxic))
		tpx.Register(toxicSlowClose, new(slowCloseToxic))
		tpx.Register(toxicCorrupt, new(corruptToxic))
		tpx.Register(toxicDataLimit, new(dataLimitToxic))
		tpx.Register(toxicTimeout, new(timeoutToxic))
		tpx.Register(toxicBlackhole, new(blackholeToxic))
	})
}

// toxicJSON is one toxic as Toxiproxy's AddToxicJson reads it.
type toxicJSON struct {
	Name       string  `json:"name"`
	Type       string  `json:"type"`
	Stream     string  `json:"stream"`
	Toxicity   float32 `json:"toxicity"`
	Attributes any     `json:"attributes"`
}

// toxicsFor translates a validated toxic-backed link fault into one toxic per
// direction it affects. Each direction gets its own seed derived from seed.
func toxicsFor(f toxics.LinkFault, id, seed uint64) ([]toxicJSON, error) {
	var out []toxicJSON
	for _, d := range []toxics.Direction{toxics.Upstream, toxics.Downstream} {
		if !toxics.DirectionOf(f).Has(d) {
			continue
		}
		dseed := seedMix(seed, uint64(d))
		var typ string
		var attrs any
		switch f := f.(type) {
		case toxics.Latency:
			typ, attrs = toxicLatency, &latencyToxic{Delay: f.Delay, Jitter: f.Jitter, Seed: dseed}
		case toxics.Bandwidth:
			typ, attrs = toxicBandwidth, &bandwidthToxic{Rate: f.Rate}
		case toxics.Slicer:
			typ, attrs = toxicSlicer, &slicerToxic{AverageSize: f.AverageSize, SizeVariation: f.SizeVariation, Delay: f.Delay, Seed: dseed}
		case toxics.SlowClose:
			typ, attrs = toxicSlowClose, &slowCloseToxic{Delay: f.Delay}
		case toxics.Corrupt:
			typ, attrs = toxicCorrupt, &corruptToxic{Probability: f.Probability, Seed: dseed}
		case toxics.DataLimit:
			typ, attrs = toxicDataLimit, &dataLimitToxic{Bytes: f.Bytes}
		case toxics.Timeout:
			typ, attrs = toxicTimeout, &timeoutToxic{After: f.After}
		case toxics.Blackhole:
			typ, attrs = toxicBlackhole, &blackholeToxic{}
		default:
			return nil, fmt.Errorf("%s is not carried by a toxic", f.Kind())
		}
		dir := "upstream"
		if d == toxics.Downstream {
			dir = "downstream"
		}
		out = append(out, toxicJSON{
			Name:       fmt.Sprintf("f%d_%s_%s", id, f.Kind(), dir),
			Type:       typ,
			Stream:     dir,
			Toxicity:   1,
			Attributes: attrs,
		})
	}
	return out, nil
}

func (t toxicJSON) encode() ([]byte, error) { return json.Marshal(t) }

// mix derives an independent 64-bit seed from a seed and a salt
// (SplitMix64 finaliser).
func seedMix(seed, salt uint64) uint64 {
	z := seed + 0x9e3779b97f4a7c15*(salt+1)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func seededRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seedMix(seed, 0x5eed)))
}

// send delivers c downstream; false if the stub was interrupted first.
func stubSend(stub *tpx.ToxicStub, c *stream.StreamChunk) bool {
	select {
	case stub.Output <- c:
		return true
	case <-stub.Interrupt:
		return false
	}
}

// wait waits until t; false if the stub was interrupted first.
func stubWait(stub *tpx.ToxicStub, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		select {
		case <-stub.Interrupt:
			return false
		default:
			return true
		}
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-stub.Interrupt:
		return false
	}
}

// receive takes the next chunk; ok is false if the stub was interrupted.
// A nil chunk means the input has closed.
func stubReceive(stub *tpx.ToxicStub) (c *stream.StreamChunk, ok bool) {
	select {
	case c = <-stub.Input:
		return c, true
	case <-stub.Interrupt:
		return nil, false
	}
}

// drain discards the input until it closes; used after a toxic has closed
// its output, so that the stubs in front of it can still finish. The stub
// is closed, so nothing can interrupt it any more.
func stubDrain(stub *tpx.ToxicStub) {
	for range stub.Input {
	}
}

// heldChunk is the part of a toxic's state that holds a chunk it has taken but
// not yet passed on.
type heldChunk struct {
	out *stream.StreamChunk
}

// flush passes the heldChunk chunk on; Cleanup calls it when the toxic is
// removed, so a revert delivers what the toxic was holding back.
func (h *heldChunk) flush(stub *tpx.ToxicStub) {
	if h.out != nil {
		stub.Output <- h.out
		h.out = nil
	}
}

// latencyToxic delays every chunk by Delay ± Jitter from the moment it was
// read, keeping order. Jitter is drawn from a source seeded with Seed.
type latencyToxic struct {
	Delay  time.Duration `json:"delay"`
	Jitter time.Duration `json:"jitter"`
	Seed   uint64        `json:"seed"`
}

type latencyState struct {
	heldChunk
	rng *rand.Rand
	due time.Time
}

func (t *latencyToxic) GetBufferSize() int { return 1024 }
func (t *latencyToxic) NewState() any      { return &latencyState{rng: seededRand(t.Seed)} }
func (t *latencyToxic) Cleanup(stub *tpx.ToxicStub) {
	stub.State.(*latencyState).flush(stub)
}

// draw returns one delay in [Delay-Jitter, Delay+Jitter].
func (t *latencyToxic) draw(r *rand.Rand) time.Duration {
	if t.Jitter <= 0 {
		return t.Delay
	}
	return t.Delay - t.Jitter + time.Duration(r.Int64N(2*int64(t.Jitter)+1))
}

func (t *latencyToxic) Pipe(stub *tpx.ToxicStub) {
	st := stub.State.(*latencyState)
	for {
		if st.out == nil {
			c, ok := stubReceive(stub)
			if !ok {
				return
			}
			if c == nil {
				stub.Close()
				return
			}
			st.out, st.due = c, c.Timestamp.Add(t.draw(st.rng))
		}
		if !stubWait(stub, st.due) {
			return
		}
		// A later latency toxic measures from here, so stacked delays add.
		st.out.Timestamp = st.due
		if !stubSend(stub, st.out) {
			return
		}
		st.out = nil
	}
}

// bandwidthToxic passes at most Rate bytes per second, in pieces of about
// 50 ms worth of data. Rate 0 holds everything until the toxic is removed.
type bandwidthToxic struct {
	Rate int64 `json:"rate"`
}

type bandwidthState struct {
	heldChunk
	next time.Time // when the next piece may go
}

// bandwidthBurst is how far behind schedule the toxic may fall (after an
// idle spell) before it stops catching up.
const bandwidthBurst = 50 * time.Millisecond

func (t *bandwidthToxic) NewState() any { return new(bandwidthState) }
func (t *bandwidthToxic) Cleanup(stub *tpx.ToxicStub) {
	stub.State.(*bandwidthState).flush(stub)
}

func (t *bandwidthToxic) Pipe(stub *tpx.ToxicStub) {
	st := stub.State.(*bandwidthState)
	if t.Rate <= 0 {
		<-stub.Interrupt // stall until removed (Cleanup flushes) or re-wired
		return
	}
	piece := max(1, t.Rate/20)
	for {
		if st.out == nil {
			c, ok := stubReceive(stub)
			if !ok {
				return
			}
			if c == nil {
				stub.Close()
				return
			}
			st.out = c
		}
		now := time.Now()
		if st.next.IsZero() || now.Sub(st.next) > bandwidthBurst {
			st.next = now
		}
		if !stubWait(stub, st.next) {
			return
		}
		n := min(int64(len(st.out.Data)), piece)
		part := &stream.StreamChunk{Data: st.out.Data[:n], Timestamp: st.out.Timestamp}
		if !stubSend(stub, part) {
			return
		}
		st.next = st.next.Add(time.Duration(float64(n) / float64(t.Rate) * float64(time.Second)))
		st.out.Data = st.out.Data[n:]
		if len(st.out.Data) == 0 {
			st.out = nil
		}
	}
}

// slicerToxic cuts chunks into slices of AverageSize ± SizeVariation bytes
// (sizes drawn from a source seeded with Seed) sent Delay apart.
type slicerToxic struct {
	AverageSize   int           `json:"average_size"`
	SizeVariation int           `json:"size_variation"`
	Delay         time.Duration `json:"delay"`
	Seed          uint64        `json:"seed"`
}

type slicerState struct {
	heldChunk
	rng  *rand.Rand
	size int       // size of the next slice, 0 if not drawn yet
	next time.Time // when the next slice may go
}

func (t *slicerToxic) NewState() any { return &slicerState{rng: seededRand(t.Seed)} }
func (t *slicerToxic) Cleanup(stub *tpx.ToxicStub) {
	stub.State.(*slicerState).flush(stub)
}

// draw returns one slice size in [AverageSize-SizeVariation,
// AverageSize+SizeVariation], at least 1.
func (t *slicerToxic) draw(r *rand.Rand) int {
	n := t.AverageSize
	if t.SizeVariation > 0 {
		n += r.IntN(2*t.SizeVariation+1) - t.SizeVariation
	}
	return max(1, n)
}

func (t *slicerToxic) Pipe(stub *tpx.ToxicStub) {
	st := stub.State.(*slicerState)
	for {
		if st.out == nil {
			c, ok := stubReceive(stub)
			if !ok {
				return
			}
			if c == nil {
				stub.Close()
				return
			}
			st.out = c
		}
		if st.size == 0 {
			st.size = t.draw(st.rng)
		}
		if !stubWait(stub, st.next) {
			return
		}
		n := min(len(st.out.Data), st.size)
		part := &stream.StreamChunk{Data: st.out.Data[:n], Timestamp: st.out.Timestamp}
		if !stubSend(stub, part) {
			return
		}
		st.size = 0
		st.next = time.Now().Add(t.Delay)
		st.out.Data = st.out.Data[n:]
		if len(st.out.Data) == 0 {
			st.out = nil
		}
	}
}

// slowCloseToxic passes data through and, once its input closes, waits
// Delay before closing its output.
type slowCloseToxic struct {
	Delay time.Duration `json:"delay"`
}

type slowCloseState struct {
	heldChunk
	closeAt time.Time // zero until the input has closed
}

func (t *slowCloseToxic) NewState() any { return new(slowCloseState) }
func (t *slowCloseToxic) Cleanup(stub *tpx.ToxicStub) {
	stub.State.(*slowCloseState).flush(stub)
	// If the input has closed already, Toxiproxy's removal reads the
	// closed input again and closes the stream at once.
}

func (t *slowCloseToxic) Pipe(stub *tpx.ToxicStub) {
	st := stub.State.(*slowCloseState)
	for {
		if !st.closeAt.IsZero() {
			if !stubWait(stub, st.closeAt) {
				return
			}
			stub.Close()
			return
		}
		if st.out == nil {
			c, ok := stubReceive(stub)
			if !ok {
				return
			}
			if c == nil {
				st.closeAt = time.Now().Add(t.Delay)
				continue
			}
			st.out = c
		}
		if !stubSend(stub, st.out) {
			return
		}
		st.out = nil
	}
}

// corruptToxic flips one random bit in each byte with probability
// Probability, drawing from a source seeded with Seed.
type corruptToxic struct {
	Probability float64 `json:"probability"`
	Seed        uint64  `json:"seed"`
}

type corruptState struct {
	heldChunk
	rng  *rand.Rand
	skip int64 // clean bytes before the next corrupted one; -1 if not drawn
}

func (t *corruptToxic) NewState() any { return &corruptState{rng: seededRand(t.Seed), skip: -1} }
func (t *corruptToxic) Cleanup(stub *tpx.ToxicStub) {
	stub.State.(*corruptState).flush(stub)
}

// gap draws how many clean bytes come before the next corrupted one: a
// geometric draw, so the cost is per corrupted byte, not per byte.
func (t *corruptToxic) gap(r *rand.Rand) int64 {
	if t.Probability >= 1 {
		return 0
	}
	u := 1 - r.Float64() // (0, 1]
	g := math.Floor(math.Log(u) / math.Log1p(-t.Probability))
	if g > 1<<53 {
		return 1 << 53
	}
	return int64(g)
}

// corrupt flips bits of data in place.
func (t *corruptToxic) corrupt(st *corruptState, data []byte) {
	i := int64(0)
	n := int64(len(data))
	for {
		if st.skip < 0 {
			st.skip = t.gap(st.rng)
		}
		if st.skip >= n-i {
			st.skip -= n - i
			return
		}
		i += st.skip
		data[i] ^= 1 << st.rng.IntN(8)
		i++
		st.skip = -1
	}
}

func (t *corruptToxic) Pipe(stub *tpx.ToxicStub) {
	st := stub.State.(*corruptState)
	for {
		if st.out == nil {
			c, ok := stubReceive(stub)
			if !ok {
				return
			}
			if c == nil {
				stub.Close()
				return
			}
			// The chunk is this link's own copy (Toxiproxy copies what it
			// reads), so it may be changed in place.
			t.corrupt(st, c.Data)
			st.out = c
		}
		if !stubSend(stub, st.out) {
			return
		}
		st.out = nil
	}
}

// dataLimitToxic passes Bytes bytes, then closes the stream.
type dataLimitToxic struct {
	Bytes int64 `json:"bytes"`
}

type dataLimitState struct {
	heldChunk
	passed int64
}

func (t *dataLimitToxic) NewState() any { return new(dataLimitState) }
func (t *dataLimitToxic) Cleanup(stub *tpx.ToxicStub) {
	stub.State.(*dataLimitState).flush(stub)
}

func (t *dataLimitToxic) Pipe(stub *tpx.ToxicStub) {
	st := stub.State.(*dataLimitState)
	for {
		if st.out == nil && st.passed >= t.Bytes {
			stub.Close()
			stubDrain(stub)
			return
		}
		if st.out == nil {
			c, ok := stubReceive(stub)
			if !ok {
				return
			}
			if c == nil {
				stub.Close()
				return
			}
			if left := t.Bytes - st.passed; int64(len(c.Data)) > left {
				c = &stream.StreamChunk{Data: c.Data[:left], Timestamp: c.Timestamp}
			}
			st.out = c
		}
		if !stubSend(stub, st.out) {
			return
		}
		st.passed += int64(len(st.out.Data))
		st.out = nil
	}
}

// timeoutToxic drops all data and closes the stream After its state was
// made: when the toxic was added to a live connection, or when a new
// connection opened while it was active. Unlike Toxiproxy's timeout, data
// flowing does not restart the timer, and removing it before the deadline
// leaves the connection open.
type timeoutToxic struct {
	After time.Duration `json:"after"`
}

type timeoutState struct {
	deadline time.Time
}

func (t *timeoutToxic) NewState() any { return &timeoutState{deadline: time.Now().Add(t.After)} }

func (t *timeoutToxic) Pipe(stub *tpx.ToxicStub) {
	st := stub.State.(*timeoutState)
	timer := time.NewTimer(time.Until(st.deadline))
	defer timer.Stop()
	for {
		select {
		case <-stub.Interrupt:
			return
		case <-timer.C:
			stub.Close()
			stubDrain(stub)
			return
		case c := <-stub.Input:
			if c == nil {
				stub.Close()
				return
			}
			// dropped
		}
	}
}

// blackholeToxic drops all data and leaves the stream open.
type blackholeToxic struct{}

func (t *blackholeToxic) Pipe(stub *tpx.ToxicStub) {
	for {
		c, ok := stubReceive(stub)
		if !ok {
			return
		}
		if c == nil {
			stub.Close()
			return
		}
	}
}
