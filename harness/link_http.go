package harness

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shakedown/shakedown/internal/httpfault"
	"github.com/shakedown/shakedown/toxics"
)

// HTTP faults on a Link
//
// A Link started with [Protocol]("http") takes the HTTP faults of package
// toxics (toxics.HTTPKinds). Such a fault arms a slot in both directions
// like any link fault (the slots pass data on), so both directions of
// every connection run on the pipeline, and the pipeline's source of each
// direction parses HTTP/1.1 while an HTTP fault is armed: requests going
// up, responses coming down. Headers are parsed by net/http
// (http.ReadRequest, http.ReadResponse); bodies are framed by
// Content-Length, by chunked encoding, or (responses) by the close.
//
//   - toxics.HTTPStatus: the selected request is read and dropped, and the
//     Link answers the client itself (httpfault.StatusResponse); the
//     dependency never sees it and the connection stays usable.
//   - toxics.HTTPDelay: the response's headers go Delay after they arrived.
//   - toxics.HTTPCut: the headers and Bytes bytes of the body go, then the
//     connection closes cleanly (a body that fits in Bytes is not cut).
//   - toxics.HTTPTrickle: the body goes at BytesPerSecond.
//   - toxics.HTTPJSON: the whole response is held, its body changed and
//     its Content-Length fixed up (see httpfault.Mutate).
//
// Which requests a fault takes is decided when the request's headers have
// arrived: requests matching its method and path prefix are counted per
// fault, in the order the Link sees them, and the k-th is taken if
// httpfault.Selects says so (from the fault's seed and k).
//
// Limits, said here and in Protocol's doc: a connection must not pipeline
// (send a request before the response to the one before has arrived), as
// net/http's Transport never does; a connection on which parsing fails
// (not HTTP/1.1, a request already half sent when the fault was applied, a
// 101 Switching Protocols) is passed through untouched from then on. The
// answer of an HTTPStatus goes to the client directly, so downstream link
// faults armed with it do not delay it.

// checkHTTPFault reports why f cannot go on the Link, or nil.
func (l *Link) checkHTTPFault(f toxics.Fault) error {
	if f.Kind().IsHTTP() && l.Protocol() != toxics.ProtocolHTTP {
		return fmt.Errorf("%s is an HTTP fault and the link was not started with harness.WithProtocol(\"http\")", f.Kind())
	}
	return nil
}

// linkHTTP is the Link's set of armed HTTP faults.
type linkHTTP struct {
	armed atomic.Int32  // HTTP faults armed
	epoch atomic.Uint64 // times armed went from 0 to 1

	mu     sync.Mutex
	faults []*httpArmed // in the order they were applied
}

// httpArmed is one armed HTTP fault.
type httpArmed struct {
	a       *appliedFault
	match   toxics.HTTPMatch
	seed    uint64
	seen    atomic.Uint64 // matching requests so far
	revoked chan struct{} // closed by the revert
}

// add arms a's fault if it is an HTTP fault.
func (h *linkHTTP) add(l *Link, a *appliedFault) {
	m, ok := toxics.MatchOf(a.fault)
	if !ok {
		return
	}
	h.mu.Lock()
	h.faults = append(h.faults, &httpArmed{a: a, match: m, seed: httpfault.FaultSeed(l.seed, a.id), revoked: make(chan struct{})})
	h.mu.Unlock()
	if h.armed.Add(1) == 1 {
		h.epoch.Add(1)
	}
}

// remove disarms a's fault if it is an HTTP fault.
func (h *linkHTTP) remove(a *appliedFault) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, f := range h.faults {
		if f.a == a {
			close(f.revoked)
			h.faults = slices.Delete(h.faults, i, i+1)
			h.armed.Add(-1)
			return
		}
	}
}

