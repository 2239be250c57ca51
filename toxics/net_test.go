package toxics_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shakedown/shakedown/toxics"
)

func TestNetHandWritten(t *testing.T) {
	tests := []struct {
		in   string
		want toxics.Fault
	}{
		{`{"kind":"loss","probability":0.02}`, toxics.Loss{Probability: 0.02}},
		{`{"kind":"loss","probability":0,"bad_probability":1,"enter_bad":0.01,"leave_bad":0.3,"direction":"downstream"}`,
			toxics.Loss{BadProbability: 1, EnterBad: 0.01, LeaveBad: 0.3, Direction: toxics.Downstream}},
		{`{"kind":"connect_hang"}`, toxics.ConnectHang{}},
		{`{"kind":"connect_hang","accepted":true}`, toxics.ConnectHang{Accepted: true}},
		{`{"kind":"conn_limit","max":3,"hold":true}`, toxics.ConnLimit{Max: 3, Hold: true}},
		{`{"kind":"targeted","fault":{"kind":"blackhole"},"share":0.5,"opened":"before"}`,
			toxics.Targeted{Fault: toxics.Blackhole{}, Conns: toxics.Conns{Share: 0.5, Opened: toxics.Before}}},
		{`{"kind":"targeted","fault":{"kind":"reset"},"nth":3}`,
			toxics.Targeted{Fault: toxics.Reset{}, Conns: toxics.Conns{Nth: 3}}},
	}
	for _, tt := range tests {
		got, err := toxics.Unmarshal([]byte(tt.in))
		if err != nil {
			t.Errorf("Unmarshal(%s): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Unmarshal(%s) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
}

func TestNetUnmarshalErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     string
	}{
		{"loss without probability", `{"kind":"loss"}`, `loss: field "probability" is required`},
		{"loss certain", `{"kind":"loss","probability":1}`, "loss.probability = 1"},
		{"loss bad state never left", `{"kind":"loss","probability":0,"bad_probability":1,"enter_bad":0.1}`, "loss.leave_bad = 0"},
		{"conn limit negative", `{"kind":"conn_limit","max":-1}`, "conn_limit.max = -1"},
		{"conn limit without max", `{"kind":"conn_limit"}`, `field "max" is required`},
		{"targeted without fault", `{"kind":"targeted","share":0.5}`, `field "fault" is required`},
		{"targeted node fault", `{"kind":"targeted","fault":{"kind":"crash"}}`, "targeted.fault = crash"},
		{"targeted down", `{"kind":"targeted","fault":{"kind":"down"}}`, "targeted.fault = down"},
		{"targeted nested", `{"kind":"targeted","fault":{"kind":"targeted","fault":{"kind":"reset"}}}`, "targeted.fault = targeted"},
		{"targeted bad inner", `{"kind":"targeted","fault":{"kind":"latency","delay":"soon"}}`, `targeted.fault: toxics: latency.delay = "soon"`},
		{"targeted bad share", `{"kind":"targeted","fault":{"kind":"reset"},"share":2}`, "targeted.share = 2"},
		{"targeted bad opened", `{"kind":"targeted","fault":{"kind":"reset"},"opened":"yesterday"}`, `targeted.opened = "yesterday"`},
		{"targeted nth before", `{"kind":"targeted","fault":{"kind":"reset"},"nth":1,"opened":"before"}`, "targeted.nth = 1"},
		{"targeted fault not an object", `{"kind":"targeted","fault":7}`, "targeted.fault"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := toxics.Unmarshal([]byte(tt.in))
			if err == nil {
				t.Fatalf("Unmarshal(%s) succeeded, want an error containing %q", tt.in, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Unmarshal(%s) error %q does not contain %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestNetValidate(t *testing.T) {
	tests := []struct {
		name  string
		fault toxics.Fault
		kind  toxics.Kind
		field string // "" when valid
	}{
		{"loss nothing", toxics.Loss{}, toxics.KindLoss, "probability"},
		{"loss NaN", toxics.Loss{Probability: nanf()}, toxics.KindLoss, "probability"},
		{"loss negative bad", toxics.Loss{Probability: 0.1, BadProbability: -1, EnterBad: 0.1, LeaveBad: 0.1}, toxics.KindLoss, "bad_probability"},
		{"loss bad state unreachable", toxics.Loss{Probability: 0.1, BadProbability: 0.5}, toxics.KindLoss, "bad_probability"},
		{"loss bursts only", toxics.Loss{BadProbability: 1, EnterBad: 0.01, LeaveBad: 0.5}, toxics.KindLoss, ""},
		{"loss bad direction", toxics.Loss{Probability: 0.1, Direction: 9}, toxics.KindLoss, "direction"},
		{"conn limit zero is valid", toxics.ConnLimit{}, toxics.KindConnLimit, ""},
		{"targeted nil", toxics.Targeted{}, toxics.KindTargeted, "fault"},
		{"targeted limit", toxics.Targeted{Fault: toxics.ConnLimit{Max: 1}}, toxics.KindTargeted, "fault"},
		{"targeted hang", toxics.Targeted{Fault: toxics.ConnectHang{}}, toxics.KindTargeted, "fault"},
		{"targeted invalid inner", toxics.Targeted{Fault: toxics.Latency{}}, toxics.KindLatency, "delay"},
		{"targeted negative nth", toxics.Targeted{Fault: toxics.Reset{}, Conns: toxics.Conns{Nth: -1}}, toxics.KindTargeted, "nth"},
		{"targeted bad opened", toxics.Targeted{Fault: toxics.Reset{}, Conns: toxics.Conns{Opened: 5}}, toxics.KindTargeted, "opened"},
		{"targeted all is valid", toxics.Targeted{Fault: toxics.Blackhole{}}, toxics.KindTargeted, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.fault.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate(%v) = %v, want nil", tt.fault, err)
				}
				return
			}
			var fe *toxics.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || fe.Kind != tt.kind {
				t.Fatalf("Validate(%v) = %v, want a *FieldError on %s.%s", tt.fault, err, tt.kind, tt.field)
			}
		})
	}
}

func nanf() float64 { var z float64; return z / z }

func TestConnsPicks(t *testing.T) {
	tests := []struct {
		c      toxics.Conns
		before bool
		nth    uint64
		u      float64
		want   bool
	}{
		{toxics.Conns{}, true, 0, 0.99, true},
		{toxics.Conns{}, false, 7, 0.99, true},
		{toxics.Conns{Opened: toxics.Before}, true, 0, 0, true},
		{toxics.Conns{Opened: toxics.Before}, false, 1, 0, false},
		{toxics.Conns{Opened: toxics.After}, true, 0, 0, false},
		{toxics.Conns{Opened: toxics.After}, false, 1, 0, true},
		{toxics.Conns{Nth: 2}, false, 2, 0, true},
		{toxics.Conns{Nth: 2}, false, 3, 0, false},
		{toxics.Conns{Nth: 2}, true, 0, 0, false},
		{toxics.Conns{Share: 0.5}, true, 0, 0.49, true},
		{toxics.Conns{Share: 0.5}, true, 0, 0.5, false},
		{toxics.Conns{Share: 1}, false, 1, 0.999, true},
		{toxics.Conns{Share: 0.5, Opened: toxics.Before}, false, 1, 0.1, false},
	}
	for _, tt := range tests {
		if got := tt.c.Picks(tt.before, tt.nth, tt.u); got != tt.want {
			t.Errorf("%v.Picks(before=%v, nth=%d, u=%g) = %v, want %v", tt.c, tt.before, tt.nth, tt.u, got, tt.want)
		}
	}
}

func TestNetStrings(t *testing.T) {
	tests := map[toxics.Fault]string{
		toxics.Loss{Probability: 0.01}: "loss(p=0.01)",
		toxics.Loss{Probability: 0.001, BadProbability: 0.5, EnterBad: 0.01, LeaveBad: 0.25, Direction: toxics.Upstream}: "loss(p=0.001 bad=0.5 enter=0.01 leave=0.25 upstream)",
		toxics.ConnectHang{}:                   "connect_hang(handshake)",
		toxics.ConnectHang{Accepted: true}:     "connect_hang(accepted)",
		toxics.ConnLimit{Max: 2, Hold: true}:   "conn_limit(max=2 hold)",
		toxics.Targeted{Fault: toxics.Reset{}}: "targeted(reset() on all)",
		toxics.Targeted{Fault: toxics.Blackhole{}, Conns: toxics.Conns{Share: 0.5, Opened: toxics.Before}}: "targeted(blackhole() on share=0.5 opened before)",
	}
	for f, want := range tests {
		if got := f.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", f, got, want)
		}
	}
	if got := toxics.DirectionOf(toxics.Targeted{Fault: toxics.Blackhole{Direction: toxics.Upstream}}); got != toxics.Upstream {
		t.Errorf("DirectionOf(targeted upstream blackhole) = %v", got)
	}
}

// FuzzNetFaults: whatever the numbers, Validate and String do not panic;
// what validates encodes and decodes to itself.
func FuzzNetFaults(f *testing.F) {
	f.Add(0.01, 0.5, 0.1, 0.3, 0.5, 2, 1, uint8(1), uint8(0))
	f.Add(0.0, 1.0, 1.0, 1e-9, 1.0, 0, 0, uint8(3), uint8(2))
	f.Fuzz(func(t *testing.T, p, bad, enter, leave, share float64, nth, max int, opened, dir uint8) {
		for _, fault := range []toxics.Fault{
			toxics.Loss{Probability: p, BadProbability: bad, EnterBad: enter, LeaveBad: leave, Direction: toxics.Direction(dir)},
			toxics.ConnLimit{Max: max, Hold: nth%2 == 0},
			toxics.Targeted{Fault: toxics.Blackhole{Direction: toxics.Direction(dir)}, Conns: toxics.Conns{Share: share, Nth: nth, Opened: toxics.Opened(opened)}},
		} {
			_ = fault.String()
			if fault.Validate() != nil {
				continue
			}
			data, err := toxics.Marshal(fault)
			if err != nil {
				t.Fatalf("Marshal(%#v): %v", fault, err)
			}
			back, err := toxics.Unmarshal(data)
			if err != nil {
				t.Fatalf("Unmarshal(%s): %v", data, err)
			}
			if !reflect.DeepEqual(back, fault) {
				t.Fatalf("%#v encoded as %s decoded to %#v", fault, data, back)
			}
		}
	})
}

// TestLossSegmentDelay: the one model of a lost segment's delay that the
// Link and the simulated network share.
func TestLossSegmentDelay(t *testing.T) {
	zero := func() float64 { return 0 }
	bad := false
	// Every try lost: 200ms, 400ms, ... doubling to MaxRTO, 15 tries.
	var want time.Duration
	for i, rto := 0, toxics.MinRTO; i < toxics.MaxRetransmissions; i, rto = i+1, min(2*rto, toxics.MaxRTO) {
		want += rto
	}
	if got := (toxics.Loss{Probability: 0.5}).SegmentDelay(&bad, zero); got != want {
		t.Fatalf("every try lost: %v, want %v", got, want)
	}
	// No try lost: on time.
	if got := (toxics.Loss{Probability: 0.5}).SegmentDelay(&bad, func() float64 { return 0.999 }); got != 0 {
		t.Fatalf("none lost: %v, want 0", got)
	}
	// A burst: the first try enters the bad state (0.1 under EnterBad)
	// and is lost there (0.5 under BadProbability); the second stays bad
	// (0.9 not under LeaveBad) and gets through (0.99).
	draws := []float64{0.1, 0.5, 0.9, 0.99}
	next := func() float64 { v := draws[0]; draws = draws[1:]; return v }
	f := toxics.Loss{Probability: 0.01, EnterBad: 0.2, BadProbability: 0.6, LeaveBad: 0.5}
	if got := f.SegmentDelay(&bad, next); got != toxics.MinRTO || !bad {
		t.Fatalf("burst: %v (bad %v), want %v, still bad", got, bad, toxics.MinRTO)
	}
}
