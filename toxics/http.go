package toxics

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// HTTP fault kinds, mildest first. They are link faults (they implement
// [LinkFault] and act through a link), but they are listed apart from
// [LinkKinds] by [HTTPKinds], because only a target that speaks HTTP/1.1
// takes them: see [Kind.IsHTTP].
const (
	KindHTTPDelay   Kind = "http_delay"
	KindHTTPTrickle Kind = "http_trickle"
	KindHTTPJSON    Kind = "http_json"
	KindHTTPCut     Kind = "http_cut"
	KindHTTPStatus  Kind = "http_status"
)

var httpKinds = []Kind{KindHTTPDelay, KindHTTPTrickle, KindHTTPJSON, KindHTTPCut, KindHTTPStatus}

// HTTPKinds returns every HTTP fault kind, mildest first.
func HTTPKinds() []Kind { return append([]Kind(nil), httpKinds...) }

// IsHTTP reports whether k is an HTTP fault kind. Such a fault is a
// [LinkFault], but IsLink reports false for it: a target takes it only if
// it says it speaks HTTP.
func (k Kind) IsHTTP() bool { return contains(httpKinds, k) }

// httpStatuses are the statuses an [HTTPStatus] may answer with, mildest
// first: a client should back off from a 429 or a 503, may retry a 500
// once, and a 502 or 504 says a gateway gave up.
var httpStatuses = []int{429, 503, 500, 502, 504}

// HTTPStatuses returns the statuses [HTTPStatus] takes, mildest first:
// 429, 503, 500, 502, 504.
func HTTPStatuses() []int { return append([]int(nil), httpStatuses...) }

// HTTPMatch selects the requests an HTTP fault acts on. A request matches
// when its method is Method (any method if empty) and its path starts with
// PathPrefix (any path if empty). Of the matching requests the fault takes
// either a share, Rate in (0, 1], drawn from the run's seed, or, if Nth > 0,
// the Nth, 2Nth, 3Nth, … in the order the link sees them. Exactly one of
// Rate and Nth is set.
type HTTPMatch struct {
	Rate       float64
	Nth        int
	Method     string
	PathPrefix string
}

func (m HTTPMatch) validate(k Kind) error {
	switch {
	case m.Nth < 0:
		return &FieldError{Kind: k, Field: "nth", Value: m.Nth, Reason: "must not be negative"}
	case m.Nth > 0 && m.Rate != 0:
		return &FieldError{Kind: k, Field: "nth", Value: m.Nth, Reason: fmt.Sprintf("must be 0 when rate is set (rate %g); set one of them", m.Rate)}
	case m.Nth == 0 && (math.IsNaN(m.Rate) || m.Rate <= 0 || m.Rate > 1):
		return &FieldError{Kind: k, Field: "rate", Value: m.Rate, Reason: "must be in (0, 1] (or set nth instead)"}
	}
	for _, c := range m.Method {
		if c < 'A' || c > 'Z' {
			return &FieldError{Kind: k, Field: "method", Value: fmt.Sprintf("%q", m.Method), Reason: "must be an upper-case method such as GET or POST, or empty for any"}
		}
	}
	if m.PathPrefix != "" {
		if m.PathPrefix[0] != '/' {
			return &FieldError{Kind: k, Field: "path_prefix", Value: fmt.Sprintf("%q", m.PathPrefix), Reason: "must start with /"}
		}
		for _, c := range m.PathPrefix {
			if c <= ' ' || c == 0x7f || c > '~' {
				return &FieldError{Kind: k, Field: "path_prefix", Value: fmt.Sprintf("%q", m.PathPrefix), Reason: "must be printable ASCII without spaces (as in a request line)"}
			}
		}
	}
	return nil
}

// Matches reports whether a request with this method and path matches m's
// method and path prefix (the share or Nth is not drawn here).
func (m HTTPMatch) Matches(method, path string) bool {
	return (m.Method == "" || m.Method == method) && strings.HasPrefix(path, m.PathPrefix)
}

func (m HTTPMatch) String() string {
	var s string
	switch {
	case m.Nth == 1:
		s = "every request"
	case m.Nth > 1:
		s = "nth=" + strconv.Itoa(m.Nth)
	default:
		s = "rate=" + strconv.FormatFloat(m.Rate, 'g', -1, 64)
	}
	if m.Method != "" {
		s += " " + m.Method
	}
	if m.PathPrefix != "" {
		s += " " + m.PathPrefix + "*"
	}
	return s
}