// pick counts a request with method and path for every armed fault it
// matches and returns the first of them (in apply order) that takes it.
func (h *linkHTTP) pick(method, path string) *httpArmed {
	h.mu.Lock()
	fs := slices.Clone(h.faults)
	h.mu.Unlock()
	var chosen *httpArmed
	for _, f := range fs {
		if !f.match.Matches(method, path) {
			continue
		}
		if httpfault.Selects(f.match, f.seed, f.seen.Add(1)) && chosen == nil {
			chosen = f
		}
	}
	return chosen
}

// httpConn is what the two directions of one connection share.
type httpConn struct {
	mu     sync.Mutex
	queue  []*httpExchange // requests passed up whose responses have not started
	desync bool            // parsing failed: the connection is passed through
	closed chan struct{}   // made lazily; closed when the connection closes
	shut   bool
}

// httpExchange is one request passed to the dependency.
type httpExchange struct {
	epoch  uint64
	method string
	fault  *httpArmed // nil: the response passes
}

func (c *httpConn) done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed == nil {
		c.closed = make(chan struct{})
		if c.shut {
			close(c.closed)
		}
	}
	return c.closed
}

// close is called when the connection closes: waits of the stages end.
func (c *httpConn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.shut {
		c.shut = true
		if c.closed != nil {
			close(c.closed)
		}
	}
}

func (c *httpConn) setDesync() {
	c.mu.Lock()
	c.desync = true
	c.queue = nil
	c.mu.Unlock()
}

func (c *httpConn) isDesync() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.desync
}

func (c *httpConn) push(x *httpExchange) {
	c.mu.Lock()
	c.queue = append(c.queue, x)
	c.mu.Unlock()
}

// pop returns the oldest exchange of the current epoch, dropping older
// ones (left from an earlier spell of HTTP faults, whose responses went by
// unparsed), or nil.
func (c *httpConn) pop(epoch uint64) *httpExchange {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.queue) > 0 {
		x := c.queue[0]
		c.queue = c.queue[1:]
		if x.epoch == epoch {
			return x
		}
	}
	return nil
}

// errHTTPCut ends a pipeline's source: an HTTPCut fault closes the
// connection once what went before has been delivered.
var errHTTPCut = errors.New("http_cut: connection closed mid-body")

const (
	maxHTTPHead = 64 << 10 // longest request or response head parsed
	maxHTTPJSON = 8 << 20  // longest body an HTTPJSON fault holds
)

type stageState uint8

const (
	stIdle stageState = iota // between messages
	stHead                   // reading a head
	stBody                   // in a body
	stPass                   // passing everything on
)

// httpStage sits between a pipeline's source and the pipeline: Write gets
// what the source read, in order, and passes on what the client or the
// dependency is to see.
type httpStage struct {
	d *linkDir
	l *Link
	c *httpConn
	w io.Writer

	st   stageState
	head []byte
	ex   *httpExchange // downstream: the exchange being answered
	body bodyFrame

	// what to do with the current message
	drop    bool          // upstream: the request is answered by the Link
	answer  []byte        // upstream: the answer, sent when the request has been read
	closing bool          // upstream: the answer closes the connection
	limit   int64         // downstream: body bytes left before a cut; -1: no cut
	rate    int64         // downstream: trickle rate; 0: none
	revoked chan struct{} // the fault's revert, for trickle
	hold    *toxics.HTTPJSON
	held    []byte
	holdH   *http.Response
}

// newHTTPStage returns the stage for a pipeline of d writing to w.
func newHTTPStage(d *linkDir, w io.Writer) *httpStage {
	s := &httpStage{d: d, l: d.conn.l, c: &d.conn.http, w: w, limit: -1}
	return s
}

