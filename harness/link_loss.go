package harness

import (
	"time"

	"github.com/Shopify/toxiproxy/v2/stream"
	tpx "github.com/Shopify/toxiproxy/v2/toxics"

	"github.com/shakedown/shakedown/toxics"
)

// runLoss emulates TCP over a lossy path (see toxics.Loss): each chunk is
// cut into segments of toxics.SegmentSize bytes; a lost segment is due one
// retransmission timeout (or several, doubling) after the chunk was read,
// and everything behind it is due no earlier, so order is kept. Runs of
// segments due at the same time travel as one chunk. Like runLatency it
// reads ahead, within the slot's hold limits.
func (st *slotState) runLoss(stub *tpx.ToxicStub, changed <-chan struct{}, f toxics.Loss) bool {
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
				// A later stage measures from the delivery.
				st.held[0].Timestamp = later(st.held[0].Timestamp, due)
				w.out = st.held[0]
			}
		}
		ev, c := st.wait(stub, w, changed)
		switch ev {
		case evChunk:
			st.pushLossy(c, f)
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

// pushLossy holds c, cut where the segments' due times change.
func (st *slotState) pushLossy(c *stream.StreamChunk, f toxics.Loss) {
	var last time.Time
	if n := len(st.dues); n > 0 {
		last = st.dues[n-1]
	}
	start := 0
	var due time.Time
	for i := 0; i < len(c.Data); i += toxics.SegmentSize {
		d := later(c.Timestamp.Add(st.segmentDelay(f)), last)
		if i > 0 && !d.Equal(due) {
			st.push(&stream.StreamChunk{Data: c.Data[start:i], Timestamp: c.Timestamp})
			st.dues = append(st.dues, due)
			start = i
		}
		due, last = d, d
	}
	st.push(&stream.StreamChunk{Data: c.Data[start:], Timestamp: c.Timestamp})
	st.dues = append(st.dues, due)
}

// segmentDelay draws how late one segment arrives (toxics.Loss.SegmentDelay).
func (st *slotState) segmentDelay(f toxics.Loss) time.Duration {
	return f.SegmentDelay(&st.lossBad, st.rng.Float64)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
