package sim

// Traceparent returns the W3C traceparent that the op with the given ID
// carried in its context ([Traceparent]) during the run h recorded: the
// value an HTTP workload sent, and the one the service's logs and spans
// can be matched with after the run. Its trace ID is characters 3 to 35:
//
//	tp := h.Traceparent(op.ID) // "00-<trace ID>-<parent ID>-01"
//	traceID := tp[3:35]
func (h *History) Traceparent(id uint64) string { return traceparent(h.Seed, id) }
