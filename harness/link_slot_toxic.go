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

// How faults reach the bytes
//
// Each direction of a Link's Toxiproxy chain holds one or more slots: stubs
// running slotToxic, a toxic of our own. A slot is either disarmed (it
// passes data on) or armed with one link fault, which it carries out on
// every connection. Apply arms a free slot (appending a new one only when
// every slot of that direction is busy) and revert disarms it; both only
// swap the slot's configuration and wake its stubs, so they take effect on
// live connections at once and never wait for a connection.
//
// Toxiproxy's own add and remove operations are not used after a slot is
// added, for three reasons found while building this:
//   - removing a toxic flushes what is queued in front of it with a
//     five-second timeout and drops what does not fit in that time, so a
//     client that stops reading for a while loses bytes of its stream,
//     and the removal holds the chain's lock meanwhile;
//   - removing a toxic from a pipeline that is closing can leave that
//     pipeline's stubs out of step with the chain (it returns early without
//     re-slicing them), after which removals interrupt the wrong stub;
//   - adding a toxic interrupts the chain's last stub, and Toxiproxy's
//     built-in noop stub sends without listening for interrupts, so with a
//     client that stops reading the add waits for the client. A slot is
//     added at start-up, before any connection, so the last stub is always
//     a slot, which always listens.
//
// Toxiproxy's built-in toxics are not used either: they draw from the
// global math/rand (jitter, slicer sizes), count bandwidth in KB/s and log
// through zerolog's global logger, restart the timeout on every chunk, and
// stop reading their input once limit_data closes.
//
// Rules a slot follows:
//   - Toxiproxy interrupts a stub to re-wire it when a slot is appended
//     after it, then runs Pipe again on the same stub: every blocking step
//     listens for the interrupt, and everything that must survive it lives
//     in stub.State.
//   - Data a fault holds back (delayed, throttled, sliced) stays in the
//     slot and is released, in order, when the fault is reverted.
//   - A fault that closes the stream keeps draining its input until the
//     input closes, so the stubs in front of it can always finish.
//   - A slot never holds on to data of a dead connection. Once a connection
//     is aborted (not cleanly closed) the Link's source sends an empty
//     chunk, the abort marker, down the pipeline: each slot passes it on,
//     drops what it holds, closes its stream and drains. When the Link
//     closes, every slot does the same at once.

// toxicSlot is the type name of the slot toxic in Toxiproxy's registry.
const toxicSlot = "shakedown_slot"

var toxicsRegistered sync.Once

// registerLinkToxics adds the slot toxic to Toxiproxy's registry of toxic
// types (a process global of Toxiproxy's, written once, never changed).
func registerLinkToxics() {
	toxicsRegistered.Do(func() { tpx.Register(toxicSlot, new(slotToxic)) })
}

// Toxiproxy makes toxic instances itself, from JSON, so a slot can only
// find its configuration through values in that JSON: its Link's id and
// its own number. slotRegistry maps them to the slot, linkDones maps a
// Link's id to the channel its Close closes. Entries live exactly as long
// as their Link, and ids are never reused, so Links (and tests) never see
// each other's entries.
var (
	linkIDs      atomic.Uint64
	linkDones    sync.Map // uint64 → chan struct{}
	slotRegistry sync.Map // slotKey → *slot
	closedCh     = func() chan struct{} { c := make(chan struct{}); close(c); return c }()
)

type slotKey struct {
	link uint64
	slot int
}

// slot is one position in a direction's chain, armed with at most one
// fault.
type slot struct {
	key   slotKey
	dir   toxics.Direction
	state atomic.Pointer[slotVersion]
	owner *appliedFault // guarded by Link.faultMu; nil when disarmed
}

// slotVersion is one configuration of a slot; changed is closed when the
// next one replaces it.
type slotVersion struct {
	gen     uint64
	cfg     *slotConfig // nil: disarmed, data passes
	changed chan struct{}
}

// slotConfig is a fault as one slot carries it out in one direction.
type slotConfig struct {
	fault   toxics.LinkFault
	seed    uint64                 // for this fault and direction
	armedAt time.Time              // when the fault began
	pick    func(conn uint64) bool // a Targeted fault's selector (see link_conn.go); nil: every connection
}

