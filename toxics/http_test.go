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

// everyHTTP holds valid HTTP faults, with optional fields set and not.
var everyHTTP = []toxics.Fault{
	toxics.HTTPStatus{Status: 503, RetryAfter: 2 * time.Second, Match: toxics.HTTPMatch{Rate: 0.25, Method: "GET", PathPrefix: "/api"}},
	toxics.HTTPStatus{Status: 429, Match: toxics.HTTPMatch{Nth: 3}},
	toxics.HTTPStatus{Status: 504, Match: toxics.HTTPMatch{Rate: 1}},
	toxics.HTTPDelay{Delay: 300 * time.Millisecond, Match: toxics.HTTPMatch{Rate: 0.5}},
	toxics.HTTPCut{Bytes: 10, Match: toxics.HTTPMatch{Nth: 1, PathPrefix: "/big"}},
	toxics.HTTPCut{Bytes: 0, Match: toxics.HTTPMatch{Rate: 0.1}},
	toxics.HTTPTrickle{BytesPerSecond: 100, Match: toxics.HTTPMatch{Rate: 1, Method: "POST"}},
	toxics.HTTPJSON{Op: toxics.JSONNull, Path: "items.0.price", Match: toxics.HTTPMatch{Nth: 2}},
	toxics.HTTPJSON{Op: toxics.JSONAdd, Path: "$.a.extra", Match: toxics.HTTPMatch{Rate: 0.5}},
}

func TestHTTPKinds(t *testing.T) {
	seen := map[toxics.Kind]bool{}
	for _, f := range everyHTTP {
		seen[f.Kind()] = true
		if _, ok := f.(toxics.LinkFault); !ok {
			t.Errorf("%v is not a LinkFault", f)
		}
		if !f.Kind().IsHTTP() || f.Kind().IsLink() || f.Kind().IsNode() {
			t.Errorf("%v: IsHTTP=%v IsLink=%v IsNode=%v, want only IsHTTP", f, f.Kind().IsHTTP(), f.Kind().IsLink(), f.Kind().IsNode())
		}
		if d := toxics.DirectionOf(f); d != toxics.Both {
			t.Errorf("DirectionOf(%v) = %v, want both", f, d)
		}
	}
	for _, k := range toxics.HTTPKinds() {
		if !seen[k] {
			t.Errorf("kind %s has no value in everyHTTP", k)
		}
	}
}

func TestHTTPRoundTrip(t *testing.T) {
	for _, f := range everyHTTP {
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
			if err != nil || string(again) != string(data) {
				t.Fatalf("encoding changed: %s then %s (%v)", data, again, err)
			}
		})
	}
}