// Write passes p on as the faults say. An error ends the source:
// errHTTPCut, or the pipeline's own.
func (s *httpStage) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		switch s.st {
		case stPass:
			return n, s.out(p)
		case stIdle:
			if !s.start() {
				return n, s.out(p)
			}
			s.st, s.head = stHead, s.head[:0]
		case stHead:
			from := max(0, len(s.head)-3)
			s.head = append(s.head, p...)
			i := bytes.Index(s.head[from:], []byte("\r\n\r\n"))
			if i < 0 {
				if len(s.head) > maxHTTPHead {
					return n, s.desync()
				}
				return n, nil
			}
			end := from + i + 4
			rest := len(s.head) - end
			p = p[len(p)-rest:]
			s.head = s.head[:end]
			if err := s.onHead(); err != nil {
				return n, err
			}
		case stBody:
			k, done, err := s.body.feed(p)
			if err != nil {
				return n, s.desync()
			}
			if err := s.onBody(p[:k]); err != nil {
				return n, err
			}
			p = p[k:]
			if done {
				if err := s.onEnd(); err != nil {
					return n, err
				}
			}
		}
	}
	return n, nil
}

func (s *httpStage) out(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	_, err := s.w.Write(p)
	return err
}

// start reports whether a message starting now is to be parsed.
func (s *httpStage) start() bool {
	if s.c.isDesync() {
		s.st = stPass
		return false
	}
	if s.d.dir == toxics.Upstream {
		return s.l.http.armed.Load() > 0
	}
	if s.ex == nil {
		s.ex = s.c.pop(s.l.http.epoch.Load())
	}
	return s.ex != nil
}

// desync gives up parsing the connection: what is held goes on as it
// came, and so does everything after.
func (s *httpStage) desync() error {
	s.c.setDesync()
	s.st = stPass
	held := s.head
	if s.held != nil {
		held = s.held
	}
	s.head, s.held, s.hold = nil, nil, nil
	s.l.log.Debug("http: not parsing this connection any more", "conn", s.d.conn.id, "dir", s.d.dir.String())
	return s.out(held)
}

// flush passes on what the stage holds when its source ends: at EOF (a
// response read to the close is complete then) or because no fault is
// armed any more.
func (s *httpStage) flush(eof bool) {
	if s.st == stBody && s.hold != nil && eof && s.body.toClose {
		_ = s.onEnd()
		return
	}
	if s.st == stHead {
		_ = s.out(s.head)
	}
	if s.hold != nil {
		_ = s.out(s.held)
	}
	s.head, s.held, s.hold = nil, nil, nil
	s.st = stIdle
}

func (s *httpStage) onHead() error {
	if s.d.dir == toxics.Upstream {
		return s.onRequest()
	}
	return s.onResponse()
}

func (s *httpStage) onRequest() error {
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(s.head)))
	if err != nil {
		return s.desync()
	}
	if err := s.body.start(req.TransferEncoding, req.ContentLength, false); err != nil {
		return s.desync()
	}
	path := req.URL.Path
	if path == "" {
		path = req.RequestURI
	}
	f := s.l.http.pick(req.Method, path)
	s.drop, s.answer = false, nil
	if f != nil {
		if st, ok := f.a.fault.(toxics.HTTPStatus); ok {
			s.drop, s.closing = true, req.Close
			s.answer = httpfault.StatusResponse(st, req.Method == http.MethodHead, req.Close)
			s.l.log.Debug("http: request answered by the link", "conn", s.d.conn.id, "method", req.Method, "path", path, "status", st.Status)
		}
	}
	if !s.drop {
		x := &httpExchange{epoch: s.l.http.epoch.Load(), method: req.Method}
		if f != nil {
			x.fault = f
		}
		s.c.push(x) // before the request goes up, so before its response comes
		if err := s.out(s.head); err != nil {
			return err
		}
	}
	s.st = stBody
	if s.body.done() {
		return s.onEnd()
	}
	return nil
}