func newSlot(key slotKey, dir toxics.Direction) *slot {
	s := &slot{key: key, dir: dir}
	s.state.Store(&slotVersion{changed: make(chan struct{})})
	return s
}

// set arms the slot with cfg, or disarms it if cfg is nil, and wakes its
// stubs.
func (s *slot) set(cfg *slotConfig) {
	old := s.state.Load()
	s.state.Store(&slotVersion{gen: old.gen + 1, cfg: cfg, changed: make(chan struct{})})
	close(old.changed)
}

// toxicJSON is one toxic as Toxiproxy's AddToxicJson reads it.
type toxicJSON struct {
	Name       string     `json:"name"`
	Type       string     `json:"type"`
	Stream     string     `json:"stream"`
	Toxicity   float32    `json:"toxicity"`
	Attributes *slotToxic `json:"attributes"`
}

// slotJSON is the Toxiproxy form of a slot.
func slotJSON(key slotKey, dir toxics.Direction) ([]byte, error) {
	return json.Marshal(toxicJSON{
		Name:       fmt.Sprintf("slot%d_%s", key.slot, dir),
		Type:       toxicSlot,
		Stream:     dir.String(),
		Toxicity:   1,
		Attributes: &slotToxic{Link: key.link, Slot: key.slot},
	})
}

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

// drawDelay returns one delay of f in [Delay-Jitter, Delay+Jitter].
func drawDelay(f toxics.Latency, r *rand.Rand) time.Duration {
	if f.Jitter <= 0 {
		return f.Delay
	}
	return f.Delay - f.Jitter + time.Duration(r.Int64N(2*int64(f.Jitter)+1))
}

// drawSliceSize returns one slice size of f in [AverageSize-SizeVariation,
// AverageSize+SizeVariation], at least 1.
func drawSliceSize(f toxics.Slicer, r *rand.Rand) int {
	n := f.AverageSize
	if f.SizeVariation > 0 {
		n += r.IntN(2*f.SizeVariation+1) - f.SizeVariation
	}
	return max(1, n)
}

// corruptGap draws how many clean bytes come before the next corrupted one:
// a geometric draw, so the cost is per corrupted byte, and the bits flipped
// depend on byte positions only, not on how the stream was cut into chunks.
func corruptGap(p float64, r *rand.Rand) int64 {
	if p >= 1 {
		return 0
	}
	u := 1 - r.Float64() // (0, 1]
	g := math.Floor(math.Log(u) / math.Log1p(-p))
	if g > 1<<53 {
		return 1 << 53
	}
	return int64(g)
}

const (
	// holdChunks and holdBytes bound what a slot reads ahead and holds
	// (delayed or throttled data): about what the kernel buffers of a
	// stalled TCP connection take. Reading ahead keeps delays from adding
	// up across chunks and lets a stalled slot notice an abort.
	holdChunks = 1024
	holdBytes  = 1 << 20
	// bandwidthBurst is how far behind schedule a throttled slot may fall
	// (after an idle spell) before it stops catching up.
	bandwidthBurst = 50 * time.Millisecond
)

// slotToxic is the toxic of every slot. Its fields are the JSON attributes.
type slotToxic struct {
	Link uint64 `json:"link"`
	Slot int    `json:"slot"`
}

// slotState is one stub's state: one connection, one direction, one slot.
type slotState struct {
	sl     *slot
	done   <-chan struct{}
	opened time.Time // when the stub was made: connection opened, or slot added

	gen uint64      // configuration the fields below belong to
	cfg *slotConfig // nil: passing

	pending *stream.StreamChunk   // taken just as the configuration changed: the next one's first input
	held    []*stream.StreamChunk // taken, not passed on yet, in order
	lens    []int                 // len(held[i].Data), noted when taken
	heldLen int                   // bytes in held
	dues    []time.Time           // latency: when each held chunk is due
	eof     bool                  // the input closed cleanly
	cut     bool                  // it ended with the cut marker, which goes on before the close
	aborted bool                  // an abort is under way

	rng     *rand.Rand
	skip    int64     // corrupt: clean bytes before the next flip; -1 if not drawn
	passed  int64     // data limit: bytes passed since the fault began
	next    time.Time // bandwidth, slicer: when the next piece may go
	size    int       // slicer: size of the next slice; 0 if not drawn
	closeAt time.Time // slow close: when to close, once the input closed

	stint   *stint // the pipeline's connection (see link_conn.go)
	connID  uint64 // its number; 0 if unknown
	lossBad bool   // loss: the Gilbert–Elliott state is bad
}

