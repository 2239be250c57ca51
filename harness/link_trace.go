package harness

import (
	"bytes"
	"strconv"

	"github.com/shakedown/shakedown/toxics"
)

// OnTraceparent calls f once for every HTTP/1.x request the Link delivers
// to its upstream, with the value of the request's traceparent header
// ("" when it has none), as the dependency receives it: after any fault
// on the Link altered the bytes, once the request's head has been written
// on. It is where the Link sees the requests a service sends its
// dependency, so a check can tell whether each op's trace ID crossed the
// boundary (package sim/logs turns the calls into records:
// Capture.Traceparents). f is called from the Link's goroutines, one
// connection at a time per connection; it must not block.
//
// Only request heads are read: a request line ("GET /path HTTP/1.1") at
// the start of a line, then its header lines until the blank line. HTTP/2,
// TLS and other protocols are not seen. While f is set, the requests'
// direction is copied through a buffer rather than spliced kernel to
// kernel. Connections already open are switched at once. A nil f stops
// the calls.
func (l *Link) OnTraceparent(f func(traceparent string)) {
	if f == nil {
		l.tap.Store(nil)
	} else {
		l.tap.Store(&f)
	}
	// Fast-path reads re-check the relay they need when interrupted.
	for _, d := range l.liveDirs(toxics.Upstream) {
		d.interrupt(fastRead, false)
	}
}

// tapping reports whether d's bytes must be read as they are delivered.
func (d *linkDir) tapping() bool {
	return d.dir == toxics.Upstream && d.conn.l.tap.Load() != nil
}

// delivered feeds the bytes about to be written to d's destination to the
// Link's traceparent tap, if any.
func (d *linkDir) delivered(p []byte) {
	if d.dir != toxics.Upstream {
		return
	}
	if f := d.conn.l.tap.Load(); f != nil {
		d.heads.feed(p, *f)
	}
}

// maxHeadLine bounds what is kept of one line; a longer line is no
// request line and no header worth reading.
const maxHeadLine = 8 << 10

// headScanner finds HTTP/1.x request heads in a byte stream fed in
// pieces, and reports the traceparent header of each. It skips request
// bodies by their Content-Length or chunked framing, so a body that holds
// a request line is not taken for one.
type headScanner struct {
	line    []byte // the current line so far, up to maxHeadLine
	long    bool   // the current line outgrew maxHeadLine
	state   scanState
	skip    int64  // body bytes still to pass over
	tp      string // the head's traceparent
	length  int64  // the head's Content-Length
	chunked bool   // the head's Transfer-Encoding is chunked
}

type scanState uint8

const (
	betweenRequests scanState = iota
	inHead
	chunkSize // the next line is a chunk's size
	trailers  // after the last chunk, until the blank line
)

func (s *headScanner) feed(p []byte, report func(string)) {
	for len(p) > 0 {
		if s.skip > 0 {
			n := min(s.skip, int64(len(p)))
			s.skip -= n
			p = p[n:]
			continue
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.add(p)
			return
		}
		s.add(p[:i])
		s.endLine(report)
		p = p[i+1:]
	}
}

func (s *headScanner) add(b []byte) {
	if s.long || len(s.line)+len(b) > maxHeadLine {
		s.long = true
		return
	}
	s.line = append(s.line, b...)
}

func (s *headScanner) endLine(report func(string)) {
	line := bytes.TrimSuffix(s.line, []byte("\r"))
	long := s.long
	s.line, s.long = s.line[:0], false
	if long {
		if s.state == chunkSize { // no size: the framing is lost
			s.state = betweenRequests
		}
		return
	}
	switch s.state {
	case betweenRequests:
		if isRequestLine(line) {
			s.state, s.tp, s.length, s.chunked = inHead, "", 0, false
		}
	case inHead:
		if len(line) == 0 {
			report(s.tp)
			s.state = betweenRequests
			if s.chunked {
				s.state = chunkSize
			} else if s.length > 0 {
				s.skip = s.length
			}
			return
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return
		}
		name, value = bytes.TrimSpace(name), bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("traceparent")):
			s.tp = string(value)
		case bytes.EqualFold(name, []byte("content-length")):
			if n, err := strconv.ParseInt(string(value), 10, 64); err == nil && n >= 0 {
				s.length = n
			}
		case bytes.EqualFold(name, []byte("transfer-encoding")):
			s.chunked = bytes.HasSuffix(bytes.ToLower(value), []byte("chunked"))
		}
	case chunkSize:
		size, _, _ := bytes.Cut(line, []byte(";"))
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
		switch {
		case err != nil || n < 0:
			s.state = betweenRequests // the framing is lost
		case n == 0:
			s.state = trailers
		default:
			s.skip = n + 2 // the chunk and its CRLF
		}
	case trailers:
		if len(line) == 0 {
			s.state = betweenRequests
		}
	}
}

// isRequestLine reports whether line is "METHOD target HTTP/1.x".
func isRequestLine(line []byte) bool {
	method, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok || len(method) == 0 {
		return false
	}
	for _, c := range method {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	target, proto, ok := bytes.Cut(rest, []byte(" "))
	return ok && len(target) > 0 && (bytes.Equal(proto, []byte("HTTP/1.1")) || bytes.Equal(proto, []byte("HTTP/1.0")))
}