func (s *httpStage) onResponse() error {
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(s.head)), &http.Request{Method: s.ex.method})
	if err != nil || resp.StatusCode == http.StatusSwitchingProtocols {
		return s.desync()
	}
	if resp.StatusCode < 200 { // 100 Continue and the like: the real one follows
		s.st = stIdle
		return s.out(s.head)
	}
	noBody := s.ex.method == http.MethodHead || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified
	cl := resp.ContentLength
	if noBody {
		cl = 0
	}
	if err := s.body.start(resp.TransferEncoding, cl, !noBody); err != nil {
		return s.desync()
	}
	s.limit, s.rate, s.hold, s.revoked = -1, 0, nil, nil
	if f := s.ex.fault; f != nil && !isClosed(f.revoked) {
		s.revoked = f.revoked
		switch ft := f.a.fault.(type) {
		case toxics.HTTPDelay:
			s.sleep(ft.Delay) // ended early: the headers go now
		case toxics.HTTPCut:
			if !s.body.fits(ft.Bytes) {
				s.limit = ft.Bytes
			}
		case toxics.HTTPTrickle:
			s.rate = ft.BytesPerSecond
		case toxics.HTTPJSON:
			if resp.Header.Get("Content-Encoding") == "" && !noBody {
				s.hold, s.holdH, s.held = &ft, resp, append([]byte(nil), s.head...)
			}
		}
	}
	s.st = stBody
	if s.hold == nil {
		if err := s.out(s.head); err != nil {
			return err
		}
		if s.limit == 0 {
			return s.cut()
		}
	}
	if s.body.done() {
		return s.onEnd()
	}
	return nil
}

// sleep waits d; it reports false if the wait ended early: the fault was
// reverted, the connection or the Link closed.
func (s *httpStage) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.revoked:
	case <-s.c.done():
	case <-s.l.done:
	}
	return false
}

func (s *httpStage) cut() error {
	s.l.log.Debug("http: response cut", "conn", s.d.conn.id)
	return errHTTPCut
}

func (s *httpStage) onBody(p []byte) error {
	switch {
	case s.d.dir == toxics.Upstream:
		if s.drop {
			return nil
		}
		return s.out(p)
	case s.hold != nil:
		s.held = append(s.held, p...)
		if len(s.held) > maxHTTPJSON { // too big to change: pass it on
			held := s.held
			s.hold, s.held = nil, nil
			return s.out(held)
		}
		return nil
	case s.limit >= 0:
		if int64(len(p)) > s.limit {
			if err := s.out(p[:s.limit]); err != nil {
				return err
			}
			return s.cut()
		}
		s.limit -= int64(len(p))
		return s.out(p)
	case s.rate > 0:
		return s.trickle(p)
	}
	return s.out(p)
}

// trickle passes p on at s.rate bytes per second, in pieces of about 50ms
// worth; the rest goes at once if the wait ends early.
func (s *httpStage) trickle(p []byte) error {
	piece := max(1, s.rate/20)
	for len(p) > 0 {
		n := min(int64(len(p)), piece)
		if err := s.out(p[:n]); err != nil {
			return err
		}
		p = p[n:]
		if !s.sleep(time.Duration(float64(n) / float64(s.rate) * float64(time.Second))) {
			s.rate = 0
			return s.out(p)
		}
	}
	return nil
}

func (s *httpStage) onEnd() error {
	s.st = stIdle
	if s.d.dir == toxics.Upstream {
		if s.drop {
			s.drop = false
			if _, err := s.d.src.Write(s.answer); err != nil {
				s.d.conn.close(false)
				return err
			}
			s.l.bytesDown.Add(int64(len(s.answer)))
			if s.closing {
				return errHTTPCut
			}
		}
		return nil
	}
	s.ex = nil
	if s.hold == nil {
		return nil
	}
	f, resp, msg := *s.hold, s.holdH, s.held
	s.hold, s.holdH, s.held = nil, nil, nil
	return s.out(mutateResponse(f, resp, msg))
}