func (t *slotToxic) NewState() any {
	return &slotState{opened: time.Now(), skip: -1, stint: newStintOf(t.Link)}
}

// event is what ended a wait of a slot.
type event uint8

const (
	evChunk     event = iota // a chunk arrived
	evSent                   // the chunk was passed on
	evTimer                  // the time came
	evEOF                    // the input closed cleanly
	evAbort                  // the connection was aborted, or the Link closed
	evInterrupt              // Toxiproxy interrupted the stub
	evChanged                // the slot's configuration changed
)

// isAbortMarker reports whether c is the abort marker or the cut marker:
// the only empty chunks a pipeline ever carries (Toxiproxy never makes empty
// chunks of data).
func isAbortMarker(c *stream.StreamChunk) bool { return len(c.Data) == 0 }

// isCutMarker reports whether c is the cut marker, which a slot sends before
// it closes the stream early: empty, without a timestamp (Toxiproxy and the
// abort marker always carry one).
func isCutMarker(c *stream.StreamChunk) bool { return len(c.Data) == 0 && c.Timestamp.IsZero() }

// waitFor says what a slot waits for besides interrupts, abort and change.
type waitFor struct {
	in  bool                // a chunk from the input
	out *stream.StreamChunk // room for this chunk in the output
	at  time.Time           // this time (zero: none)
}

func (st *slotState) wait(stub *tpx.ToxicStub, w waitFor, changed <-chan struct{}) (event, *stream.StreamChunk) {
	// A change comes first: a chunk that arrives after Apply or revert
	// returned must see the new configuration, and select alone picks at
	// random among ready cases.
	select {
	case <-changed:
		return evChanged, nil
	default:
	}
	if w.in && st.pending != nil {
		c := st.pending
		st.pending = nil
		return evChunk, c
	}
	var in <-chan *stream.StreamChunk
	if w.in {
		in = stub.Input
	}
	var out chan<- *stream.StreamChunk
	if w.out != nil {
		out = stub.Output
	}
	var tc <-chan time.Time
	if !w.at.IsZero() {
		d := time.Until(w.at)
		if d <= 0 {
			return evTimer, nil
		}
		t := time.NewTimer(d)
		defer t.Stop()
		tc = t.C
	}
	select {
	case c := <-in:
		switch {
		case c == nil:
			return evEOF, nil
		case isCutMarker(c): // the stream ends here; pass the cut on
			st.cut = true
			return evEOF, nil
		case isAbortMarker(c):
			return evAbort, nil
		}
		// The stub may have been descheduled between the check above and
		// the select, long enough for a change and this chunk to land: the
		// chunk then belongs to the new configuration.
		select {
		case <-changed:
			st.pending = c
			return evChanged, nil
		default:
		}
		return evChunk, c
	case out <- w.out:
		return evSent, nil
	case <-tc:
		return evTimer, nil
	case <-stub.Interrupt:
		return evInterrupt, nil
	case <-st.done:
		return evAbort, nil
	case <-changed:
		return evChanged, nil
	}
}

func (t *slotToxic) Pipe(stub *tpx.ToxicStub) {
	st := stub.State.(*slotState)
	if st.sl == nil {
		st.done = closedCh
		if d, ok := linkDones.Load(t.Link); ok {
			st.done = d.(chan struct{})
		}
		if s, ok := slotRegistry.Load(slotKey{t.Link, t.Slot}); ok {
			st.sl = s.(*slot)
		}
		st.bindStint(stub)
	}
	if st.sl == nil { // the Link has closed
		st.abort(stub)
		return
	}
	for {
		if st.aborted {
			st.abort(stub)
			return
		}
		v := st.sl.state.Load()
		if v.gen != st.gen {
			// Release what the old configuration holds, then start the
			// new one afresh: a fault counts from when it began.
			if !st.release(stub) {
				return
			}
			st.reset(v)
		}
		if !st.run(stub, v.changed) {
			return
		}
	}
}

// reset starts configuration v.
func (st *slotState) reset(v *slotVersion) {
	st.gen, st.cfg = v.gen, v.cfg
	st.rng = nil
	if v.cfg != nil {
		st.rng = seededRand(v.cfg.seed)
	}
	st.skip, st.passed, st.size = -1, 0, 0
	st.lossBad = false
	st.next, st.closeAt = time.Time{}, time.Time{}
}

