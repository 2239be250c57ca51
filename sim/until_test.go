package sim

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shakedown/shakedown/toxics"
)

// A run whose Until decides ends then: the schedule stops and its fault is
// reverted, the op in flight (one that ignores cancellation) is recorded
// as cut off, the framework's miss, and the run waits neither for the
// drain nor for the abandon grace.
func TestUntilEndsTheRunEarly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		db := &stubTarget{name: "db", start: time.Now()}
		var calls int
		var sawInFlight bool
		p := Plan{
			World: World{
				Targets: []Target{db},
				Workload: Workload{
					Driver: ClosedLoop{Workers: 1},
					Kinds: []OpKind{{Name: "hang", Do: func(ctx context.Context, _ string) (string, error) {
						<-release // ignores ctx, as a client without a timeout does
						return "", errors.New("released")
					}}},
				},
			},
			Settings: Settings{Cooldown: time.Second, Drain: 5 * time.Second, SampleEvery: 100 * time.Millisecond},
			Seed:     1,
			Schedule: Schedule{Steps: []Step{{At: 0, For: 3 * time.Second, Target: "db", Fault: toxics.Blackhole{}}}},
			Until: func(h *History, inFlight []Op) bool {
				calls++
				if len(h.Faults) != 1 || h.Faults[0].Start != 0 {
					t.Errorf("Until sees faults %+v, want the one applied at 0", h.Faults)
				}
				for _, op := range inFlight {
					if op.End != h.Duration {
						t.Errorf("op in flight %+v: End is not the call's offset %v", op, h.Duration)
					}
					sawInFlight = true
				}
				return h.Duration >= 500*time.Millisecond
			},
		}
		start := time.Now()
		h, err := Run(context.Background(), p)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if got, want := time.Since(start), 500*time.Millisecond; got != want {
			t.Errorf("Run returned after %v of virtual time, want the moment Until decided: %v", got, want)
		}
		if calls != 5 || !sawInFlight {
			t.Errorf("Until called %d times (want 5, every 100ms), saw an op in flight: %v", calls, sawInFlight)
		}
		if len(h.Faults) != 1 || h.Faults[0].End != 500*time.Millisecond {
			t.Errorf("faults %+v: want the blackhole reverted when the run ended, at 500ms", h.Faults)
		}
		if len(h.Ops) != 1 {
			t.Fatalf("got %d ops, want the one in flight: %+v", len(h.Ops), h.Ops)
		}
		if op := h.Ops[0]; op.Outcome != Missed || !strings.HasPrefix(op.Err, ErrCutOff.Error()) || op.End != 500*time.Millisecond {
			t.Errorf("op in flight recorded as %+v, want Missed, cut off at 500ms", op)
		}
		// The op returns later (its client was closed): nothing more is
		// recorded, and its goroutine ends before the bubble does.
		close(release)
		synctest.Wait()
		if n := len(h.Ops); n != 1 {
			t.Errorf("%d ops after the op returned, want 1", n)
		}
	})
}

// An Until that never decides leaves the run as it is; one that panics
// decides nothing.
func TestUntilThatNeverDecides(t *testing.T) {
	for name, until := range map[string]Until{
		"false":  func(*History, []Op) bool { return false },
		"panics": func(*History, []Op) bool { panic("boom") },
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				db := &stubTarget{name: "db", start: time.Now()}
				p := Plan{
					World: World{Targets: []Target{db}, Workload: Workload{
						Driver: ClosedLoop{Workers: 1, Think: 10 * time.Millisecond},
						Kinds:  []OpKind{{Name: "get", Do: func(context.Context, string) (string, error) { return "", nil }}},
					}},
					Settings: Settings{Cooldown: time.Second},
					Schedule: Schedule{Steps: []Step{{At: 0, For: time.Second, Target: "db", Fault: toxics.Blackhole{}}}},
					Until:    until,
				}
				start := time.Now()
				h, err := Run(context.Background(), p)
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				if got := time.Since(start); got < 2*time.Second {
					t.Errorf("run ended after %v, before its horizon and cooldown (2s)", got)
				}
				for _, op := range h.Ops {
					if op.Outcome != OK {
						t.Fatalf("op %+v: want every op OK", op)
					}
				}
			})
		})
	}
}
