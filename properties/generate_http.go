package properties

import (
	"slices"
	"time"

	"pgregory.net/rapid"

	"github.com/shakedown/shakedown/toxics"
)

// HTTP faults in schedules
//
// A target takes the HTTP kinds of package toxics only if it says it
// speaks HTTP (a sim.FakeHTTP; a harness.Link started with
// harness.WithProtocol("http")), so [Aim] lists them only for such targets.
// Aim leaves http_json out: its path depends on the service's documents,
// so name it in Bounds.Targets by hand, with the paths in
// Values.JSONPaths.
//
// Their fields are drawn after all the others, and only when the bounds
// name an HTTP kind, so schedules without one draw as before. They shrink
// toward milder: a smaller share of requests, a milder status (429, then
// 503, 500, 502, 504), no Retry-After, a shorter delay, a faster trickle
// (Values.Rate, at least 1 byte per second), a later cut (Values.DataLimit),
// and the first JSON op (add, null, retype, drop) and path.

// hasHTTP reports whether b names an HTTP kind for some target.
func (b Bounds) hasHTTP() bool { return b.names(toxics.Kind.IsHTTP) }

// names reports whether b names a kind of which is is true for some
// target.
func (b Bounds) names(is func(toxics.Kind) bool) bool {
	for _, t := range b.Targets {
		if slices.ContainsFunc(t.Kinds, is) {
			return true
		}
	}
	return false
}

// httpFields are the fields only HTTP faults have.
type httpFields struct {
	share    float64 // of the requests taken; 0 means all
	status   int     // index into toxics.HTTPStatuses
	retry    time.Duration
	jsonOp   int // index into toxics.JSONOps
	jsonPath string
}

// drawHTTP draws the HTTP fields.
func drawHTTP(t *rapid.T, v Values) httpFields {
	var h httpFields
	lo, hi := ppm(v.Share[0]), ppm(v.Share[1])
	h.share = float64(rapid.Int64Range(lo, max(lo, hi)).Draw(t, "http_share_ppm")) / 1e6
	h.status = rapid.IntRange(0, len(toxics.HTTPStatuses())-1).Draw(t, "http_status")
	h.retry = time.Duration(rapid.Int64Range(0, 3).Draw(t, "retry_after_s")) * time.Second
	h.jsonOp = rapid.IntRange(0, len(toxics.JSONOps())-1).Draw(t, "json_op")
	if len(v.JSONPaths) > 0 {
		h.jsonPath = rapid.SampledFrom(v.JSONPaths).Draw(t, "json_path")
	}
	return h
}

// httpFault is the HTTP fault of kind k with f's fields, or nil if k is
// not an HTTP kind.
func (f faultFields) httpFault(k toxics.Kind) toxics.Fault {
	m := toxics.HTTPMatch{Rate: f.http.share}
	if m.Rate <= 0 || m.Rate > 1 {
		m.Rate = 1
	}
	switch k {
	case toxics.KindHTTPStatus:
		st := toxics.HTTPStatus{Status: toxics.HTTPStatuses()[f.http.status], Match: m}
		if st.Status == 429 || st.Status == 503 {
			st.RetryAfter = f.http.retry
		}
		return st
	case toxics.KindHTTPDelay:
		return toxics.HTTPDelay{Delay: max(f.delay, time.Millisecond), Match: m}
	case toxics.KindHTTPTrickle:
		return toxics.HTTPTrickle{BytesPerSecond: max(1, f.rate), Match: m}
	case toxics.KindHTTPCut:
		return toxics.HTTPCut{Bytes: max(0, f.limit), Match: m}
	case toxics.KindHTTPJSON:
		path := f.http.jsonPath
		if path == "" {
			path = "$.id" // only when the bounds name no path; Validate refuses that
		}
		return toxics.HTTPJSON{Op: toxics.JSONOps()[f.http.jsonOp], Path: path, Match: m}
	}
	return nil
}

// httpFieldsOf is the inverse of httpFault.
func httpFieldsOf(f toxics.Fault) (faultFields, bool) {
	m, ok := toxics.MatchOf(f)
	if !ok {
		return faultFields{}, false
	}
	out := faultFields{http: httpFields{share: m.Rate}}
	switch f := f.(type) {
	case toxics.HTTPStatus:
		out.http.status = max(0, slices.Index(toxics.HTTPStatuses(), f.Status))
		out.http.retry = f.RetryAfter
	case toxics.HTTPDelay:
		out.delay = f.Delay
	case toxics.HTTPTrickle:
		out.rate = f.BytesPerSecond
	case toxics.HTTPCut:
		out.limit = f.Bytes
	case toxics.HTTPJSON:
		out.http.jsonOp = max(0, slices.Index(toxics.JSONOps(), f.Op))
		out.http.jsonPath = f.Path
	}
	return out, true
}