// release passes on everything the slot holds, in order. It reports whether
// Pipe may go on; when the input has closed meanwhile, it closes the stream.
func (st *slotState) release(stub *tpx.ToxicStub) bool {
	for len(st.held) > 0 {
		switch ev, _ := st.wait(stub, waitFor{out: st.held[0]}, nil); ev {
		case evSent:
			st.pop()
		case evAbort:
			st.abort(stub)
			return false
		default: // evInterrupt
			return false
		}
	}
	if st.eof {
		st.close(stub)
		return false
	}
	return true
}

// A chunk passed on belongs to the next stage, which may change it at
// once (a slicer advances it, corrupt flips its bits), so a slot never
// touches a chunk after sending it: pop and advance use the lengths noted
// when the chunks were taken.

func (st *slotState) push(c *stream.StreamChunk) {
	st.held = append(st.held, c)
	st.lens = append(st.lens, len(c.Data))
	st.heldLen += len(c.Data)
}

// pop drops the first held chunk, which has been passed on.
func (st *slotState) pop() {
	st.heldLen -= st.lens[0]
	st.held[0] = nil
	st.held, st.lens = st.held[1:], st.lens[1:]
	if len(st.dues) > 0 {
		st.dues = st.dues[1:]
	}
}

// advance drops the first n bytes of the first held chunk, which have been
// passed on as a chunk of their own.
func (st *slotState) advance(n int) {
	head := st.held[0]
	head.Data = head.Data[n:]
	st.lens[0] -= n
	st.heldLen -= n
	if st.lens[0] == 0 {
		st.pop()
	}
}

// room reports whether the slot may read ahead.
func (st *slotState) room() bool {
	return !st.eof && len(st.held) < holdChunks && st.heldLen < holdBytes
}

// abort drops what the slot holds, passes the abort marker on, closes the
// stream and drains the input. If Toxiproxy interrupts it, the next run of
// Pipe calls it again.
func (st *slotState) abort(stub *tpx.ToxicStub) {
	st.pending, st.held, st.lens, st.dues, st.heldLen = nil, nil, nil, nil, 0
	st.aborted = true
	select {
	case stub.Output <- &stream.StreamChunk{Data: []byte{}, Timestamp: time.Now()}:
	case <-stub.Interrupt:
		return
	}
	stub.Close()
	drainInput(stub)
}

// closeAndDrain closes the stream early (a fault closed the connection),
// after the cut marker so that the Link's sink tells this from the end of
// the input, and discards the input until it closes. The stub is closed, so
// nothing interrupts it any more. If Toxiproxy interrupts it before, the
// next run of Pipe comes here again (or, if the fault was reverted
// meanwhile, the stream goes on).
func closeAndDrain(stub *tpx.ToxicStub) {
	select {
	case stub.Output <- &stream.StreamChunk{Data: []byte{}}:
	case <-stub.Interrupt:
		return
	}
	stub.Close()
	drainInput(stub)
}

// close closes the stream at the end of its input, passing the cut marker
// on first if the input ended with one. If Toxiproxy interrupts it, the
// next run of Pipe comes here again.
func (st *slotState) close(stub *tpx.ToxicStub) {
	if st.cut {
		select {
		case stub.Output <- &stream.StreamChunk{Data: []byte{}}:
		case <-stub.Interrupt:
			return
		}
	}
	stub.Close()
}

func drainInput(stub *tpx.ToxicStub) {
	for range stub.Input {
	}
}

// ends handles the events that end a run; it reports whether Pipe goes on
// (the configuration changed).
func (st *slotState) ends(stub *tpx.ToxicStub, ev event) bool {
	switch ev {
	case evChanged:
		return true
	case evAbort:
		st.abort(stub)
	case evEOF:
		st.eof = true
		st.close(stub)
	}
	return false // evInterrupt, or the stream ended
}

