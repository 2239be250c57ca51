package toxics_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shakedown/shakedown/toxics"
)

var everyClock = []toxics.Fault{
	toxics.ClockSkew{Offset: 3 * time.Second},
	toxics.ClockSkew{Offset: -1500 * time.Millisecond},
	toxics.ClockJump{By: time.Hour},
	toxics.ClockJump{By: -2 * time.Second, Back: true},
}

func TestClockKinds(t *testing.T) {
	seen := map[toxics.Kind]bool{}
	for _, f := range everyClock {
		seen[f.Kind()] = true
		if _, ok := f.(toxics.NodeFault); !ok {
			t.Errorf("%v is not a NodeFault", f)
		}
		if k := f.Kind(); !k.IsClock() || k.IsLink() || k.IsNode() || k.IsHTTP() || k.IsNetwork() || k.Protocol() != "" {
			t.Errorf("%v: IsClock=%v IsLink=%v IsNode=%v, want only IsClock", f, k.IsClock(), k.IsLink(), k.IsNode())
		}
		if _, ok := toxics.ClockOffset(f); !ok {
			t.Errorf("ClockOffset(%v) is not ok", f)
		}
	}
	for _, k := range toxics.ClockKinds() {
		if !seen[k] {
			t.Errorf("kind %s has no value in everyClock", k)
		}
	}
	if _, ok := toxics.ClockOffset(toxics.Crash{}); ok {
		t.Error("ClockOffset(crash) is ok")
	}
}

func TestClockHandWritten(t *testing.T) {
	for _, tc := range []struct {
		json string
		want toxics.Fault
	}{
		{`{"kind":"clock_skew","offset":"-3s"}`, toxics.ClockSkew{Offset: -3 * time.Second}},
		{`{"kind":"clock_jump","by":"1h"}`, toxics.ClockJump{By: time.Hour}},
		{`{"kind":"clock_jump","by":"250ms","back":true}`, toxics.ClockJump{By: 250 * time.Millisecond, Back: true}},
	} {
		got, err := toxics.Unmarshal([]byte(tc.json))
		if err != nil || got != tc.want {
			t.Errorf("Unmarshal(%s) = %#v, %v; want %#v", tc.json, got, err, tc.want)
		}
	}
}

func TestClockInvalid(t *testing.T) {
	for _, tc := range []struct {
		fault toxics.Fault
		field string
	}{
		{toxics.ClockSkew{}, "offset"},
		{toxics.ClockSkew{Offset: 25 * time.Hour}, "offset"},
		{toxics.ClockJump{By: -toxics.MaxClockOffset - 1}, "by"},
		{toxics.ClockJump{Back: true}, "by"},
	} {
		var fe *toxics.FieldError
		if err := tc.fault.Validate(); !errors.As(err, &fe) || fe.Field != tc.field || fe.Kind != tc.fault.Kind() {
			t.Errorf("%#v: Validate() = %v, want a *FieldError on %s.%s", tc.fault, err, tc.fault.Kind(), tc.field)
		}
	}
	for _, tc := range []struct{ json, want string }{
		{`{"kind":"clock_skew"}`, `field "offset" is required`},
		{`{"kind":"clock_skew","offset":"3s","back":true}`, `no field "back"`},
		{`{"kind":"clock_jump","offset":"3s"}`, `no field "offset"`},
		{`{"kind":"clock_jump","by":"soon"}`, "clock_jump.by"},
		{`{"kind":"clock_jump","by":"0s"}`, "must not be 0"},
		{`{"kind":"clock_skew","offset":"1s","drift":2}`, "unknown field"},
		{`{"kind":"clock_skew","offset":"1s"} {}`, "trailing data"},
	} {
		_, err := toxics.Unmarshal([]byte(tc.json))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Unmarshal(%s) = %v, want an error containing %q", tc.json, err, tc.want)
		}
	}
}