func TestHTTPHandWritten(t *testing.T) {
	tests := []struct {
		in   string
		want toxics.Fault
	}{
		{`{"kind":"http_status","status":503,"retry_after":"2s","rate":0.25,"path_prefix":"/api"}`,
			toxics.HTTPStatus{Status: 503, RetryAfter: 2 * time.Second, Match: toxics.HTTPMatch{Rate: 0.25, PathPrefix: "/api"}}},
		{`{"kind":"http_json","op":"null","path":"items.0.price","nth":3}`,
			toxics.HTTPJSON{Op: toxics.JSONNull, Path: "items.0.price", Match: toxics.HTTPMatch{Nth: 3}}},
		{`{"kind":"http_delay","delay":"1s","rate":1,"method":"GET"}`,
			toxics.HTTPDelay{Delay: time.Second, Match: toxics.HTTPMatch{Rate: 1, Method: "GET"}}},
		{`{"kind":"http_trickle","bytes_per_second":10,"nth":1}`,
			toxics.HTTPTrickle{BytesPerSecond: 10, Match: toxics.HTTPMatch{Nth: 1}}},
		{`{"kind":"http_cut","bytes":0,"rate":0.5}`, toxics.HTTPCut{Match: toxics.HTTPMatch{Rate: 0.5}}},
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

func TestHTTPUnmarshalErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     string
	}{
		{"no selection", `{"kind":"http_status","status":503}`, `one of the fields "rate" and "nth" is required`},
		{"missing status", `{"kind":"http_status","rate":1}`, `http_status: field "status" is required`},
		{"field of another kind", `{"kind":"http_delay","delay":"1s","rate":1,"status":500}`, `http_delay: it has no field "status"`},
		{"unknown field", `{"kind":"http_cut","bytes":1,"rate":1,"colour":"red"}`, `unknown field "colour"`},
		{"bad status", `{"kind":"http_status","status":418,"rate":1}`, "http_status.status = 418"},
		{"retry after on 500", `{"kind":"http_status","status":500,"retry_after":"1s","rate":1}`, "http_status.retry_after = 1s"},
		{"retry after fraction", `{"kind":"http_status","status":429,"retry_after":"1.5s","rate":1}`, "whole seconds"},
		{"bad duration", `{"kind":"http_delay","delay":"soon","rate":1}`, `http_delay.delay = "soon"`},
		{"rate and nth", `{"kind":"http_delay","delay":"1s","rate":0.5,"nth":2}`, "http_delay.nth = 2"},
		{"rate above one", `{"kind":"http_delay","delay":"1s","rate":2}`, "http_delay.rate = 2"},
		{"lower-case method", `{"kind":"http_delay","delay":"1s","rate":1,"method":"get"}`, `http_delay.method = "get"`},
		{"relative path prefix", `{"kind":"http_delay","delay":"1s","rate":1,"path_prefix":"api"}`, `http_delay.path_prefix = "api"`},
		{"bad op", `{"kind":"http_json","op":"shuffle","path":"a","rate":1}`, `http_json.op = "shuffle"`},
		{"empty path", `{"kind":"http_json","op":"drop","path":"$","rate":1}`, `http_json.path = "$"`},
		{"empty segment", `{"kind":"http_json","op":"drop","path":"a..b","rate":1}`, "segment 2 is empty"},
		{"add at an index", `{"kind":"http_json","op":"add","path":"items.0","rate":1}`, "must end in a field name"},
		{"zero trickle", `{"kind":"http_trickle","bytes_per_second":0,"rate":1}`, "http_trickle.bytes_per_second = 0"},
		{"trailing data", `{"kind":"http_cut","bytes":1,"rate":1}{}`, "trailing data"},
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

func TestHTTPValidate(t *testing.T) {
	one := toxics.HTTPMatch{Rate: 1}
	tests := []struct {
		name  string
		fault toxics.Fault
		field string
	}{
		{"status zero", toxics.HTTPStatus{Match: one}, "status"},
		{"status 200", toxics.HTTPStatus{Status: 200, Match: one}, "status"},
		{"negative retry", toxics.HTTPStatus{Status: 429, RetryAfter: -time.Second, Match: one}, "retry_after"},
		{"no selection", toxics.HTTPStatus{Status: 503}, "rate"},
		{"negative nth", toxics.HTTPStatus{Status: 503, Match: toxics.HTTPMatch{Nth: -1}}, "nth"},
		{"delay zero", toxics.HTTPDelay{Match: one}, "delay"},
		{"cut negative", toxics.HTTPCut{Bytes: -1, Match: one}, "bytes"},
		{"trickle zero", toxics.HTTPTrickle{Match: one}, "bytes_per_second"},
		{"json no op", toxics.HTTPJSON{Path: "a", Match: one}, "op"},
		{"json no path", toxics.HTTPJSON{Op: toxics.JSONDrop, Match: one}, "path"},
		{"method with space", toxics.HTTPCut{Match: toxics.HTTPMatch{Rate: 1, Method: "GE T"}}, "method"},
		{"path prefix with space", toxics.HTTPCut{Match: toxics.HTTPMatch{Rate: 1, PathPrefix: "/a b"}}, "path_prefix"},
		{"valid", toxics.HTTPJSON{Op: toxics.JSONRetype, Path: "$.a.0", Match: toxics.HTTPMatch{Nth: 5}}, ""},
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
			if !errors.As(err, &fe) || fe.Field != tt.field || fe.Kind != tt.fault.Kind() {
				t.Fatalf("Validate(%#v) = %v, want a *FieldError on %s.%s", tt.fault, err, tt.fault.Kind(), tt.field)
			}
		})
	}
}

func TestHTTPStrings(t *testing.T) {
	tests := map[toxics.Fault]string{
		toxics.HTTPStatus{Status: 503, RetryAfter: 2 * time.Second, Match: toxics.HTTPMatch{Rate: 0.25, Method: "GET", PathPrefix: "/api"}}: "http_status(503 retry-after=2s rate=0.25 GET /api*)",
		toxics.HTTPDelay{Delay: time.Second, Match: toxics.HTTPMatch{Nth: 1}}:                                                               "http_delay(1s every request)",
		toxics.HTTPCut{Bytes: 5, Match: toxics.HTTPMatch{Nth: 3}}:                                                                           "http_cut(after 5B nth=3)",
		toxics.HTTPJSON{Op: toxics.JSONDrop, Path: "a.b", Match: toxics.HTTPMatch{Rate: 1}}:                                                 "http_json(drop a.b rate=1)",
	}
	for f, want := range tests {
		if got := f.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", f, got, want)
		}
	}
}

// FuzzHTTPSpec is FuzzSpec seeded with the HTTP faults: whatever JSON
// decodes is a valid fault that encodes to JSON decoding to the same.
func FuzzHTTPSpec(f *testing.F) {
	type step struct {
		Fault toxics.Spec `json:"fault"`
	}
	for _, fault := range everyHTTP {
		data, err := json.Marshal(step{toxics.Spec{Fault: fault}})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"fault":{"kind":"http_status","status":503,"rate":0,"nth":0}}`))
	f.Add([]byte(`{"fault":{"kind":"http_json","op":"add","path":"$.","rate":1}}`))
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

// FuzzJSONPath never panics, and a path it accepts has no empty segment.
func FuzzJSONPath(f *testing.F) {
	for _, s := range []string{"items.0.price", "$.a.b", "$", "", "a..b", ".", "$.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		segs, err := toxics.JSONPath(p)
		if err != nil {
			return
		}
		if len(segs) == 0 {
			t.Fatalf("JSONPath(%q) accepted no segments", p)
		}
		for _, s := range segs {
			if s == "" {
				t.Fatalf("JSONPath(%q) = %q has an empty segment", p, segs)
			}
		}
	})
}
