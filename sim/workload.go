package sim

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxInFlight is the [OpenLoop] concurrency cap when
// MaxInFlight is zero.
const DefaultMaxInFlight = 1000

// OpKind is one kind of op in a [Workload], such as "orders" (which touch
// Postgres) or "stock" (which touch only Redis). Summaries and invariants
// can be scoped to a kind by its name.
type OpKind struct {
	// Name names the kind in the History ([Op.Kind]). It is required and
	// unique within a workload.
	Name string
	// Weight is how often the kind is drawn relative to the others
	// (draws come from the run's seed). Zero means 1.
	Weight int
	// Input, if set, draws the op's input from r. r is seeded from the
	// run's seed and the op's ID, so the same seed gives the same inputs
	// whatever the timing. The input is recorded as [Op.Input] and passed
	// to Do.
	Input func(r *rand.Rand) string
	// Do performs the op and returns its output, recorded as [Op.Output].
	// ctx carries the op's ID ([OpID]) and a W3C traceparent
	// ([Traceparent]), and is cancelled when [Workload.Timeout] passes or
	// the run is cancelled. Required.
	Do func(ctx context.Context, input string) (output string, err error)
}

// Workload is the load a [Run] drives while the schedule runs. Its zero
// value issues no ops.
type Workload struct {
	// Driver issues the ops: an [OpenLoop] or a [ClosedLoop]. Nil means
	// ClosedLoop{Workers: 1}.
	Driver Driver
	// Kinds are the kinds of op to mix; each op draws one by weight.
	Kinds []OpKind
	// Timeout bounds each op: its context is cancelled Timeout after it
	// started. Zero means none. An op the end of the run cuts off before
	// its Timeout is [Missed]; with no Timeout it is not (see Missed).
	Timeout time.Duration
	// Classify turns an op's non-nil error into an outcome. Nil means the
	// package's [Classify].
	Classify func(error) Outcome
}

func (w Workload) validate() error {
	if len(w.Kinds) == 0 {
		if w.Driver != nil {
			return errors.New("sim: Workload.Driver is set but Workload.Kinds is empty")
		}
		return nil
	}
	names := make(map[string]int, len(w.Kinds))
	for i, k := range w.Kinds {
		switch {
		case k.Name == "":
			return fmt.Errorf("sim: Workload.Kinds[%d]: Name is empty", i)
		case k.Weight < 0:
			return fmt.Errorf("sim: Workload.Kinds[%d] (%q): Weight %d is negative", i, k.Name, k.Weight)
		case k.Do == nil:
			return fmt.Errorf("sim: Workload.Kinds[%d] (%q): Do is nil", i, k.Name)
		}
		if j, dup := names[k.Name]; dup {
			return fmt.Errorf("sim: Workload.Kinds[%d]: name %q is also the name of Kinds[%d]", i, k.Name, j)
		}
		names[k.Name] = i
	}
	if w.Timeout < 0 {
		return fmt.Errorf("sim: Workload.Timeout %v is negative", w.Timeout)
	}
	if w.Driver != nil {
		return w.Driver.validate()
	}
	return nil
}

// Driver issues a workload's ops: [OpenLoop] or [ClosedLoop].
type Driver interface {
	validate() error
	drive(w *workRun)
}

// OpenLoop issues ops at a fixed arrival rate whatever the system does:
// op i is intended to start at i/Rate seconds after the run's start, and
// its latency is measured from that intended start, so a slow system
// cannot hide its latency by slowing the load down.
//
// At most MaxInFlight ops run at once. An op that is due while the cap is
// reached waits for a free slot and is recorded with its intended start
// (its latency includes the wait); one still waiting when the run ends is
// recorded as [Missed] with [ErrNotStarted]: the framework never issued
// it. No op is dropped silently.
//
// On the wall clock the dispatcher's timer wakes up to about a millisecond
// late; that delay counts in the latency like any other (Start - Intended
// shows it). Under [testing/synctest] it is zero.
type OpenLoop struct {
	// Rate is the number of ops per second. Required.
	Rate float64
	// MaxInFlight caps the ops running at once. Zero means
	// [DefaultMaxInFlight].
	MaxInFlight int
}

