package toxics_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shakedown/shakedown/toxics"
)

// every holds one valid value of each fault type, with optional fields set
// where the type has them, so round-trip tests see every field.
var every = []toxics.Fault{
	toxics.Latency{Delay: 200 * time.Millisecond, Jitter: 20 * time.Millisecond, Direction: toxics.Downstream},
	toxics.Latency{Delay: time.Second},
	toxics.Bandwidth{Rate: 1024, Direction: toxics.Upstream},
	toxics.Bandwidth{Rate: 0},
	toxics.Slicer{AverageSize: 64, SizeVariation: 16, Delay: time.Millisecond, Direction: toxics.Downstream},
	toxics.Slicer{AverageSize: 1},
	toxics.SlowClose{Delay: 3 * time.Second},
	toxics.Corrupt{Probability: 0.001, Direction: toxics.Downstream},
	toxics.DataLimit{Bytes: 4096},
	toxics.Timeout{After: 1500 * time.Millisecond, Direction: toxics.Upstream},
	toxics.Timeout{After: 0},
	toxics.Blackhole{},
	toxics.Blackhole{Direction: toxics.Downstream},
	toxics.Reset{},
	toxics.Down{},
	toxics.Pause{},
	toxics.Restart{},
	toxics.Stop{Grace: 5 * time.Second},
	toxics.Stop{},
	toxics.Crash{},
	toxics.Loss{Probability: 0.01, Direction: toxics.Downstream},
	toxics.Loss{Probability: 0.001, BadProbability: 0.5, EnterBad: 0.01, LeaveBad: 0.25},
	toxics.ConnectHang{},
	toxics.ConnectHang{Accepted: true},
	toxics.ConnLimit{Max: 4},
	toxics.ConnLimit{Max: 0, Hold: true},
	toxics.Targeted{Fault: toxics.Blackhole{}, Conns: toxics.Conns{Share: 0.5, Opened: toxics.Before}},
	toxics.Targeted{Fault: toxics.Latency{Delay: time.Second, Direction: toxics.Upstream}, Conns: toxics.Conns{Nth: 2, Opened: toxics.After}},
	toxics.Targeted{Fault: toxics.Reset{}},
}

func TestEveryKindCovered(t *testing.T) {
	seen := map[toxics.Kind]bool{}
	for _, f := range every {
		seen[f.Kind()] = true
	}
	for _, k := range append(toxics.LinkKinds(), toxics.NodeKinds()...) {
		if !seen[k] {
			t.Errorf("kind %s has no value in the round-trip table", k)
		}
	}
}

