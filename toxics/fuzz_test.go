package toxics_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/shakedown/shakedown/toxics"
)

// FuzzParseDirection: never panics; what parses prints as the string it
// came from.
func FuzzParseDirection(f *testing.F) {
	for _, s := range []string{"both", "upstream", "downstream", "up", "", "Both"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := toxics.ParseDirection(s)
		if err != nil {
			return
		}
		if d.String() != s {
			t.Fatalf("ParseDirection(%q) = %v", s, d)
		}
	})
}

// FuzzSpec: a Spec inside a struct (as in a schedule step) decodes
// whatever JSON without panicking; what decodes is null or a valid fault,
// and encodes to JSON that decodes to the same.
func FuzzSpec(f *testing.F) {
	for _, fault := range append(append([]toxics.Fault(nil), every...), everyClock...) {
		data, err := json.Marshal(struct {
			Fault toxics.Spec `json:"fault"`
		}{toxics.Spec{Fault: fault}})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"fault":null}`))
	f.Add([]byte(`{"fault":{"kind":"slicer","average_size":0}}`))
	f.Add([]byte(`{"fault":[]}`))
	f.Add([]byte(`{"fault":{"kind":"partition","groups":[["db"],["cache","queue"]]}}`))
	f.Add([]byte(`{"fault":{"kind":"partition","groups":[["db"],[]]}}`))
	f.Add([]byte(`{"fault":{"kind":"targeted","fault":{"kind":"targeted","fault":{"kind":"reset"}}}}`))
	f.Add([]byte(`{"fault":{"kind":"loss","probability":0,"bad_probability":1,"enter_bad":1,"leave_bad":1e-9}}`))
	f.Add([]byte(`{"fault":{"kind":"clock_jump","by":"-24h0m0.000000001s","back":false}}`))
	type step struct {
		Fault toxics.Spec `json:"fault"`
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var s step
		if json.Unmarshal(data, &s) != nil {
			return
		}
		if s.Fault.Fault != nil {
			if err := s.Fault.Fault.Validate(); err != nil {
				t.Fatalf("%q decoded to an invalid fault: %v", data, err)
			}
		}
		enc, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("Marshal(%#v): %v", s, err)
		}
		var again step
		if err := json.Unmarshal(enc, &again); err != nil {
			t.Fatalf("Unmarshal(%s) of our own encoding: %v", enc, err)
		}
		if !reflect.DeepEqual(again, s) {
			t.Fatalf("%q decoded to %#v, re-encoded as %s, decoded to %#v", data, s, enc, again)
		}
	})
}