// ClosedLoop runs Workers workers, each issuing its next op as soon as the
// previous one returned (after Think, if set). An op's intended start is
// its actual start. Worker i of n issues the ops with IDs i, i+n, i+2n,
// and so on.
//
// Under [testing/synctest] an op that never blocks (no I/O, timer or
// channel) lets no virtual time pass: give such workloads a Think time.
type ClosedLoop struct {
	// Workers is the number of concurrent workers. Zero means 1.
	Workers int
	// Think is the pause of a worker between two ops. Zero means none.
	Think time.Duration
}

func (d OpenLoop) validate() error {
	if !(d.Rate > 0) || math.IsInf(d.Rate, 0) {
		return fmt.Errorf("sim: OpenLoop.Rate %v is not a positive number of ops per second", d.Rate)
	}
	if d.MaxInFlight < 0 {
		return fmt.Errorf("sim: OpenLoop.MaxInFlight %d is negative", d.MaxInFlight)
	}
	return nil
}

func (d ClosedLoop) validate() error {
	if d.Workers < 0 {
		return fmt.Errorf("sim: ClosedLoop.Workers %d is negative", d.Workers)
	}
	if d.Think < 0 {
		return fmt.Errorf("sim: ClosedLoop.Think %v is negative", d.Think)
	}
	return nil
}

// workRun is the state one run's workload shares between its goroutines.
type workRun struct {
	seed     int64
	start    time.Time
	end      time.Duration // no op is intended at or after end
	kinds    []OpKind
	cum      []int // cumulative weights
	timeout  time.Duration
	classify func(error) Outcome
	ctx      context.Context // parent of every op's context
	stop     <-chan struct{} // closed when no new op may start
	stopErr  func() error    // why stop closed: nil at the planned end
	rec      *Recorder
	// cutAt is 1 + the offset at which the runner cancelled the ops in
	// flight at the end of the drain (0: it did not).
	cutAt atomic.Int64
	// turns, in a bubble, orders the starts of ops due at the same
	// instant by ID (see turns.go).
	turns *turns

	// inflight holds the ops started and not yet finished, so that ops
	// which ignore cancellation can be recorded as abandoned (see
	// abandon); once abandoned is set, nothing more is recorded.
	// panicErr is the first panic of an op. All three are guarded by mu.
	mu        sync.Mutex
	inflight  map[uint64]Op
	abandoned bool
	panicErr  error
}

// panicked returns the first panic of an op, if any.
func (w *workRun) panicked() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.panicErr
}

// ErrAbandoned is the error of an op that was still running when its run
// ended: it ignored the cancellation of its context for longer than the
// run's drain and grace. The op's goroutine is left to the client (closing
// the client usually ends it); the History records the op as Unknown, with
// the time it was abandoned as its end.
var ErrAbandoned = errors.New("sim: op ignored cancellation and was abandoned at the end of the run")

// begin notes op as in flight; it reports false once the run has
// abandoned its ops, when the op must not run.
func (w *workRun) begin(op Op) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.abandoned {
		return false
	}
	if w.inflight == nil {
		w.inflight = make(map[uint64]Op)
	}
	w.inflight[op.ID] = op
	return true
}

// done takes op id off the in-flight set; it reports false when the op was
// abandoned (and recorded) meanwhile.
func (w *workRun) done(id uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.abandoned {
		return false
	}
	delete(w.inflight, id)
	return true
}

// abandon records every op still in flight as Unknown with ErrAbandoned,
// ending at now, and stops all later recording. It returns how many.
func (w *workRun) abandon(now time.Duration) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.abandoned = true
	for _, op := range w.inflight {
		op.End = max(now, op.Start)
		op.Outcome = Unknown
		op.Err = ErrAbandoned.Error()
		w.rec.Record(op)
	}
	n := len(w.inflight)
	w.inflight = nil
	return n
}

func newWorkRun(ctx context.Context, seed int64, start time.Time, end time.Duration, w Workload, stop <-chan struct{}, rec *Recorder) *workRun {
	wr := &workRun{seed: seed, start: start, end: end, kinds: w.Kinds, timeout: w.Timeout,
		classify: w.Classify, ctx: ctx, stop: stop, rec: rec}
	if wr.classify == nil {
		wr.classify = Classify
	}
	total := 0
	for _, k := range w.Kinds {
		total += max(k.Weight, 0)
		if k.Weight == 0 {
			total++
		}
		wr.cum = append(wr.cum, total)
	}
	return wr
}