func TestKindsScope(t *testing.T) {
	for _, f := range every {
		if f.Kind().IsDNS() {
			continue // a family of its own: TestDNSKinds
		}
		_, isLink := f.(toxics.LinkFault)
		_, isNode := f.(toxics.NodeFault)
		if isLink == isNode {
			t.Errorf("%v: link=%v node=%v, want exactly one", f, isLink, isNode)
		}
		if f.Kind().IsLink() != isLink || f.Kind().IsNode() != isNode {
			t.Errorf("%v: Kind().IsLink()=%v IsNode()=%v disagree with its type", f, f.Kind().IsLink(), f.Kind().IsNode())
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, f := range append(append([]toxics.Fault(nil), every...), everyClock...) {
		t.Run(f.String(), func(t *testing.T) {
			data, err := toxics.Marshal(f)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			got, err := toxics.Unmarshal(data)
			if err != nil {
				t.Fatalf("Unmarshal(%s): %v", data, err)
			}
			if !reflect.DeepEqual(got, f) {
				t.Fatalf("round trip of %s: got %#v, want %#v", data, got, f)
			}
			again, err := toxics.Marshal(got)
			if err != nil {
				t.Fatalf("Marshal again: %v", err)
			}
			if string(again) != string(data) {
				t.Fatalf("encoding changed: %s then %s", data, again)
			}
		})
	}
}

func TestHandWritten(t *testing.T) {
	tests := []struct {
		in   string
		want toxics.Fault
	}{
		{`{"kind":"latency","delay":"200ms","jitter":"20ms","direction":"downstream"}`,
			toxics.Latency{Delay: 200 * time.Millisecond, Jitter: 20 * time.Millisecond, Direction: toxics.Downstream}},
		{`{"kind":"latency","delay":"1.5s"}`, toxics.Latency{Delay: 1500 * time.Millisecond}},
		// "both" is the default and decodes to the zero Direction.
		{`{"kind":"blackhole","direction":"both"}`, toxics.Blackhole{}},
		{` { "kind" : "crash" } `, toxics.Crash{}},
		{`{"kind":"slicer","average_size":10,"size_variation":2}`, toxics.Slicer{AverageSize: 10, SizeVariation: 2}},
		{`{"kind":"bandwidth","rate":0}`, toxics.Bandwidth{}},
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

func TestUnmarshalErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     string // a part of the error text
	}{
		{"not JSON", `latency`, "decode fault"},
		{"no kind", `{"delay":"1s"}`, `"kind" is required`},
		{"unknown kind", `{"kind":"meteor"}`, `unknown kind "meteor"`},
		{"unknown field", `{"kind":"latency","delay":"1s","colour":"red"}`, `unknown field "colour"`},
		{"field of another kind", `{"kind":"latency","delay":"1s","rate":5}`, `latency: it has no field "rate"`},
		{"missing required field", `{"kind":"latency"}`, `latency: field "delay" is required`},
		{"bad duration", `{"kind":"latency","delay":"fast"}`, `latency.delay = "fast"`},
		{"bare number duration", `{"kind":"timeout","after":5}`, "decode fault"},
		{"bad direction", `{"kind":"blackhole","direction":"sideways"}`, `blackhole.direction = "sideways"`},
		{"negative rate", `{"kind":"bandwidth","rate":-1}`, "bandwidth.rate = -1"},
		{"slicer size zero", `{"kind":"slicer","average_size":0}`, "slicer.average_size = 0"},
		{"probability above one", `{"kind":"corrupt","probability":1.5}`, "corrupt.probability = 1.5"},
		{"trailing data", `{"kind":"crash"}{"kind":"crash"}`, "trailing data"},
		{"null", `null`, `"kind" is required`},
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

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		fault toxics.Fault
		field string // "" when valid
	}{
		{"latency zero delay", toxics.Latency{}, "delay"},
		{"latency negative jitter", toxics.Latency{Delay: time.Second, Jitter: -1}, "jitter"},
		{"latency jitter above delay", toxics.Latency{Delay: time.Millisecond, Jitter: time.Second}, "jitter"},
		{"latency bad direction", toxics.Latency{Delay: time.Second, Direction: 7}, "direction"},
		{"bandwidth negative", toxics.Bandwidth{Rate: -5}, "rate"},
		{"bandwidth stall is valid", toxics.Bandwidth{Rate: 0}, ""},
		// Toxiproxy's slicer recurses until the stack overflows on size 0.
		{"slicer zero size", toxics.Slicer{}, "average_size"},
		{"slicer variation equal to size", toxics.Slicer{AverageSize: 4, SizeVariation: 4}, "size_variation"},
		{"slicer negative variation", toxics.Slicer{AverageSize: 4, SizeVariation: -1}, "size_variation"},
		{"slicer negative delay", toxics.Slicer{AverageSize: 4, Delay: -time.Second}, "delay"},
		{"slow close zero", toxics.SlowClose{}, "delay"},
		{"corrupt zero", toxics.Corrupt{}, "probability"},
		{"corrupt one is valid", toxics.Corrupt{Probability: 1}, ""},
		{"data limit negative", toxics.DataLimit{Bytes: -1}, "bytes"},
		{"timeout negative", toxics.Timeout{After: -time.Second}, "after"},
		{"stop negative grace", toxics.Stop{Grace: -1}, "grace"},
		{"blackhole bad direction", toxics.Blackhole{Direction: 3}, "direction"},
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
			if !errors.As(err, &fe) {
				t.Fatalf("Validate(%v) = %v, want a *FieldError on %q", tt.fault, err, tt.field)
			}
			if fe.Field != tt.field || fe.Kind != tt.fault.Kind() {
				t.Fatalf("Validate(%v) blames %s.%s, want %s.%s", tt.fault, fe.Kind, fe.Field, tt.fault.Kind(), tt.field)
			}
			if _, err := toxics.Marshal(tt.fault); err == nil {
				t.Fatalf("Marshal(%v) accepted an invalid fault", tt.fault)
			}
		})
	}
	if err := toxics.Validate(nil); err == nil {
		t.Error("Validate(nil) = nil, want an error")
	}
}

