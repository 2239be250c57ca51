package harness

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
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
// Rules every toxic here follows:
//
//   - Toxiproxy interrupts a stub not only to remove its toxic but also to
//     re-wire it when a neighbour is added or removed, and then runs Pipe
//     again on the same stub. So every blocking step selects on
//     stub.Interrupt, and anything that must survive a re-wire (a chunk not
//     yet sent, a timer, the random source) lives in stub.State.
//   - Cleanup, called only when the toxic is removed, passes on what the
//     toxic still holds, so a revert delivers instead of dropping.
//   - A toxic that closes its stream early keeps draining its input until
//     the input closes, so the stubs in front of it can always finish.
//   - A toxic never holds on to data of a dead connection. Once a
//     connection is aborted (not cleanly closed) the Link's source sends an
//     empty chunk, the abort marker, down the pipeline: every toxic passes
//     it on, drops what it holds, closes its stream and drains. When the
//     Link closes, every toxic does the same at once (toxicBase.done). This
//     matters because Toxiproxy's removal of a toxic from a pipeline that
//     is closing can leave that pipeline's stubs out of step with its chain
//     (it returns early without re-slicing them), after which removals
//     interrupt the wrong stub: a toxic that waited for its removal would
//     then wait forever.

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

// registerLinkToxics adds the custom toxics to Toxiproxy's registry of toxic
// types (a process global of Toxiproxy's, written once, never changed).
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

// Toxiproxy makes toxic instances itself, from JSON, so a toxic can only
// find its Link through a value in that JSON: the Link's id. linkDones
// holds, for each open Link, the channel its Close closes. Entries live
// exactly as long as their Link, and ids are never reused, so Links (and
// tests) never see each other's entries.
var (
	linkIDs   atomic.Uint64
	linkDones sync.Map // uint64 → chan struct{}
	closedCh  = func() chan struct{} { c := make(chan struct{}); close(c); return c }()
)

// toxicBase is embedded in every custom toxic.
type toxicBase struct {
	Link uint64 `json:"link"`
}

