package httpfault

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/shakedown/shakedown/toxics"
)

func TestSelects(t *testing.T) {
	every3 := toxics.HTTPMatch{Nth: 3}
	var got []bool
	for k := uint64(1); k <= 6; k++ {
		got = append(got, Selects(every3, 1, k))
	}
	if want := []bool{false, false, true, false, false, true}; !equal(got, want) {
		t.Fatalf("Nth=3 took %v, want %v", got, want)
	}
	half := toxics.HTTPMatch{Rate: 0.5}
	taken := 0
	first := make([]bool, 10001)
	for k := uint64(1); k <= 10000; k++ {
		first[k] = Selects(half, 42, k)
		if first[k] {
			taken++
		}
	}
	for k := uint64(10000); k >= 1; k-- { // in another order: the same
		if Selects(half, 42, k) != first[k] {
			t.Fatal("not a function of seed and k")
		}
	}
	// A fair share: 10,000 draws at 0.5 fall within ±500 of 5,000 unless
	// the draws are broken (the bound is 10 standard deviations).
	if taken < 4500 || taken > 5500 {
		t.Fatalf("rate 0.5 took %d of 10000", taken)
	}
	if !Selects(toxics.HTTPMatch{Rate: 1}, 7, 99) {
		t.Fatal("rate 1 skipped a request")
	}
}

func equal(a, b []bool) bool { return bytes.Equal([]byte(fmtBools(a)), []byte(fmtBools(b))) }
func fmtBools(bs []bool) string {
	s := ""
	for _, b := range bs {
		if b {
			s += "1"
		} else {
			s += "0"
		}
	}
	return s
}

func TestStatusResponse(t *testing.T) {
	raw := StatusResponse(toxics.HTTPStatus{Status: 429, RetryAfter: 5 * time.Second, Match: toxics.HTTPMatch{Rate: 1}}, false, true)
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "5" || !resp.Close || resp.ContentLength != int64(len(StatusBody(429))) {
		t.Fatalf("got %d %v close=%v len=%d", resp.StatusCode, resp.Header, resp.Close, resp.ContentLength)
	}
}

func TestMutate(t *testing.T) {
	const doc = `{"a":{"b":[1,"two",true,null,{"c":1.50}]},"html":"<&>"}`
	tests := []struct {
		op   toxics.JSONOp
		path string
		want string // "" : ErrNoChange
	}{
		{toxics.JSONDrop, "a.b.0", `{"a":{"b":["two",true,null,{"c":1.50}]},"html":"<&>"}`},
		{toxics.JSONNull, "$.a.b.4.c", `{"a":{"b":[1,"two",true,null,{"c":null}]},"html":"<&>"}`},
		{toxics.JSONRetype, "a.b.0", `{"a":{"b":["1","two",true,null,{"c":1.50}]},"html":"<&>"}`},
		{toxics.JSONRetype, "a.b.1", `{"a":{"b":[1,3,true,null,{"c":1.50}]},"html":"<&>"}`},
		{toxics.JSONRetype, "a.b.2", `{"a":{"b":[1,"two","true",null,{"c":1.50}]},"html":"<&>"}`},
		{toxics.JSONRetype, "a.b.3", `{"a":{"b":[1,"two",true,0,{"c":1.50}]},"html":"<&>"}`},
		{toxics.JSONRetype, "a.b.4", `{"a":{"b":[1,"two",true,null,"{\"c\":1.50}"]},"html":"<&>"}`},
		{toxics.JSONAdd, "a.new", `{"a":{"b":[1,"two",true,null,{"c":1.50}],"new":"unexpected"},"html":"<&>"}`},
		{toxics.JSONAdd, "a.b", ""},     // already there
		{toxics.JSONAdd, "a.b.0.x", ""}, // parent is not an object
		{toxics.JSONDrop, "a.b.9", ""},  // out of range
		{toxics.JSONDrop, "a.zz.c", ""}, // no such field
		{toxics.JSONNull, "html.x", ""}, // through a string
		{toxics.JSONDrop, "a.b.-1", ""}, // negative index
	}
	for _, tt := range tests {
		got, err := Mutate(toxics.HTTPJSON{Op: tt.op, Path: tt.path, Match: toxics.HTTPMatch{Rate: 1}}, []byte(doc))
		if tt.want == "" {
			if !errors.Is(err, ErrNoChange) {
				t.Errorf("%s %s: got %s, %v; want ErrNoChange", tt.op, tt.path, got, err)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("%s %s: got %s, %v; want %s", tt.op, tt.path, got, err, tt.want)
		}
	}
	for _, body := range []string{"", "not json", `{"a":1} {"a":2}`, `{"a":`} {
		if _, err := Mutate(toxics.HTTPJSON{Op: toxics.JSONNull, Path: "a", Match: toxics.HTTPMatch{Rate: 1}}, []byte(body)); !errors.Is(err, ErrNoChange) {
			t.Errorf("body %q: %v, want ErrNoChange", body, err)
		}
	}
}

// FuzzMutate: never panics, and what it returns is one valid JSON value.
func FuzzMutate(f *testing.F) {
	f.Add(`{"items":[{"price":5}]}`, "items.0.price", 0)
	f.Add(`[1,2,3]`, "1", 3)
	f.Add(`{"a":{"b":null}}`, "$.a.b.c", 1)
	f.Fuzz(func(t *testing.T, body, path string, op int) {
		ops := toxics.JSONOps()
		fault := toxics.HTTPJSON{Op: ops[(op%len(ops)+len(ops))%len(ops)], Path: path, Match: toxics.HTTPMatch{Rate: 1}}
		if fault.Validate() != nil {
			return
		}
		out, err := Mutate(fault, []byte(body))
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("Mutate(%q, %v) = %q, not JSON", body, fault, out)
		}
	})
}
