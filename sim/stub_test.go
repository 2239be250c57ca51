package sim

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/shakedown/shakedown/toxics"
)

// stubTarget is an in-memory Target that records what was applied and
// reverted, in order, with the offset from a start time.
type stubTarget struct {
	name      string
	nodes     bool  // supports node faults as well as link faults
	applyErr  error // returned by Apply
	revertErr error // returned by every revert
	block     bool  // Apply blocks until its context is done

	mu    sync.Mutex
	start time.Time
	calls []stubCall
}

type stubCall struct {
	Revert bool
	Target string
	Fault  string
	At     time.Duration
}

func (s *stubTarget) Name() string { return s.name }

func (s *stubTarget) Supports(k toxics.Kind) bool { return k.IsLink() || s.nodes && k.IsNode() }

func (s *stubTarget) Apply(ctx context.Context, f toxics.Fault) (func(context.Context) error, error) {
	if s.block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if s.applyErr != nil {
		return nil, s.applyErr
	}
	s.note(false, f)
	return func(context.Context) error {
		s.note(true, f)
		return s.revertErr
	}, nil
}

func (s *stubTarget) note(revert bool, f toxics.Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, stubCall{Revert: revert, Target: s.name, Fault: f.String(), At: time.Since(s.start)})
}

func (s *stubTarget) log() []stubCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]stubCall(nil), s.calls...)
}

// sharedLog makes several stub targets write into one log so the test can
// see the order across targets.
type sharedLog struct {
	mu    sync.Mutex
	calls []string
}

type loggingTarget struct {
	name string
	log  *sharedLog
}

func (l loggingTarget) Name() string                { return l.name }
func (l loggingTarget) Supports(k toxics.Kind) bool { return true }
func (l loggingTarget) Apply(_ context.Context, f toxics.Fault) (func(context.Context) error, error) {
	l.add("apply", f)
	return func(context.Context) error { l.add("revert", f); return nil }, nil
}
func (l loggingTarget) add(what string, f toxics.Fault) {
	l.log.mu.Lock()
	defer l.log.mu.Unlock()
	l.log.calls = append(l.log.calls, fmt.Sprintf("%s %s %s", what, l.name, f))
}

var errStub = errors.New("stub failure")

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }
