package sim

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shakedown/shakedown/toxics"
)

// pickyTarget takes latency in whole milliseconds and no reset, and says
// why through ValidateFault; Apply must never be reached for either.
type pickyTarget struct {
	stubTarget
}

var errNoReset = errors.New("resets are out of reach here")

func (p *pickyTarget) Supports(k toxics.Kind) bool { return k == toxics.KindLatency }

func (p *pickyTarget) ValidateFault(f toxics.Fault) error {
	switch f := f.(type) {
	case toxics.Latency:
		if f.Delay%time.Millisecond != 0 {
			return &toxics.FieldError{Kind: toxics.KindLatency, Field: "delay", Value: f.Delay, Reason: "whole milliseconds only"}
		}
		return nil
	case toxics.Reset:
		return errNoReset
	}
	return nil
}

func TestValidateAsksTheTargetWhy(t *testing.T) {
	p := &pickyTarget{stubTarget{name: "db", start: time.Now()}}
	s := Schedule{Steps: []Step{
		{At: 0, For: ms(10), Target: "db", Fault: toxics.Latency{Delay: ms(5)}},
		{At: ms(20), For: ms(10), Target: "db", Fault: toxics.Latency{Delay: 1500 * time.Microsecond}},
		{At: ms(40), For: ms(10), Target: "db", Fault: toxics.Reset{}},
		{At: ms(60), For: ms(10), Target: "db", Fault: toxics.Down{}},
	}}
	err := s.Validate([]Target{p})
	if err == nil {
		t.Fatal("Validate passed a schedule with two faults the target refuses")
	}
	msg := err.Error()
	for _, want := range []string{
		`step 1 (+20ms for 10ms db latency(1.5ms)): target "db" cannot apply latency(1.5ms): toxics: latency.delay = 1.5ms: whole milliseconds only`,
		`step 2 (+40ms for 10ms db reset()): target "db" does not support the link fault reset: resets are out of reach here`,
		// No reason from ValidateFault: the plain message.
		`step 3 (+60ms for 10ms db down()): target "db" does not support the link fault down`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error does not say %q; it is:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "fault down:") {
		t.Errorf("the message for down gives a reason the target never gave:\n%s", msg)
	}
	if strings.Contains(msg, "step 0") {
		t.Errorf("step 0 is a latency the target takes, but the error names it:\n%s", msg)
	}
	var fe *toxics.FieldError
	if !errors.As(err, &fe) || fe.Field != "delay" {
		t.Errorf("the target's *toxics.FieldError is not kept in the chain: %v", err)
	}
	if !errors.Is(err, errNoReset) {
		t.Errorf("the target's reason for the reset is not kept in the chain: %v", err)
	}

	// Run refuses the schedule before anything is applied.
	h, err := Run(context.Background(), Plan{World: World{Targets: []Target{p}}, Schedule: s})
	if err == nil || h != nil {
		t.Fatalf("Run = %v, %v; want no History and the validation error", h, err)
	}
	if calls := p.log(); len(calls) != 0 {
		t.Errorf("Run applied %v before refusing the schedule", calls)
	}
}