// HTTPStatus answers a selected request with Status instead of passing it
// to the dependency: the request is read and dropped, and the client gets
// a short text/plain response; the connection stays usable, as a server
// that answers an error with keep-alive leaves it (unless the request
// asked to close). RetryAfter, for 429 and 503 only, is sent as a
// Retry-After header in whole seconds; 0 sends none.
type HTTPStatus struct {
	Status     int
	RetryAfter time.Duration
	Match      HTTPMatch
}

func (HTTPStatus) Kind() Kind { return KindHTTPStatus }
func (f HTTPStatus) Validate() error {
	if !slices.Contains(httpStatuses, f.Status) {
		return &FieldError{Kind: KindHTTPStatus, Field: "status", Value: f.Status, Reason: "must be one of 429, 503, 500, 502, 504"}
	}
	if err := nonNegative(KindHTTPStatus, "retry_after", f.RetryAfter); err != nil {
		return err
	}
	if f.RetryAfter > 0 {
		if f.Status != 429 && f.Status != 503 {
			return &FieldError{Kind: KindHTTPStatus, Field: "retry_after", Value: f.RetryAfter, Reason: fmt.Sprintf("goes only with status 429 or 503, not %d", f.Status)}
		}
		if f.RetryAfter%time.Second != 0 {
			return &FieldError{Kind: KindHTTPStatus, Field: "retry_after", Value: f.RetryAfter, Reason: "must be whole seconds (Retry-After counts seconds)"}
		}
	}
	return f.Match.validate(KindHTTPStatus)
}
func (f HTTPStatus) String() string {
	s := strconv.Itoa(f.Status)
	if f.RetryAfter > 0 {
		s += " retry-after=" + f.RetryAfter.String()
	}
	return call(KindHTTPStatus, s+" "+f.Match.String())
}

// HTTPDelay holds the response to a selected request for Delay before
// its headers go to the client; the body follows at the dependency's pace.
type HTTPDelay struct {
	Delay time.Duration
	Match HTTPMatch
}

func (HTTPDelay) Kind() Kind { return KindHTTPDelay }
func (f HTTPDelay) Validate() error {
	return firstErr(positive(KindHTTPDelay, "delay", f.Delay), f.Match.validate(KindHTTPDelay))
}
func (f HTTPDelay) String() string {
	return call(KindHTTPDelay, f.Delay.String()+" "+f.Match.String())
}

// HTTPCut passes the headers of the response to a selected request and
// Bytes bytes of its body (as sent, chunk framing included), then closes
// the connection: the client reads a body shorter than announced.
type HTTPCut struct {
	Bytes int64
	Match HTTPMatch
}

func (HTTPCut) Kind() Kind { return KindHTTPCut }
func (f HTTPCut) Validate() error {
	if f.Bytes < 0 {
		return &FieldError{Kind: KindHTTPCut, Field: "bytes", Value: f.Bytes, Reason: "must not be negative"}
	}
	return f.Match.validate(KindHTTPCut)
}
func (f HTTPCut) String() string {
	return call(KindHTTPCut, fmt.Sprintf("after %dB %s", f.Bytes, f.Match))
}

// HTTPTrickle passes the headers of the response to a selected request at
// once and its body at BytesPerSecond (at least 1).
type HTTPTrickle struct {
	BytesPerSecond int64
	Match          HTTPMatch
}

func (HTTPTrickle) Kind() Kind { return KindHTTPTrickle }
func (f HTTPTrickle) Validate() error {
	if f.BytesPerSecond < 1 {
		return &FieldError{Kind: KindHTTPTrickle, Field: "bytes_per_second", Value: f.BytesPerSecond, Reason: "must be at least 1"}
	}
	return f.Match.validate(KindHTTPTrickle)
}
func (f HTTPTrickle) String() string {
	return call(KindHTTPTrickle, fmt.Sprintf("%dB/s %s", f.BytesPerSecond, f.Match))
}

// JSONOp is what an [HTTPJSON] fault does to the value at its path.
type JSONOp string