const (
	saltKind  = 0x6b696e64 // "kind"
	saltInput = 0x696e7075 // "inpu"
)

// draw picks the kind and input of op id from the seed alone.
func (w *workRun) draw(id uint64) (k *OpKind, input string, err error) {
	total := uint64(w.cum[len(w.cum)-1])
	hi, _ := bits.Mul64(mix(uint64(w.seed), id, saltKind), total) // uniform in [0, total)
	i := 0
	for uint64(w.cum[i]) <= hi {
		i++
	}
	k = &w.kinds[i]
	if k.Input != nil {
		input, err = callInput(k, rand.New(rand.NewPCG(uint64(w.seed), mix(uint64(w.seed), id, saltInput))))
	}
	return k, input, err
}

func callInput(k *OpKind, r *rand.Rand) (input string, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w in the Input of op kind %q: %v", ErrPanic, k.Name, v)
		}
	}()
	return k.Input(r), nil
}

func callDo(k *OpKind, ctx context.Context, id uint64, input string) (output string, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w in op %d (%s): %v", ErrPanic, id, k.Name, v)
		}
	}()
	return k.Do(ctx, input)
}

// do runs op id and records it. closed says the intended start is the
// actual start: a closed-loop op, which does not start (and do reports
// false) if the load stopped while it waited for its turn.
func (w *workRun) do(id uint64, intended time.Duration, closed bool) bool {
	if w.turns != nil {
		w.turns.wait(time.Now(), turnKey{class: turnOp, a: id}, nil)
		if closed && (w.stopped() || time.Since(w.start) >= w.end) {
			return false
		}
	}
	k, input, err := w.draw(id)
	op := Op{ID: id, Kind: k.Name, Intended: intended, Input: input}
	ctx := withOp(w.ctx, w.seed, id)
	var cancel context.CancelFunc
	switch {
	case w.timeout > 0 && w.turns != nil:
		ctx, cancel = w.turns.withTimeout(ctx, w.timeout, id)
	case w.timeout > 0:
		ctx, cancel = context.WithTimeout(ctx, w.timeout)
	}
	if cancel != nil {
		defer cancel()
	}
	op.Start = time.Since(w.start)
	if closed {
		op.Intended = op.Start
	}
	if !w.begin(op) {
		return false
	}
	if err == nil {
		op.Output, err = callDo(k, ctx, id, input)
	}
	op.End = time.Since(w.start)
	if w.done(id) {
		w.finish(&op, err)
	}
	return true
}

// skip records op id as due at intended but never started.
func (w *workRun) skip(id uint64, intended time.Duration, why error) {
	k, input, err := w.draw(id)
	now := time.Since(w.start)
	op := Op{ID: id, Kind: k.Name, Intended: intended, Start: now, End: now, Input: input}
	if err == nil {
		err = why
	}
	op.Outcome = Missed
	if !errors.Is(err, ErrNotStarted) {
		err = fmt.Errorf("%w: %w", ErrNotStarted, err) // the run was cancelled
	}
	op.Err = err.Error()
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.abandoned {
		w.rec.Record(op)
	}
}

// cut notes that the runner cancels the ops in flight now, at offset at.
func (w *workRun) cut(at time.Duration) { w.cutAt.Store(int64(at) + 1) }

// cutOff reports whether op, which failed, was cut off by the end of the
// run: it ended once the runner had cancelled it, and its own Timeout
// would have ended it later than that (see [Missed]).
func (w *workRun) cutOff(op *Op) bool {
	c := w.cutAt.Load()
	if c == 0 || w.timeout <= 0 {
		return false
	}
	at := time.Duration(c - 1)
	return op.End >= at && op.Start+w.timeout > at
}

// hung reports whether op, which failed, hung: its workload has no
// Timeout, and it ended once the runner had cancelled the ops in flight
// at the end of the drain.
func (w *workRun) hung(op *Op) bool {
	c := w.cutAt.Load()
	return c != 0 && w.timeout <= 0 && op.End >= time.Duration(c-1)
}

