package sim

import (
	"bufio"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/shakedown/shakedown/toxics"
)

// Redis protocol faults in FakeKV
//
// FakeKV takes the Redis protocol faults ([toxics.RedisError],
// [toxics.RedisDelay]) itself, as harness's Link does for a real Redis: a
// command the fault selects is answered with the error reply instead of
// being run (it does not count in Requests or Calls), or held for the
// delay (less if the fault is reverted) before it runs. Replies keep the
// order of the commands. Shares are drawn from the network's seed, the
// fault's place in the order of Apply calls, the connection's number and
// the command's. The other kinds go to the embedded Endpoint.

// kvFault is one active protocol fault of a FakeKV.
type kvFault struct {
	id    uint64
	fault toxics.LinkFault
	req   toxics.Requests
	count int64         // commands it matched, for Nth; under kvFaults.mu
	done  chan struct{} // closed by revert
}

type kvFaults struct {
	mu     sync.Mutex
	active []*kvFault
	nextID uint64
	conns  uint64
}

// Supports reports whether kv takes faults of kind k: its Endpoint's and
// the Redis protocol kinds.
func (kv *FakeKV) Supports(k toxics.Kind) bool {
	return kv.Endpoint.Supports(k) || k.Protocol() == toxics.ProtocolRedis
}

// Apply starts f: a Redis protocol fault in the fake itself, any other on
// its Endpoint (see [Endpoint.Apply]).
func (kv *FakeKV) Apply(ctx context.Context, f toxics.Fault) (revert func(context.Context) error, err error) {
	if f == nil || f.Kind().Protocol() != toxics.ProtocolRedis {
		return kv.Endpoint.Apply(ctx, f)
	}
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("sim: fake KV %q: %w", kv.Name(), err)
	}
	if ctx != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("sim: fake KV %q: apply %s: %w", kv.Name(), f, ctx.Err())
	}
	req, _ := toxics.RequestsOf(f)
	fs := &kv.faults
	fs.mu.Lock()
	fs.nextID++
	kf := &kvFault{id: fs.nextID, fault: f.(toxics.LinkFault), req: req, done: make(chan struct{})}
	fs.active = append(fs.active, kf)
	fs.mu.Unlock()
	return func(context.Context) error { kv.revertFault(kf); return nil }, nil
}

func (kv *FakeKV) revertFault(kf *kvFault) {
	fs := &kv.faults
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if i := slices.Index(fs.active, kf); i >= 0 {
		fs.active = slices.Delete(fs.active, i, i+1)
		close(kf.done)
	}
}

// Active returns the faults applied to kv now: its Endpoint's, then its
// protocol faults in the order applied.
func (kv *FakeKV) Active() []toxics.Fault {
	out := kv.Endpoint.Active()
	kv.faults.mu.Lock()
	defer kv.faults.mu.Unlock()
	for _, kf := range kv.faults.active {
		out = append(out, kf.fault)
	}
	return out
}

// Clear reverts every fault of kv.
func (kv *FakeKV) Clear(ctx context.Context) error {
	kv.clearFaults()
	return kv.Endpoint.Clear(ctx)
}

func (kv *FakeKV) clearFaults() {
	fs := &kv.faults
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, kf := range fs.active {
		close(kf.done)
	}
	fs.active = nil
}

// kvConnFaults is one connection's view: its number and, per fault, how
// many commands it drew for.
type kvConnFaults struct {
	conn  uint64
	drawn map[uint64]uint64
}

func (kv *FakeKV) newConnFaults() *kvConnFaults {
	kv.faults.mu.Lock()
	defer kv.faults.mu.Unlock()
	kv.faults.conns++
	return &kvConnFaults{conn: kv.faults.conns, drawn: map[uint64]uint64{}}
}

// meet applies the active faults to the command name: it holds it for the
// delays that select it (flushing the replies before, as a server that
// has answered them would), then reports the error reply of the first
// RedisError that selects it, if any.
func (kv *FakeKV) meet(cf *kvConnFaults, w *bufio.Writer, name string) (reply string, answered bool) {
	name = upperName(name)
	seed := uint64(kv.Endpoint.n.seed)
	var hold time.Duration
	var holders []*kvFault
	fs := &kv.faults
	fs.mu.Lock()
	for _, kf := range fs.active {
		if !kf.req.Matches(name) {
			continue
		}
		var selected bool
		if kf.req.Nth > 0 {
			kf.count++
			selected = kf.count == int64(kf.req.Nth)
		} else {
			i := cf.drawn[kf.id]
			cf.drawn[kf.id] = i + 1
			u := float64(splitmix(splitmix(splitmix(seed^kf.id)^cf.conn)^i)>>11) / (1 << 53)
			selected = u < kf.req.Share
		}
		if !selected {
			continue
		}
		switch f := kf.fault.(type) {
		case toxics.RedisDelay:
			hold += f.Delay
			holders = append(holders, kf)
		case toxics.RedisError:
			if !answered {
				reply, answered = f.Reply, true
			}
		}
	}
	fs.mu.Unlock()
	if hold > 0 {
		_ = w.Flush()
		t := time.NewTimer(hold)
		defer t.Stop()
		cases := make(chan struct{})
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for _, kf := range holders {
			wg.Go(func() {
				select {
				case <-kf.done:
					select {
					case cases <- struct{}{}:
					case <-stop:
					}
				case <-stop:
				}
			})
		}
		select {
		case <-t.C:
		case <-cases:
		}
		close(stop)
		wg.Wait()
	}
	return reply, answered
}