// run carries out the slot's current configuration until it changes
// (true) or Pipe must return (false).
func (st *slotState) run(stub *tpx.ToxicStub, changed <-chan struct{}) bool {
	if st.cfg == nil || !st.picks() {
		return st.runForward(stub, changed, nil)
	}
	switch f := st.cfg.fault.(type) {
	case toxics.Loss:
		return st.runLoss(stub, changed, f)
	case toxics.Latency:
		return st.runLatency(stub, changed, f)
	case toxics.Bandwidth:
		return st.runBandwidth(stub, changed, f)
	case toxics.Slicer:
		return st.runSlicer(stub, changed, f)
	case toxics.SlowClose:
		return st.runSlowClose(stub, changed, f)
	case toxics.Corrupt:
		return st.runForward(stub, changed, func(c *stream.StreamChunk) { st.corrupt(f.Probability, c.Data) })
	case toxics.DataLimit:
		return st.runDataLimit(stub, changed, f)
	case toxics.Timeout:
		return st.runTimeout(stub, changed, f)
	case toxics.Blackhole:
		return st.runBlackhole(stub, changed)
	}
	return st.runForward(stub, changed, nil)
}

// runForward passes chunks on one at a time, changing each with change if
// it is not nil. A disarmed slot and Corrupt run here.
func (st *slotState) runForward(stub *tpx.ToxicStub, changed <-chan struct{}, change func(*stream.StreamChunk)) bool {
	for {
		if len(st.held) == 0 {
			ev, c := st.wait(stub, waitFor{in: true}, changed)
			if ev != evChunk {
				return st.ends(stub, ev)
			}
			if change != nil {
				// The chunk is this pipeline's own copy (Toxiproxy
				// copies what it reads), so it may be changed in place.
				change(c)
			}
			st.push(c)
		}
		ev, _ := st.wait(stub, waitFor{out: st.held[0]}, changed)
		if ev != evSent {
			return st.ends(stub, ev)
		}
		st.pop()
	}
}

