package sim

import (
	"time"

	"github.com/shakedown/shakedown/toxics"
)

// Loss and targeted faults on the simulated network, with the behaviour of
// harness.Link (see toxics.Loss and toxics.Targeted).

type lossRule struct {
	id uint64
	f  toxics.Loss
}

// lossDelay draws how late one segment arrives under the loss faults of
// pol: the sum of the retransmission timeouts of its lost tries, under
// each fault. p.mu must be held.
func (p *pipe) lossDelay(pol *policy) time.Duration {
	var d time.Duration
	for _, l := range pol.loss {
		if p.lossBad == nil {
			p.lossBad = map[uint64]bool{}
		}
		bad := p.lossBad[l.id]
		d += l.f.SegmentDelay(&bad, func() float64 { return p.rand().Float64() })
		p.lossBad[l.id] = bad
	}
	return d
}

// enqueueLossy queues data written at now and due at at, cut into
// segments of toxics.SegmentSize bytes each late by its own loss delay
// (order is kept: enqueue never lets a chunk arrive before the one ahead).
func (p *pipe) enqueueLossy(data []byte, at time.Time, pol *policy) {
	if len(pol.loss) == 0 {
		p.enqueue(chunk{data: data}, at, pol.rate)
		return
	}
	for len(data) > 0 {
		n := min(len(data), toxics.SegmentSize)
		p.enqueue(chunk{data: data[:n:n]}, at.Add(p.lossDelay(pol)), pol.rate)
		data = data[n:]
	}
}

// picks reports whether the targeted fault af acts on the connection with
// number seq.
func (ep *Endpoint) picks(af *activeFault, seq uint64) bool {
	t, ok := af.fault.(toxics.Targeted)
	if !ok {
		return true
	}
	before := seq < af.first
	var nth uint64
	if !before {
		nth = seq - af.first + 1
	}
	u := float64(splitmix(uint64(ep.n.seed)^splitmix(ep.nameHash^af.id)^seq)>>11) / (1 << 53)
	return t.Conns.Picks(before, nth, u)
}

// effective is the policy of p's connection: pol with the targeted faults
// that pick it added.
func (p *pipe) effective(pol *policy) *policy {
	if pol == nil || len(pol.targeted) == 0 {
		return pol
	}
	eff := *pol
	eff.targeted = nil
	for _, af := range pol.targeted {
		if !p.ep.picks(af, p.seq) {
			continue
		}
		inner, _ := toxics.Untarget(af.fault)
		switch f := inner.(type) {
		case toxics.Latency:
			eff.latency = append(eff.latency[:len(eff.latency):len(eff.latency)], f)
		case toxics.Loss:
			eff.loss = append(eff.loss[:len(eff.loss):len(eff.loss)], lossRule{id: af.id, f: f})
		case toxics.Bandwidth:
			if eff.rate < 0 || f.Rate < eff.rate {
				eff.rate = f.Rate
			}
		case toxics.Slicer:
			if eff.slicer == nil {
				eff.slicer = &f
			}
		case toxics.SlowClose:
			eff.slowClose += f.Delay
		case toxics.Corrupt:
			eff.corrupt = append(eff.corrupt[:len(eff.corrupt):len(eff.corrupt)], f.Probability)
		case toxics.DataLimit:
			eff.limits = append(eff.limits[:len(eff.limits):len(eff.limits)], limitRule{id: af.id, bytes: f.Bytes})
		case toxics.Timeout, toxics.Blackhole:
			eff.drop = true
		}
	}
	return &eff
}

// applyTargetedLocked starts a targeted Reset or Timeout on the live
// connections it picks and returns those to sever now; other targeted
// faults act through the policy. ep.mu must be held.
func (ep *Endpoint) applyTargetedLocked(af *activeFault, t toxics.Targeted) (cut []*pair, mode int) {
	switch f := t.Fault.(type) {
	case toxics.Reset:
		for pr := range ep.pairs {
			if ep.picks(af, pr.seq) {
				cut = append(cut, pr)
			}
		}
		return cut, severResetBoth
	case toxics.Timeout:
		af.timers = map[*pair]stopper{}
		for pr := range ep.pairs {
			if !ep.picks(af, pr.seq) {
				continue
			}
			if f.After == 0 {
				cut = append(cut, pr)
			} else {
				af.timers[pr] = closeAfter(pr, af.id, f.After)
			}
		}
	}
	return cut, severFin
}

// resetPickedLocked reports whether an active targeted Reset picks the new
// connection pr. ep.mu must be held.
func (ep *Endpoint) resetPickedLocked(pr *pair) bool {
	for _, af := range ep.faults {
		if t, ok := af.fault.(toxics.Targeted); ok {
			if _, ok := t.Fault.(toxics.Reset); ok && ep.picks(af, pr.seq) {
				return true
			}
		}
	}
	return false
}

// targetedTimeoutsLocked starts the targeted timeouts that pick the new
// connection pr, and reports whether one closes it at once. ep.mu must be
// held.
func (ep *Endpoint) targetedTimeoutsLocked(pr *pair) (closeNow bool) {
	for _, af := range ep.faults {
		t, ok := af.fault.(toxics.Targeted)
		if !ok {
			continue
		}
		f, ok := t.Fault.(toxics.Timeout)
		if !ok || !ep.picks(af, pr.seq) {
			continue
		}
		if f.After == 0 {
			closeNow = true
		} else {
			af.timers[pr] = closeAfter(pr, af.id, f.After)
		}
	}
	return closeNow
}
