package toxics

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Clock fault kinds, mildest first: faults of a simulated endpoint's
// clock relative to the client's, for TTL, lease and token-expiry bugs.
// They are node faults (they implement [NodeFault]), but IsNode reports
// false for them and [NodeKinds] does not list them: only a simulated
// endpoint takes them ([Kind.IsClock]). A real dependency's clock is not
// the test's to set, so harness targets refuse them.
const (
	KindClockSkew Kind = "clock_skew"
	KindClockJump Kind = "clock_jump"
)

var clockKinds = []Kind{KindClockSkew, KindClockJump}

// MaxClockOffset bounds a clock fault's offset either way.
const MaxClockOffset = 24 * time.Hour

// ClockKinds returns every clock fault kind, mildest first.
func ClockKinds() []Kind { return append([]Kind(nil), clockKinds...) }

// IsClock reports whether k is a clock fault kind.
func (k Kind) IsClock() bool { return contains(clockKinds, k) }

// ClockSkew sets the endpoint's clock Offset ahead of the client's
// (behind if negative) while the fault lasts: its clock steps by Offset
// when the fault begins and steps back when it is reverted. Durations the
// endpoint measures on its own clock (a TTL set and counted by the
// server) are unchanged by a steady skew; what changes is the meaning of
// every absolute time the two sides exchange (an expiry at a time the
// client computed, a token's "not after"), and a duration that spans the
// fault's start or end is off by Offset.
type ClockSkew struct {
	Offset time.Duration
}

// ClockJump steps the endpoint's clock by By (backward if negative) when
// the fault begins. With Back, reverting the fault steps it back;
// otherwise the step stays after the revert (as after an NTP step), until
// the endpoint is cleared.
type ClockJump struct {
	By   time.Duration
	Back bool
}

func clockOffset(k Kind, field string, d time.Duration) error {
	switch {
	case d == 0:
		return &FieldError{Kind: k, Field: field, Value: d, Reason: "must not be 0 (the clock would not move)"}
	case d < -MaxClockOffset || d > MaxClockOffset:
		return &FieldError{Kind: k, Field: field, Value: d, Reason: fmt.Sprintf("must be within ±%v", MaxClockOffset)}
	}
	return nil
}

func signed(d time.Duration) string {
	if d > 0 {
		return "+" + d.String()
	}
	return d.String()
}

func (ClockSkew) Kind() Kind { return KindClockSkew }
func (f ClockSkew) Validate() error {
	return clockOffset(KindClockSkew, "offset", f.Offset)
}
func (f ClockSkew) String() string { return call(KindClockSkew, signed(f.Offset)) }

func (ClockJump) Kind() Kind { return KindClockJump }
func (f ClockJump) Validate() error {
	return clockOffset(KindClockJump, "by", f.By)
}
func (f ClockJump) String() string {
	s := signed(f.By)
	if f.Back {
		s += " back"
	}
	return call(KindClockJump, s)
}

func (ClockSkew) fault()     {}
func (ClockJump) fault()     {}
func (ClockSkew) nodeFault() {}
func (ClockJump) nodeFault() {}

// ClockOffset returns the offset a clock fault sets while it lasts (a
// skew's Offset, a jump's By), and false for any other fault.
func ClockOffset(f Fault) (time.Duration, bool) {
	switch f := f.(type) {
	case ClockSkew:
		return f.Offset, true
	case ClockJump:
		return f.By, true
	}
	return 0, false
}

// clockWire is the JSON form of the clock faults, for example
//
//	{"kind":"clock_skew","offset":"-3s"}
//	{"kind":"clock_jump","by":"1h","back":true}
type clockWire struct {
	Kind   Kind    `json:"kind"`
	Offset *string `json:"offset,omitempty"`
	By     *string `json:"by,omitempty"`
	Back   *bool   `json:"back,omitempty"`
}

// marshalClock is Marshal for the clock faults; f is valid.
func marshalClock(f Fault) ([]byte, error) {
	w := clockWire{Kind: f.Kind()}
	switch f := f.(type) {
	case ClockSkew:
		w.Offset = dur(f.Offset)
	case ClockJump:
		w.By = dur(f.By)
		if f.Back {
			w.Back = ptr(true)
		}
	}
	return json.Marshal(w)
}

// unmarshalClock decodes a clock fault; ok is false if data is not one
// (then Unmarshal goes on with the other kinds).
func unmarshalClock(data []byte) (f Fault, ok bool, err error) {
	var w clockWire
	if _, ok, err := decodeFamily(data, Kind.IsClock, &w, clockFields); !ok || err != nil {
		return nil, ok, err
	}
	present := map[string]bool{"offset": w.Offset != nil, "by": w.By != nil, "back": w.Back != nil}
	allowed := map[Kind][]string{KindClockSkew: {"offset"}, KindClockJump: {"by", "back"}}[w.Kind]
	for _, name := range []string{"offset", "by", "back"} {
		if present[name] && !slices.Contains(allowed, name) {
			return nil, true, fmt.Errorf("toxics: decode %s: it has no field %q (it takes: %s)", w.Kind, name, clockFields(w.Kind))
		}
	}
	if !present[allowed[0]] {
		return nil, true, fmt.Errorf("toxics: decode %s: field %q is required", w.Kind, allowed[0])
	}
	d := decoder{kind: w.Kind}
	if w.Kind == KindClockSkew {
		f = ClockSkew{Offset: d.dur("offset", w.Offset)}
	} else {
		f = ClockJump{By: d.dur("by", w.By), Back: deref(w.Back)}
	}
	if d.err != nil {
		return nil, true, d.err
	}
	if err := f.Validate(); err != nil {
		return nil, true, err
	}
	return f, true, nil
}

func clockFields(k Kind) string {
	if k == KindClockSkew {
		return "offset"
	}
	return "by, back"
}
