// Package httpfault holds what harness's Link and sim's FakeHTTP share to
// carry out the HTTP faults of package toxics the same way: which requests
// a fault selects, the response an HTTPStatus fault answers with, and the
// change an HTTPJSON fault makes to a body.
package httpfault

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/shakedown/shakedown/toxics"
)

// Selects reports whether a fault with selection m, whose draws come from
// seed, takes the k-th request (counting from 1) that matched its method
// and path: every Nth one, or a seeded share (the k-th draw is a pure
// function of seed and k, so the same requests are taken on every run).
func Selects(m toxics.HTTPMatch, seed, k uint64) bool {
	if m.Nth > 0 {
		return k%uint64(m.Nth) == 0
	}
	u := float64(mix(seed, k)>>11) / (1 << 53) // [0, 1)
	return u < m.Rate
}

// FaultSeed is the seed of the draws of the n-th fault (counting from 0)
// applied to one target, in a run with the given seed: harness's Link and
// sim's FakeHTTP derive it alike, so the same schedule takes the same
// requests on both.
func FaultSeed(seed int64, n uint64) uint64 { return mix(mix(uint64(seed), n), 0x4854) }

// mix derives an independent 64-bit value from a seed and a salt
// (SplitMix64 finaliser).
func mix(seed, salt uint64) uint64 {
	z := seed + 0x9e3779b97f4a7c15*(salt+1)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// StatusBody is the body of the response to a request an HTTPStatus fault
// answers: the status text and a line saying where it came from.
func StatusBody(status int) string {
	return strconv.Itoa(status) + " " + http.StatusText(status) + " (shakedown http_status fault)\n"
}

// StatusHeader sets the headers of that response on h (Content-Length
// aside): its type, and Retry-After if the fault has one.
func StatusHeader(f toxics.HTTPStatus, h http.Header) {
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if f.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64(f.RetryAfter.Seconds()), 10))
	}
}

// StatusResponse is the whole HTTP/1.1 response to a request an HTTPStatus
// fault answers; head leaves the body out (a HEAD request), closing adds
// "Connection: close" (the request asked for it).
func StatusResponse(f toxics.HTTPStatus, head, closing bool) []byte {
	body := StatusBody(f.Status)
	h := http.Header{}
	StatusHeader(f, h)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if closing {
		h.Set("Connection", "close")
	}
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 " + strconv.Itoa(f.Status) + " " + http.StatusText(f.Status) + "\r\n")
	_ = h.Write(&b)
	b.WriteString("\r\n")
	if !head {
		b.WriteString(body)
	}
	return b.Bytes()
}

// ErrNoChange says a body was left as it was: it is not one JSON value,
// or nothing is at the fault's path (or, for add, the field is there
// already or its parent is not an object).
var ErrNoChange = errors.New("httpfault: body left unchanged")

// Mutate returns body with f's change made, re-encoded compactly (object
// keys sorted, numbers as written), or ErrNoChange.
func Mutate(f toxics.HTTPJSON, body []byte) ([]byte, error) {
	segs, err := toxics.JSONPath(f.Path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, ErrNoChange
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, ErrNoChange
	}
	doc, ok := change(doc, segs, f.Op)
	if !ok {
		return nil, ErrNoChange
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, ErrNoChange
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), nil
}

// change makes op at the path segs below v and returns the new v.
func change(v any, segs []string, op toxics.JSONOp) (any, bool) {
	seg, last := segs[0], len(segs) == 1
	switch x := v.(type) {
	case map[string]any:
		cur, exists := x[seg]
		if last {
			switch {
			case op == toxics.JSONAdd:
				if exists {
					return v, false
				}
				x[seg] = "unexpected"
			case !exists:
				return v, false
			case op == toxics.JSONDrop:
				delete(x, seg)
			case op == toxics.JSONNull:
				x[seg] = nil
			default:
				x[seg] = retype(cur)
			}
			return v, true
		}
		if !exists {
			return v, false
		}
		nv, ok := change(cur, segs[1:], op)
		x[seg] = nv
		return v, ok
	case []any:
		i, err := strconv.Atoi(seg)
		if err != nil || i < 0 || i >= len(x) {
			return v, false
		}
		if last {
			switch op {
			case toxics.JSONAdd:
				return v, false
			case toxics.JSONDrop:
				return append(x[:i:i], x[i+1:]...), true
			case toxics.JSONNull:
				x[i] = nil
			default:
				x[i] = retype(x[i])
			}
			return v, true
		}
		nv, ok := change(x[i], segs[1:], op)
		x[i] = nv
		return v, ok
	}
	return v, false
}

// retype gives v a value of another JSON type; see toxics.JSONRetype.
func retype(v any) any {
	switch x := v.(type) {
	case json.Number:
		return x.String()
	case string:
		return json.Number(strconv.Itoa(len(x)))
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return json.Number("0")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}
