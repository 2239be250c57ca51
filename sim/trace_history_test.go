package sim

import (
	"context"
	"testing"
)

// TestHistoryTraceparent: the traceparent a history gives an op is the one
// its context carried during the run.
func TestHistoryTraceparent(t *testing.T) {
	h := &History{Seed: 42}
	for id := range uint64(5) {
		ctx := withOp(context.Background(), 42, id)
		if got, want := h.Traceparent(id), Traceparent(ctx); got != want {
			t.Errorf("op %d: History.Traceparent = %q, the op's context carried %q", id, got, want)
		}
	}
	if (&History{Seed: 43}).Traceparent(1) == h.Traceparent(1) {
		t.Error("two seeds gave op 1 the same traceparent")
	}
}
