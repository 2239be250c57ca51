package sim

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shakedown/shakedown/toxics"
)

// An op that ignores its context (a client with no timeout) must not hang
// the run: it is recorded as abandoned, Unknown, and the run returns.
func TestRunAbandonsOpsThatIgnoreCancellation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		db := &stubTarget{name: "db", start: time.Now()}
		cfg := Plan{
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
			Settings: Settings{
				Cooldown: -1,
				Drain:    500 * time.Millisecond,
			},
			Seed:     1,
			Schedule: Schedule{Steps: []Step{{At: 0, For: time.Second, Target: "db", Fault: toxics.Blackhole{}}}},
		}
		start := time.Now()
		h, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if got, want := time.Since(start), time.Second+cfg.Drain+AbandonGrace; got != want {
			t.Errorf("Run returned after %v of virtual time, want the horizon, the drain and the grace: %v", got, want)
		}
		if len(h.Ops) != 1 {
			t.Fatalf("got %d ops, want the one that hung: %+v", len(h.Ops), h.Ops)
		}
		op := h.Ops[0]
		if op.Outcome != Unknown || op.Err != ErrAbandoned.Error() || op.End != time.Since(start) {
			t.Errorf("hung op recorded as %+v, want Unknown, %q, ending at %v", op, ErrAbandoned, time.Since(start))
		}
		// The op returns later (its client was closed): nothing more is
		// recorded, and its goroutine ends before the bubble does.
		close(release)
		synctest.Wait()
	})
}
