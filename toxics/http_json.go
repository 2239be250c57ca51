package toxics

import (
	"encoding/json"
	"fmt"
	"slices"
)

// httpWire is the JSON form of the HTTP faults, for example
//
//	{"kind":"http_status","status":503,"retry_after":"2s","rate":0.25,"path_prefix":"/api"}
//	{"kind":"http_json","op":"null","path":"items.0.price","nth":3}
//
// Pointers tell a missing field from a zero one.
type httpWire struct {
	Kind           Kind     `json:"kind"`
	Status         *int     `json:"status,omitempty"`
	RetryAfter     *string  `json:"retry_after,omitempty"`
	Delay          *string  `json:"delay,omitempty"`
	Bytes          *int64   `json:"bytes,omitempty"`
	BytesPerSecond *int64   `json:"bytes_per_second,omitempty"`
	Op             *JSONOp  `json:"op,omitempty"`
	Path           *string  `json:"path,omitempty"`
	Rate           *float64 `json:"rate,omitempty"`
	Nth            *int     `json:"nth,omitempty"`
	Method         *string  `json:"method,omitempty"`
	PathPrefix     *string  `json:"path_prefix,omitempty"`
}

var matchFields = []string{"rate", "nth", "method", "path_prefix"}

// httpFields lists, per kind, the fields it takes besides the match
// fields, and those of them that are required.
var httpFields = map[Kind]struct{ allowed, required []string }{
	KindHTTPStatus:  {[]string{"status", "retry_after"}, []string{"status"}},
	KindHTTPDelay:   {[]string{"delay"}, []string{"delay"}},
	KindHTTPCut:     {[]string{"bytes"}, []string{"bytes"}},
	KindHTTPTrickle: {[]string{"bytes_per_second"}, []string{"bytes_per_second"}},
	KindHTTPJSON:    {[]string{"op", "path"}, []string{"op", "path"}},
}

func (w *httpWire) present() []string {
	var out []string
	add := func(name string, set bool) {
		if set {
			out = append(out, name)
		}
	}
	add("status", w.Status != nil)
	add("retry_after", w.RetryAfter != nil)
	add("delay", w.Delay != nil)
	add("bytes", w.Bytes != nil)
	add("bytes_per_second", w.BytesPerSecond != nil)
	add("op", w.Op != nil)
	add("path", w.Path != nil)
	add("rate", w.Rate != nil)
	add("nth", w.Nth != nil)
	add("method", w.Method != nil)
	add("path_prefix", w.PathPrefix != nil)
	return out
}

// marshalHTTP is Marshal for the HTTP faults; f is valid.
func marshalHTTP(f Fault) ([]byte, error) {
	m, _ := MatchOf(f)
	w := httpWire{Kind: f.Kind(), Method: optStr(m.Method), PathPrefix: optStr(m.PathPrefix)}
	if m.Nth > 0 {
		w.Nth = ptr(m.Nth)
	} else {
		w.Rate = ptr(m.Rate)
	}
	switch f := f.(type) {
	case HTTPStatus:
		w.Status, w.RetryAfter = ptr(f.Status), optDur(f.RetryAfter)
	case HTTPDelay:
		w.Delay = dur(f.Delay)
	case HTTPCut:
		w.Bytes = ptr(f.Bytes)
	case HTTPTrickle:
		w.BytesPerSecond = ptr(f.BytesPerSecond)
	case HTTPJSON:
		w.Op, w.Path = ptr(f.Op), ptr(f.Path)
	}
	return json.Marshal(w)
}

// unmarshalHTTP decodes data if its kind is an HTTP kind (ok), and
// otherwise leaves it to Unmarshal.
func unmarshalHTTP(data []byte) (f Fault, ok bool, err error) {
	var w httpWire
	if _, ok, err := decodeFamily(data, Kind.IsHTTP, &w, nil); !ok || err != nil {
		return nil, ok, err
	}
	spec := httpFields[w.Kind]
	allowed := append(slices.Clone(spec.allowed), matchFields...)
	present := w.present()
	for _, name := range present {
		if !slices.Contains(allowed, name) {
			return nil, true, fmt.Errorf("toxics: decode %s: it has no field %q (it takes: %s)", w.Kind, name, orNone(allowed))
		}
	}
	for _, name := range spec.required {
		if !slices.Contains(present, name) {
			return nil, true, fmt.Errorf("toxics: decode %s: field %q is required", w.Kind, name)
		}
	}
	if w.Rate == nil && w.Nth == nil {
		return nil, true, fmt.Errorf("toxics: decode %s: one of the fields \"rate\" and \"nth\" is required", w.Kind)
	}
	d := decoder{kind: w.Kind}
	m := HTTPMatch{Rate: deref(w.Rate), Nth: deref(w.Nth), Method: deref(w.Method), PathPrefix: deref(w.PathPrefix)}
	switch w.Kind {
	case KindHTTPStatus:
		f = HTTPStatus{Status: *w.Status, RetryAfter: d.dur("retry_after", w.RetryAfter), Match: m}
	case KindHTTPDelay:
		f = HTTPDelay{Delay: d.dur("delay", w.Delay), Match: m}
	case KindHTTPCut:
		f = HTTPCut{Bytes: *w.Bytes, Match: m}
	case KindHTTPTrickle:
		f = HTTPTrickle{BytesPerSecond: *w.BytesPerSecond, Match: m}
	case KindHTTPJSON:
		f = HTTPJSON{Op: *w.Op, Path: *w.Path, Match: m}
	}
	if d.err != nil {
		return nil, true, d.err
	}
	if err := f.Validate(); err != nil {
		return nil, true, err
	}
	return f, true, nil
}