// JSON data faults, mildest first.
const (
	// JSONAdd adds a field the client does not know: Path names the new
	// field, whose parent must be an object; the value is the string
	// "unexpected". A field already there is left alone.
	JSONAdd JSONOp = "add"
	// JSONNull sets the value at Path to null.
	JSONNull JSONOp = "null"
	// JSONRetype changes the type of the value at Path: a number becomes
	// the string of its digits, a string becomes the number of its
	// bytes, a boolean the string "true" or "false", null the number 0,
	// and an object or array the string of its JSON.
	JSONRetype JSONOp = "retype"
	// JSONDrop removes the field at Path (an array element is removed and
	// the later ones move up).
	JSONDrop JSONOp = "drop"
)

var jsonOps = []JSONOp{JSONAdd, JSONNull, JSONRetype, JSONDrop}

// JSONOps returns every JSONOp, mildest first.
func JSONOps() []JSONOp { return append([]JSONOp(nil), jsonOps...) }

// HTTPJSON changes the JSON body of the response to a selected request:
// Op at Path, a dotted path from the top of the document such as
// "items.0.price" or "$.a.b" (a number indexes an array). The
// Content-Length is fixed up (a chunked body is sent with a
// Content-Length instead). A body that is not JSON, is compressed, or has
// nothing at Path is passed on unchanged. The JSON is re-encoded: the
// values are the same apart from the change, but object keys come sorted
// and spacing is compact.
type HTTPJSON struct {
	Op    JSONOp
	Path  string
	Match HTTPMatch
}

func (HTTPJSON) Kind() Kind { return KindHTTPJSON }
func (f HTTPJSON) Validate() error {
	if !containsOp(f.Op) {
		return &FieldError{Kind: KindHTTPJSON, Field: "op", Value: fmt.Sprintf("%q", f.Op), Reason: "must be one of add, null, retype, drop"}
	}
	segs, err := JSONPath(f.Path)
	if err != nil {
		return &FieldError{Kind: KindHTTPJSON, Field: "path", Value: fmt.Sprintf("%q", f.Path), Reason: err.Error()}
	}
	if f.Op == JSONAdd {
		if _, err := strconv.Atoi(segs[len(segs)-1]); err == nil {
			return &FieldError{Kind: KindHTTPJSON, Field: "path", Value: fmt.Sprintf("%q", f.Path), Reason: "must end in a field name for op add, not an index"}
		}
	}
	return f.Match.validate(KindHTTPJSON)
}
func (f HTTPJSON) String() string {
	return call(KindHTTPJSON, fmt.Sprintf("%s %s %s", f.Op, f.Path, f.Match))
}

func containsOp(op JSONOp) bool { return slices.Contains(jsonOps, op) }

// JSONPath splits a path such as "items.0.price" or "$.a.b" into its
// segments, or says what is wrong with it. The path must name something
// below the top of the document.
func JSONPath(p string) ([]string, error) {
	s := strings.TrimPrefix(strings.TrimPrefix(p, "$"), ".")
	if s == "" {
		return nil, fmt.Errorf("must name a field, such as \"items.0.price\" or \"$.a.b\"")
	}
	segs := strings.Split(s, ".")
	for i, seg := range segs {
		if seg == "" {
			return nil, fmt.Errorf("segment %d is empty", i+1)
		}
	}
	return segs, nil
}

func (HTTPStatus) fault()  {}
func (HTTPDelay) fault()   {}
func (HTTPCut) fault()     {}
func (HTTPTrickle) fault() {}
func (HTTPJSON) fault()    {}

func (HTTPStatus) linkFault()  {}
func (HTTPDelay) linkFault()   {}
func (HTTPCut) linkFault()     {}
func (HTTPTrickle) linkFault() {}
func (HTTPJSON) linkFault()    {}

// MatchOf returns the request selection of an HTTP fault, and false for
// any other fault.
func MatchOf(f Fault) (HTTPMatch, bool) {
	switch f := f.(type) {
	case HTTPStatus:
		return f.Match, true
	case HTTPDelay:
		return f.Match, true
	case HTTPCut:
		return f.Match, true
	case HTTPTrickle:
		return f.Match, true
	case HTTPJSON:
		return f.Match, true
	}
	return HTTPMatch{}, false
}