func TestSpecInStruct(t *testing.T) {
	type step struct {
		Fault toxics.Spec `json:"fault"`
	}
	in := step{Fault: toxics.Spec{Fault: toxics.Timeout{After: time.Second}}}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"fault":{"kind":"timeout","after":"1s"}}`; string(data) != want {
		t.Fatalf("got %s, want %s", data, want)
	}
	var out step
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Fatalf("got %#v, want %#v", out, in)
	}
	if err := json.Unmarshal([]byte(`{"fault":{"kind":"slicer","average_size":0}}`), &out); err == nil {
		t.Fatal("an invalid fault inside a struct decoded without error")
	}
}

func TestStrings(t *testing.T) {
	tests := map[toxics.Fault]string{
		toxics.Latency{Delay: 200 * time.Millisecond, Jitter: 20 * time.Millisecond, Direction: toxics.Downstream}: "latency(200ms±20ms downstream)",
		toxics.Blackhole{}:                           "blackhole()",
		toxics.Blackhole{Direction: toxics.Upstream}: "blackhole(upstream)",
		toxics.Bandwidth{Rate: 100}:                  "bandwidth(100B/s)",
		toxics.Stop{Grace: time.Second}:              "stop(grace=1s)",
	}
	for f, want := range tests {
		if got := f.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", f, got, want)
		}
	}
}

func TestDirection(t *testing.T) {
	for _, d := range []toxics.Direction{toxics.Both, toxics.Upstream, toxics.Downstream} {
		got, err := toxics.ParseDirection(d.String())
		if err != nil || got != d {
			t.Errorf("ParseDirection(%q) = %v, %v", d.String(), got, err)
		}
	}
	if !toxics.Both.Has(toxics.Upstream) || !toxics.Upstream.Has(toxics.Upstream) || toxics.Upstream.Has(toxics.Downstream) {
		t.Error("Direction.Has is wrong")
	}
	if _, err := toxics.ParseDirection("up"); err == nil {
		t.Error(`ParseDirection("up") succeeded`)
	}
}

// FuzzUnmarshal: whatever the input, decoding never panics, what decodes is
// valid, and what decodes encodes to bytes that decode to the same fault.
func FuzzUnmarshal(f *testing.F) {
	for _, fault := range every {
		data, err := toxics.Marshal(fault)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"kind":"slicer","average_size":0}`))
	f.Add([]byte(`{"kind":"bandwidth","rate":-1}`))
	f.Add([]byte(`{"kind":"partition","groups":[["db"],["cache","queue"]]}`))
	f.Add([]byte(`{"kind":"partition","groups":[["db"],["db"]]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fault, err := toxics.Unmarshal(data)
		if err != nil {
			return
		}
		if err := fault.Validate(); err != nil {
			t.Fatalf("Unmarshal(%q) returned an invalid fault: %v", data, err)
		}
		enc, err := toxics.Marshal(fault)
		if err != nil {
			t.Fatalf("Marshal(%#v): %v", fault, err)
		}
		again, err := toxics.Unmarshal(enc)
		if err != nil {
			t.Fatalf("Unmarshal(%s) of our own encoding: %v", enc, err)
		}
		if !reflect.DeepEqual(again, fault) {
			t.Fatalf("%q decoded to %#v, re-encoded as %s, decoded to %#v", data, fault, enc, again)
		}
	})
}