func (w *workRun) finish(op *Op, err error) {
	if err != nil && !errors.Is(err, ErrPanic) && w.cutOff(op) {
		op.Err = fmt.Errorf("%w; the op returned: %w", ErrCutOff, err).Error()
		op.Outcome = Missed
		w.rec.Record(*op)
		return
	}
	if err != nil {
		if errors.Is(err, ErrPanic) {
			w.mu.Lock()
			if w.panicErr == nil {
				w.panicErr = err
			}
			w.mu.Unlock()
		}
		op.Err = err.Error()
		op.Outcome = w.classifyErr(err)
		if !errors.Is(err, ErrPanic) && w.hung(op) {
			// Classified by what the op returned; the record says it hung.
			op.Err = fmt.Errorf("%w; the op returned: %w", ErrHung, err).Error()
		}
	}
	w.rec.Record(*op)
}

// classifyErr calls the workload's classifier; a panic, an invalid
// outcome or Missed (which only the runner decides) gives Unknown.
func (w *workRun) classifyErr(err error) (o Outcome) {
	defer func() {
		if recover() != nil || o > Unknown {
			o = Unknown
		}
	}()
	return w.classify(err)
}

// stopped reports whether no new op may start.
func (w *workRun) stopped() bool {
	select {
	case <-w.stop:
		return true
	default:
		return false
	}
}

func (d OpenLoop) drive(w *workRun) {
	limit := d.MaxInFlight
	if limit == 0 {
		limit = DefaultMaxInFlight
	}
	slots := make(chan struct{}, limit)
	interval := float64(time.Second) / d.Rate
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// Ops are made by workers that live as long as the run, so that their
	// stacks grow once: a new worker only when all are busy. Which worker
	// makes an op changes nothing the op does.
	var wg sync.WaitGroup
	type job struct {
		i        uint64
		intended time.Duration
	}
	work := make(chan job)
	defer wg.Wait()
	defer close(work)
	for i := uint64(0); ; i++ {
		intended := time.Duration(float64(i) * interval)
		if intended >= w.end || w.stopped() {
			w.skipDue(i, interval)
			return
		}
		if wait := intended - time.Since(w.start); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-w.stop:
				w.skipDue(i, interval)
				return
			}
		}
		select {
		case slots <- struct{}{}:
		default:
			select {
			case slots <- struct{}{}:
			case <-w.stop:
				w.skipDue(i, interval)
				return
			}
		}
		if time.Since(w.start) >= w.end {
			// The slot came free only at the end: too late to start.
			<-slots
			w.skipDue(i, interval)
			return
		}
		select {
		case work <- job{i, intended}:
		default:
			wg.Go(func() {
				for j, ok := (job{i, intended}), true; ok; j, ok = <-work {
					w.do(j.i, j.intended, false)
					<-slots
				}
			})
		}
	}
}

// skipDue records as not started the ops from i on that were due before
// now and before the end.
func (w *workRun) skipDue(i uint64, interval float64) {
	why := ErrNotStarted
	if err := w.stopErr(); err != nil {
		why = err
	}
	limit := min(time.Since(w.start), w.end)
	for ; ; i++ {
		intended := time.Duration(float64(i) * interval)
		if intended >= limit {
			return
		}
		w.skip(i, intended, why)
	}
}

func (d ClosedLoop) drive(w *workRun) {
	var wg sync.WaitGroup
	n := max(d.Workers, 1)
	for i := range n {
		wg.Go(func() {
			var timer *time.Timer
			// Worker i issues ops i, i+n, i+2n, ...: which worker an op
			// belongs to, and so its kind and input, never depends on
			// which worker came first.
			for id := uint64(i); !w.stopped() && time.Since(w.start) < w.end; id += uint64(n) {
				if !w.do(id, 0, true) {
					return
				}
				if d.Think <= 0 {
					continue
				}
				if timer == nil {
					timer = time.NewTimer(d.Think)
					defer timer.Stop()
				} else {
					timer.Reset(d.Think)
				}
				select {
				case <-timer.C:
				case <-w.stop:
					return
				}
			}
		})
	}
	wg.Wait()
}

// protect runs f, turning a panic into an error wrapping [ErrPanic].
func protect(what string, f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w in %s: %v", ErrPanic, what, v)
		}
	}()
	return f()
}