// corrupt flips one random bit in each byte with probability p, in place.
func (st *slotState) corrupt(p float64, data []byte) {
	i, n := int64(0), int64(len(data))
	for {
		if st.skip < 0 {
			st.skip = corruptGap(p, st.rng)
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

// runLatency delays every chunk by Delay ± Jitter from the moment it was
// read, keeping order, and reads ahead so that delays do not add up.
func (st *slotState) runLatency(stub *tpx.ToxicStub, changed <-chan struct{}, f toxics.Latency) bool {
	for {
		if st.eof && len(st.held) == 0 {
			st.close(stub)
			return false
		}
		w := waitFor{in: st.room()}
		if len(st.held) > 0 {
			if due := st.dues[0]; time.Now().Before(due) {
				w.at = due
			} else {
				// A later latency measures from here, so stacked
				// delays add.
				st.held[0].Timestamp = due
				w.out = st.held[0]
			}
		}
		ev, c := st.wait(stub, w, changed)
		switch ev {
		case evChunk:
			st.push(c)
			st.dues = append(st.dues, c.Timestamp.Add(drawDelay(f, st.rng)))
		case evSent:
			st.pop()
		case evTimer:
		case evEOF:
			st.eof = true
		default:
			return st.ends(stub, ev)
		}
	}
}

// runBandwidth passes at most Rate bytes per second, in pieces of about
// 50 ms worth; Rate 0 holds everything until the fault is reverted.
func (st *slotState) runBandwidth(stub *tpx.ToxicStub, changed <-chan struct{}, f toxics.Bandwidth) bool {
	piece := max(1, f.Rate/20)
	for {
		if st.eof && len(st.held) == 0 {
			st.close(stub)
			return false
		}
		w := waitFor{in: st.room()}
		var partLen int
		if len(st.held) > 0 && f.Rate > 0 {
			now := time.Now()
			if st.next.IsZero() || now.Sub(st.next) > bandwidthBurst {
				st.next = now
			}
			if now.Before(st.next) {
				w.at = st.next
			} else {
				head := st.held[0]
				partLen = int(min(int64(st.lens[0]), piece))
				w.out = &stream.StreamChunk{Data: head.Data[:partLen], Timestamp: head.Timestamp}
			}
		}
		ev, c := st.wait(stub, w, changed)
		switch ev {
		case evChunk:
			st.push(c)
		case evSent:
			st.next = st.next.Add(time.Duration(float64(partLen) / float64(f.Rate) * float64(time.Second)))
			st.advance(partLen)
		case evTimer:
		case evEOF:
			st.eof = true
		default:
			return st.ends(stub, ev)
		}
	}
}

// runSlicer cuts chunks into slices of AverageSize ± SizeVariation bytes
// sent Delay apart.
func (st *slotState) runSlicer(stub *tpx.ToxicStub, changed <-chan struct{}, f toxics.Slicer) bool {
	for {
		if len(st.held) == 0 {
			ev, c := st.wait(stub, waitFor{in: true}, changed)
			if ev != evChunk {
				return st.ends(stub, ev)
			}
			st.push(c)
		}
		if st.size == 0 {
			st.size = drawSliceSize(f, st.rng)
		}
		if time.Now().Before(st.next) {
			if ev, _ := st.wait(stub, waitFor{at: st.next}, changed); ev != evTimer {
				return st.ends(stub, ev)
			}
		}
		head := st.held[0]
		n := min(st.lens[0], st.size)
		part := &stream.StreamChunk{Data: head.Data[:n], Timestamp: head.Timestamp}
		if ev, _ := st.wait(stub, waitFor{out: part}, changed); ev != evSent {
			return st.ends(stub, ev)
		}
		st.size = 0
		st.next = time.Now().Add(f.Delay)
		st.advance(n)
	}
}

// runSlowClose passes data on and, once the input closes cleanly, waits
// Delay before closing the stream. Reverted meanwhile, it closes at once.
func (st *slotState) runSlowClose(stub *tpx.ToxicStub, changed <-chan struct{}, f toxics.SlowClose) bool {
	for {
		if st.eof {
			if st.closeAt.IsZero() {
				st.closeAt = time.Now().Add(f.Delay)
			}
			ev, _ := st.wait(stub, waitFor{at: st.closeAt}, changed)
			switch ev {
			case evTimer:
				st.close(stub)
				return false
			case evChanged:
				return true // release closes the stream
			}
			return st.ends(stub, ev)
		}
		if len(st.held) == 0 {
			ev, c := st.wait(stub, waitFor{in: true}, changed)
			switch ev {
			case evChunk:
				st.push(c)
			case evEOF:
				st.eof = true
				continue
			default:
				return st.ends(stub, ev)
			}
		}
		ev, _ := st.wait(stub, waitFor{out: st.held[0]}, changed)
		if ev != evSent {
			return st.ends(stub, ev)
		}
		st.pop()
	}
}

// runDataLimit passes Bytes bytes from when the fault began (or the
// connection opened, if later), then closes the stream.
func (st *slotState) runDataLimit(stub *tpx.ToxicStub, changed <-chan struct{}, f toxics.DataLimit) bool {
	for {
		if len(st.held) == 0 {
			if st.passed >= f.Bytes {
				closeAndDrain(stub)
				return false
			}
			ev, c := st.wait(stub, waitFor{in: true}, changed)
			if ev != evChunk {
				return st.ends(stub, ev)
			}
			if left := f.Bytes - st.passed; int64(len(c.Data)) > left {
				c = &stream.StreamChunk{Data: c.Data[:left], Timestamp: c.Timestamp}
			}
			st.push(c)
		}
		ev, _ := st.wait(stub, waitFor{out: st.held[0]}, changed)
		if ev != evSent {
			return st.ends(stub, ev)
		}
		st.passed += int64(st.lens[0])
		st.pop()
	}
}

// runTimeout drops all data and closes the stream After the fault began, or
// After the connection opened if that was later, whether or not data
// flows. Reverted before that, the connection stays open.
func (st *slotState) runTimeout(stub *tpx.ToxicStub, changed <-chan struct{}, f toxics.Timeout) bool {
	start := st.cfg.armedAt
	if st.opened.After(start) {
		start = st.opened
	}
	deadline := start.Add(f.After)
	for {
		ev, _ := st.wait(stub, waitFor{in: true, at: deadline}, changed)
		switch ev {
		case evChunk: // dropped
		case evTimer:
			closeAndDrain(stub)
			return false
		default:
			return st.ends(stub, ev)
		}
	}
}

// runBlackhole drops all data and leaves the stream open.
func (st *slotState) runBlackhole(stub *tpx.ToxicStub, changed <-chan struct{}) bool {
	for {
		ev, _ := st.wait(stub, waitFor{in: true}, changed)
		if ev != evChunk {
			return st.ends(stub, ev)
		}
	}
}
