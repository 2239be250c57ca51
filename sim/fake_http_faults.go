package sim

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/shakedown/shakedown/internal/httpfault"
	"github.com/shakedown/shakedown/toxics"
)

// HTTP faults on a FakeHTTP
//
// A FakeHTTP speaks HTTP, so besides every fault an [Endpoint] takes it
// takes the HTTP faults of package toxics (toxics.HTTPKinds), which it
// carries out in its own server, as harness.Link does on the wire:
//
//   - toxics.HTTPStatus: the handler is not called; the client gets the
//     status, Retry-After and body a Link answers with, on a connection
//     that stays usable.
//   - toxics.HTTPDelay: the handler runs, and its response's headers go
//     Delay later.
//   - toxics.HTTPCut: the headers and Bytes bytes of the body go, then the
//     connection closes (a body that fits in Bytes is not cut).
//   - toxics.HTTPTrickle: the body goes at BytesPerSecond, in pieces of
//     about 50ms worth.
//   - toxics.HTTPJSON: the body is changed as the Link changes it
//     (httpfault.Mutate) and sent with a Content-Length.
//
// Requests are selected as on a Link: per fault, in the order they reach
// the fake, from the network's seed and the fault's place among the faults
// applied to the endpoint. Where the two differ: the fake counts body
// bytes as the handler writes them, the Link counts them as sent (chunk
// framing included), so HTTPCut and HTTPTrickle agree on bodies with a
// Content-Length; and reverting a delay or a trickle ends it within 5ms
// of simulated time rather than at once.

// Supports reports whether the fake takes faults of kind k: every kind an
// Endpoint takes, and the HTTP kinds.
func (f *FakeHTTP) Supports(k toxics.Kind) bool { return f.Endpoint.Supports(k) || k.IsHTTP() }

// Apply starts fault on the fake: an HTTP fault acts on its requests (see
// above), any other on its endpoint as [Endpoint.Apply] says.
func (f *FakeHTTP) Apply(ctx context.Context, fault toxics.Fault) (revert func(context.Context) error, err error) {
	if fault == nil || !fault.Kind().IsHTTP() {
		return f.Endpoint.Apply(ctx, fault)
	}
	if err := fault.Validate(); err != nil {
		return nil, fmt.Errorf("sim: endpoint %q: %w", f.Name(), err)
	}
	if ctx != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("sim: endpoint %q: apply %s: %w", f.Name(), fault, ctx.Err())
	}
	return f.Endpoint.applyLink(fault.(toxics.LinkFault))
}

// httpFaultState is what the fake counts per applied HTTP fault.
type httpFaultState struct {
	mu   sync.Mutex
	seen map[uint64]uint64 // fault id → matching requests so far
}

// pickHTTP counts a request for every active HTTP fault it matches and
// returns the first of them that takes it.
func (f *FakeHTTP) pickHTTP(method, path string) *activeFault {
	ep := f.Endpoint
	ep.mu.Lock()
	var afs []*activeFault
	for _, af := range ep.faults {
		if af.fault.Kind().IsHTTP() {
			afs = append(afs, af)
		}
	}
	ep.mu.Unlock()
	f.httpState.mu.Lock()
	defer f.httpState.mu.Unlock()
	if f.httpState.seen == nil {
		f.httpState.seen = map[uint64]uint64{}
	}
	var chosen *activeFault
	for _, af := range afs {
		m, _ := toxics.MatchOf(af.fault)
		if !m.Matches(method, path) {
			continue
		}
		f.httpState.seen[af.id]++
		if httpfault.Selects(m, httpfault.FaultSeed(ep.n.seed, af.id-1), f.httpState.seen[af.id]) && chosen == nil {
			chosen = af
		}
	}
	return chosen
}

// reverted reports whether af has been reverted.
func (f *FakeHTTP) reverted(af *activeFault) bool {
	f.Endpoint.mu.Lock()
	defer f.Endpoint.mu.Unlock()
	return af.reverted
}

// sleepHTTP waits d, ending early (false) once af is reverted or the
// request is done.
func (f *FakeHTTP) sleepHTTP(r *http.Request, af *activeFault, d time.Duration) bool {
	end := time.Now().Add(d)
	for {
		left := time.Until(end)
		if left <= 0 {
			return true
		}
		t := time.NewTimer(min(left, 5*time.Millisecond))
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return false
		}
		if f.reverted(af) {
			return false
		}
	}
}

// serveFaulty serves r through h with the HTTP fault that takes it, if
// any.
func (f *FakeHTTP) serveFaulty(w http.ResponseWriter, r *http.Request, h http.Handler) {
	af := f.pickHTTP(r.Method, r.URL.Path)
	if af == nil {
		f.requests.Add(1)
		h.ServeHTTP(w, r)
		return
	}
	if _, answered := af.fault.(toxics.HTTPStatus); !answered {
		f.requests.Add(1)
	}
	switch ft := af.fault.(type) {
	case toxics.HTTPStatus:
		body := httpfault.StatusBody(ft.Status)
		httpfault.StatusHeader(ft, w.Header())
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(ft.Status)
		if r.Method != http.MethodHead {
			_, _ = w.Write([]byte(body))
		}
		return
	case toxics.HTTPDelay:
		rec := &bufferedResponse{header: http.Header{}}
		h.ServeHTTP(rec, r)
		f.sleepHTTP(r, af, ft.Delay)
		rec.replay(w, nil)
	case toxics.HTTPJSON:
		rec := &bufferedResponse{header: http.Header{}}
		h.ServeHTTP(rec, r)
		body := rec.body.Bytes()
		if rec.header.Get("Content-Encoding") == "" && !f.reverted(af) {
			if b, err := httpfault.Mutate(ft, body); err == nil {
				body = b
			}
		}
		rec.replay(w, body)
	case toxics.HTTPCut:
		rec := &bufferedResponse{header: http.Header{}}
		h.ServeHTTP(rec, r)
		if int64(rec.body.Len()) <= ft.Bytes {
			rec.replay(w, nil)
			return
		}
		rec.writeHeader(w, int64(rec.body.Len()))
		_, _ = w.Write(rec.body.Bytes()[:ft.Bytes])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // net/http closes the connection
	case toxics.HTTPTrickle:
		rec := &bufferedResponse{header: http.Header{}}
		h.ServeHTTP(rec, r)
		rec.writeHeader(w, int64(rec.body.Len()))
		body := rec.body.Bytes()
		piece := max(1, ft.BytesPerSecond/20)
		for len(body) > 0 {
			n := min(int64(len(body)), piece)
			_, _ = w.Write(body[:n])
			w.(http.Flusher).Flush()
			body = body[n:]
			if !f.sleepHTTP(r, af, time.Duration(float64(n)/float64(ft.BytesPerSecond)*float64(time.Second))) {
				_, _ = w.Write(body)
				return
			}
		}
	}
}

// bufferedResponse holds a handler's whole response, to be sent later.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }
func (b *bufferedResponse) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}
func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

// writeHeader sends the held headers with a Content-Length of n.
func (b *bufferedResponse) writeHeader(w http.ResponseWriter, n int64) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	w.Header().Del("Transfer-Encoding")
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	status := b.status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
}

// replay sends the held response, with body instead of the held one if
// body is not nil.
func (b *bufferedResponse) replay(w http.ResponseWriter, body []byte) {
	if body == nil {
		body = b.body.Bytes()
	}
	b.writeHeader(w, int64(len(body)))
	_, _ = w.Write(body)
}