// mutateResponse returns the response msg (head and body as they came)
// with f's change made to its body, or msg if nothing changed.
func mutateResponse(f toxics.HTTPJSON, resp *http.Response, msg []byte) []byte {
	i := bytes.Index(msg, []byte("\r\n\r\n"))
	body := msg[i+4:]
	if slices.Contains(resp.TransferEncoding, "chunked") {
		b, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(body)))
		if err != nil {
			return msg
		}
		body = b
	}
	changed, err := httpfault.Mutate(f, body)
	if err != nil {
		return msg
	}
	h := resp.Header.Clone()
	h.Del("Transfer-Encoding")
	h.Set("Content-Length", strconv.Itoa(len(changed)))
	var b bytes.Buffer
	b.WriteString(resp.Proto + " " + resp.Status + "\r\n")
	_ = h.Write(&b)
	b.WriteString("\r\n")
	b.Write(changed)
	return b.Bytes()
}

// bodyFrame finds where a body ends: after a Content-Length, after the
// last chunk and the trailer, or at the close.
type bodyFrame struct {
	chunked bool
	toClose bool  // a response without a length: it ends at the close
	left    int64 // Content-Length: bytes left; chunked: bytes left of the chunk
	cst     uint8 // chunked: 0 size line, 1 data, 2 end of data, 3 trailer, 4 done
	line    []byte
}

// start frames a body with these transfer encodings and content length
// (-1: unknown); untilClose says whether a body of unknown length runs
// to the close (responses) rather than being empty (requests).
func (b *bodyFrame) start(te []string, cl int64, untilClose bool) error {
	*b = bodyFrame{line: b.line[:0]}
	switch {
	case len(te) > 0:
		if te[len(te)-1] != "chunked" {
			return fmt.Errorf("transfer encoding %q", strings.Join(te, ", "))
		}
		b.chunked = true
	case cl >= 0:
		b.left = cl
	case untilClose:
		b.toClose = true
	}
	return nil
}

func (b *bodyFrame) done() bool {
	if b.chunked {
		return b.cst == 4
	}
	return !b.toClose && b.left == 0
}

// fits reports whether the body is known to be at most n bytes.
func (b *bodyFrame) fits(n int64) bool { return !b.chunked && !b.toClose && b.left <= n }

// feed takes the bytes of p that belong to the body and reports how many,
// and whether the body is complete.
func (b *bodyFrame) feed(p []byte) (int, bool, error) {
	if b.toClose {
		return len(p), false, nil
	}
	if !b.chunked {
		n := int(min(int64(len(p)), b.left))
		b.left -= int64(n)
		return n, b.left == 0, nil
	}
	i := 0
	for i < len(p) && b.cst != 4 {
		switch b.cst {
		case 1:
			n := int(min(int64(len(p)-i), b.left))
			i += n
			b.left -= int64(n)
			if b.left == 0 {
				b.cst = 2
			}
		default: // a line: the size, the end of the data, a trailer line
			j := bytes.IndexByte(p[i:], '\n')
			if j < 0 {
				b.line = append(b.line, p[i:]...)
				i = len(p)
				if len(b.line) > 4096 {
					return i, false, errors.New("chunk line too long")
				}
				continue
			}
			b.line = append(b.line, p[i:i+j]...)
			i += j + 1
			if len(b.line) == 0 || b.line[len(b.line)-1] != '\r' || bytes.IndexByte(b.line[:len(b.line)-1], '\r') >= 0 {
				return i, false, errors.New("chunk line does not end with CRLF")
			}
			line := strings.TrimRight(string(b.line[:len(b.line)-1]), " \t")
			b.line = b.line[:0]
			switch b.cst {
			case 0:
				if k := strings.IndexByte(line, ';'); k >= 0 {
					line = strings.TrimRight(line[:k], " \t")
				}
				size, err := strconv.ParseUint(line, 16, 63)
				if err != nil || line == "" || len(line) > 16 || strings.ContainsAny(line, "+-_xX") {
					return i, false, fmt.Errorf("chunk size %q", line)
				}
				if size == 0 {
					b.cst = 3
				} else {
					b.cst, b.left = 1, int64(size)
				}
			case 2:
				if line != "" {
					return i, false, errors.New("chunk data not followed by CRLF")
				}
				b.cst = 0
			case 3:
				if line == "" {
					b.cst = 4
				}
			}
		}
	}
	return i, b.cst == 4, nil
}