// done returns a channel closed when the toxic's Link closes.
func (b *toxicBase) done() <-chan struct{} {
	if ch, ok := linkDones.Load(b.Link); ok {
		return ch.(chan struct{})
	}
	return closedCh
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
func toxicsFor(f toxics.LinkFault, link, id, seed uint64) ([]toxicJSON, error) {
	var out []toxicJSON
	base := toxicBase{Link: link}
	for _, d := range []toxics.Direction{toxics.Upstream, toxics.Downstream} {
		if !toxics.DirectionOf(f).Has(d) {
			continue
		}
		dseed := seedMix(seed, uint64(d))
		var typ string
		var attrs any
		switch f := f.(type) {
		case toxics.Latency:
			typ, attrs = toxicLatency, &latencyToxic{toxicBase: base, Delay: f.Delay, Jitter: f.Jitter, Seed: dseed}
		case toxics.Bandwidth:
			typ, attrs = toxicBandwidth, &bandwidthToxic{toxicBase: base, Rate: f.Rate}
		case toxics.Slicer:
			typ, attrs = toxicSlicer, &slicerToxic{toxicBase: base, AverageSize: f.AverageSize, SizeVariation: f.SizeVariation, Delay: f.Delay, Seed: dseed}
		case toxics.SlowClose:
			typ, attrs = toxicSlowClose, &slowCloseToxic{toxicBase: base, Delay: f.Delay}
		case toxics.Corrupt:
			typ, attrs = toxicCorrupt, &corruptToxic{toxicBase: base, Probability: f.Probability, Seed: dseed}
		case toxics.DataLimit:
			typ, attrs = toxicDataLimit, &dataLimitToxic{toxicBase: base, Bytes: f.Bytes}
		case toxics.Timeout:
			typ, attrs = toxicTimeout, &timeoutToxic{toxicBase: base, After: f.After}
		case toxics.Blackhole:
			typ, attrs = toxicBlackhole, &blackholeToxic{toxicBase: base}
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

// seedMix derives an independent 64-bit seed from a seed and a salt
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

// event is what ended a blocking step of a toxic.
type event uint8

const (
	evOK        event = iota // the step completed
	evInterrupt              // Toxiproxy interrupted the stub
	evEOF                    // the input closed cleanly
	evAbort                  // the connection was aborted, or the Link closed
)

// isAbortMarker reports whether c is the abort marker: the only empty chunk
// a pipeline ever carries (Toxiproxy never makes empty chunks of data).
func isAbortMarker(c *stream.StreamChunk) bool { return len(c.Data) == 0 }

// stubReceive takes the next chunk.
func stubReceive(stub *tpx.ToxicStub, done <-chan struct{}) (*stream.StreamChunk, event) {
	select {
	case c := <-stub.Input:
		switch {
		case c == nil:
			return nil, evEOF
		case isAbortMarker(c):
			return nil, evAbort
		}
		return c, evOK
	case <-stub.Interrupt:
		return nil, evInterrupt
	case <-done:
		return nil, evAbort
	}
}

// stubSend passes c on.
func stubSend(stub *tpx.ToxicStub, c *stream.StreamChunk, done <-chan struct{}) event {
	select {
	case stub.Output <- c:
		return evOK
	case <-stub.Interrupt:
		return evInterrupt
	case <-done:
		return evAbort
	}
}

// stubWait waits until t.
func stubWait(stub *tpx.ToxicStub, t time.Time, done <-chan struct{}) event {
	d := time.Until(t)
	if d <= 0 {
		select {
		case <-stub.Interrupt:
			return evInterrupt
		case <-done:
			return evAbort
		default:
			return evOK
		}
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return evOK
	case <-stub.Interrupt:
		return evInterrupt
	case <-done:
		return evAbort
	}
}

// stubDrain discards the input until it closes; used after a toxic has
// closed its output, so that the stubs in front of it can finish. The stub
// is closed, so nothing interrupts it any more.
func stubDrain(stub *tpx.ToxicStub) {
	for range stub.Input {
	}
}

// flow is the part of every toxic's state that holds a chunk taken but not
// yet passed on, and remembers an abort in progress.
type flow struct {
	out     *stream.StreamChunk
	aborted bool
}

// stop handles an event that ends this run of Pipe; it reports whether
// Pipe must return.
func (f *flow) stop(stub *tpx.ToxicStub, ev event) bool {
	switch ev {
	case evInterrupt:
		return true
	case evEOF:
		stub.Close()
		return true
	case evAbort:
		f.abort(stub)
		return true
	}
	return false
}

// abort drops what the toxic holds, passes the abort marker on, closes the
// stream and drains the input. If Toxiproxy interrupts it, the next run of
// Pipe calls it again.
func (f *flow) abort(stub *tpx.ToxicStub) {
	f.out = nil
	f.aborted = true
	select {
	case stub.Output <- &stream.StreamChunk{Data: []byte{}, Timestamp: time.Now()}:
	case <-stub.Interrupt:
		return
	}
	stub.Close()
	stubDrain(stub)
}

// flush passes the held chunk on; Cleanup calls it when the toxic is
// removed, so a revert delivers what the toxic was holding back.
func (f *flow) flush(stub *tpx.ToxicStub) {
	if f.out != nil {
		stub.Output <- f.out
		f.out = nil
	}
}

// latencyToxic delays every chunk by Delay ± Jitter from the moment it was
// read, keeping order. Jitter is drawn from a source seeded with Seed.
type latencyToxic struct {
	toxicBase
	Delay  time.Duration `json:"delay"`
	Jitter time.Duration `json:"jitter"`
	Seed   uint64        `json:"seed"`
}

type latencyState struct {
	flow
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
	done := t.done()
	if st.aborted {
		st.abort(stub)
		return
	}
	for {
		if st.out == nil {
			c, ev := stubReceive(stub, done)
			if st.stop(stub, ev) {
				return
			}
			st.out, st.due = c, c.Timestamp.Add(t.draw(st.rng))
		}
		if st.stop(stub, stubWait(stub, st.due, done)) {
			return
		}
		// A later latency toxic measures from here, so stacked delays add.
		st.out.Timestamp = st.due
		if st.stop(stub, stubSend(stub, st.out, done)) {
			return
		}
		st.out = nil
	}
}

// bandwidthToxic passes at most Rate bytes per second, in pieces of about
// 50 ms worth of data. Rate 0 holds everything until the toxic is removed.
type bandwidthToxic struct {
	toxicBase
	Rate int64 `json:"rate"`
}

type bandwidthState struct {
	flow
	queue  []*stream.StreamChunk // held while stalled (Rate 0)
	queued int
	eof    bool      // the input closed while stalled
	next   time.Time // when the next piece may go
}

const (
	// bandwidthBurst is how far behind schedule the toxic may fall (after
	// an idle spell) before it stops catching up.
	bandwidthBurst = 50 * time.Millisecond
	// bandwidthHold is how much a stalled toxic reads and holds before it
	// stops reading: about what the kernel buffers of a stalled TCP
	// connection would take. Reading on lets it notice an abort.
	bandwidthHold = 1 << 20
)

func (t *bandwidthToxic) NewState() any { return new(bandwidthState) }
func (t *bandwidthToxic) Cleanup(stub *tpx.ToxicStub) {
	st := stub.State.(*bandwidthState)
	st.flush(stub)
	for _, c := range st.queue {
		stub.Output <- c
	}
	st.queue, st.queued = nil, 0
	// If the input closed meanwhile, Toxiproxy's removal reads the closed
	// input next and closes the stream.
}

func (t *bandwidthToxic) Pipe(stub *tpx.ToxicStub) {
	st := stub.State.(*bandwidthState)
	done := t.done()
	if st.aborted {
		st.abort(stub)
		return
	}
	if t.Rate <= 0 {
		t.stall(stub, st, done)
		return
	}
	piece := max(1, t.Rate/20)
	for {
		if st.out == nil {
			c, ev := stubReceive(stub, done)
			if st.stop(stub, ev) {
				return
			}
			st.out = c
		}
		now := time.Now()
		if st.next.IsZero() || now.Sub(st.next) > bandwidthBurst {
			st.next = now
		}
		if st.stop(stub, stubWait(stub, st.next, done)) {
			return
		}
		n := min(int64(len(st.out.Data)), piece)
		part := &stream.StreamChunk{Data: st.out.Data[:n], Timestamp: st.out.Timestamp}
		if st.stop(stub, stubSend(stub, part, done)) {
			return
		}
		st.next = st.next.Add(time.Duration(float64(n) / float64(t.Rate) * float64(time.Second)))
		st.out.Data = st.out.Data[n:]
		if len(st.out.Data) == 0 {
			st.out = nil
		}
	}
}

// stall holds everything until the toxic is removed (Cleanup delivers it),
// reading on up to bandwidthHold bytes so that an abort is noticed.
func (t *bandwidthToxic) stall(stub *tpx.ToxicStub, st *bandwidthState, done <-chan struct{}) {
	for {
		var in <-chan *stream.StreamChunk
		if !st.eof && st.queued < bandwidthHold {
			in = stub.Input
		}
		select {
		case <-stub.Interrupt:
			return
		case <-done:
			st.queue, st.queued = nil, 0
			st.abort(stub)
			return
		case c := <-in:
			switch {
			case c == nil:
				st.eof = true
			case isAbortMarker(c):
				st.queue, st.queued = nil, 0
				st.abort(stub)
				return
			default:
				st.queue = append(st.queue, c)
				st.queued += len(c.Data)
			}
		}
	}
}

// slicerToxic cuts chunks into slices of AverageSize ± SizeVariation bytes
// (sizes drawn from a source seeded with Seed) sent Delay apart.
type slicerToxic struct {
	toxicBase
	AverageSize   int           `json:"average_size"`
	SizeVariation int           `json:"size_variation"`
	Delay         time.Duration `json:"delay"`
	Seed          uint64        `json:"seed"`
}

type slicerState struct {
	flow
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
	done := t.done()
	if st.aborted {
		st.abort(stub)
		return
	}
	for {
		if st.out == nil {
			c, ev := stubReceive(stub, done)
			if st.stop(stub, ev) {
				return
			}
			st.out = c
		}
		if st.size == 0 {
			st.size = t.draw(st.rng)
		}
		if st.stop(stub, stubWait(stub, st.next, done)) {
			return
		}
		n := min(len(st.out.Data), st.size)
		part := &stream.StreamChunk{Data: st.out.Data[:n], Timestamp: st.out.Timestamp}
		if st.stop(stub, stubSend(stub, part, done)) {
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

// slowCloseToxic passes data through and, once its input closes cleanly,
// waits Delay before closing its output.
type slowCloseToxic struct {
	toxicBase
	Delay time.Duration `json:"delay"`
}

type slowCloseState struct {
	flow
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
	done := t.done()
	if st.aborted {
		st.abort(stub)
		return
	}
	for {
		if !st.closeAt.IsZero() {
			if st.stop(stub, stubWait(stub, st.closeAt, done)) {
				return
			}
			stub.Close()
			return
		}
		if st.out == nil {
			c, ev := stubReceive(stub, done)
			if ev == evEOF {
				st.closeAt = time.Now().Add(t.Delay)
				continue
			}
			if st.stop(stub, ev) {
				return
			}
			st.out = c
		}
		if st.stop(stub, stubSend(stub, st.out, done)) {
			return
		}
		st.out = nil
	}
}

// corruptToxic flips one random bit in each byte with probability
// Probability, drawing from a source seeded with Seed.
type corruptToxic struct {
	toxicBase
	Probability float64 `json:"probability"`
	Seed        uint64  `json:"seed"`
}

type corruptState struct {
	flow
	rng  *rand.Rand
	skip int64 // clean bytes before the next corrupted one; -1 if not drawn
}

func (t *corruptToxic) NewState() any { return &corruptState{rng: seededRand(t.Seed), skip: -1} }
func (t *corruptToxic) Cleanup(stub *tpx.ToxicStub) {
	stub.State.(*corruptState).flush(stub)
}

// gap draws how many clean bytes come before the next corrupted one: a
// geometric draw, so the cost is per corrupted byte, not per byte, and the
// bits flipped depend on byte positions only, not on how the stream was
// cut into chunks.
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
	done := t.done()
	if st.aborted {
		st.abort(stub)
		return
	}
	for {
		if st.out == nil {
			c, ev := stubReceive(stub, done)
			if st.stop(stub, ev) {
				return
			}
			// The chunk is this pipeline's own copy (Toxiproxy copies what
			// it reads), so it may be changed in place.
			t.corrupt(st, c.Data)
			st.out = c
		}
		if st.stop(stub, stubSend(stub, st.out, done)) {
			return
		}
		st.out = nil
	}
}

// dataLimitToxic passes Bytes bytes, then closes the stream.
type dataLimitToxic struct {
	toxicBase
	Bytes int64 `json:"bytes"`
}

type dataLimitState struct {
	flow
	passed int64
}

func (t *dataLimitToxic) NewState() any { return new(dataLimitState) }
func (t *dataLimitToxic) Cleanup(stub *tpx.ToxicStub) {
	stub.State.(*dataLimitState).flush(stub)
}

func (t *dataLimitToxic) Pipe(stub *tpx.ToxicStub) {
	st := stub.State.(*dataLimitState)
	done := t.done()
	if st.aborted {
		st.abort(stub)
		return
	}
	for {
		if st.out == nil && st.passed >= t.Bytes {
			stub.Close()
			stubDrain(stub)
			return
		}
		if st.out == nil {
			c, ev := stubReceive(stub, done)
			if st.stop(stub, ev) {
				return
			}
			if left := t.Bytes - st.passed; int64(len(c.Data)) > left {
				c = &stream.StreamChunk{Data: c.Data[:left], Timestamp: c.Timestamp}
			}
			st.out = c
		}
		if st.stop(stub, stubSend(stub, st.out, done)) {
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
	toxicBase
	After time.Duration `json:"after"`
}

type timeoutState struct {
	flow
	deadline time.Time
}

func (t *timeoutToxic) NewState() any { return &timeoutState{deadline: time.Now().Add(t.After)} }

func (t *timeoutToxic) Pipe(stub *tpx.ToxicStub) {
	st := stub.State.(*timeoutState)
	done := t.done()
	if st.aborted {
		st.abort(stub)
		return
	}
	timer := time.NewTimer(time.Until(st.deadline))
	defer timer.Stop()
	for {
		select {
		case <-stub.Interrupt:
			return
		case <-done:
			st.abort(stub)
			return
		case <-timer.C:
			stub.Close()
			stubDrain(stub)
			return
		case c := <-stub.Input:
			switch {
			case c == nil:
				stub.Close()
				return
			case isAbortMarker(c):
				st.abort(stub)
				return
			}
			// dropped
		}
	}
}

// blackholeToxic drops all data and leaves the stream open.
type blackholeToxic struct {
	toxicBase
}

type blackholeState struct {
	flow
}

func (t *blackholeToxic) NewState() any { return new(blackholeState) }

func (t *blackholeToxic) Pipe(stub *tpx.ToxicStub) {
	st := stub.State.(*blackholeState)
	done := t.done()
	if st.aborted {
		st.abort(stub)
		return
	}
	for {
		_, ev := stubReceive(stub, done)
		if st.stop(stub, ev) {
			return
		}
		// dropped
	}
}
