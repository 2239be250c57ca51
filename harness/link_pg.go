package harness

import (
	"encoding/binary"
	"strings"

	"github.com/shakedown/shakedown/toxics"
)

// Postgres wire protocol v3, as the protocol faults see it: the client's
// start-up packets (no type byte), then typed messages both ways. A query
// is a simple Query, or an extended-protocol batch up to its Sync; the
// server's reply to each ends with ReadyForQuery.

// Start-up packet codes.
const (
	pgSSLRequest    = 80877103
	pgGSSENCRequest = 80877104
	pgCancelRequest = 80877102
	pgMaxMessage    = 1 << 30
)

// pgState is a connection's Postgres state. The upstream end owns the
// fields up to stmts; the rest is guarded by protoConn.mu.
type pgState struct {
	phase    int  // 0: not known yet, 1: start-up packets, 2: typed messages
	decided  bool // whether a PgRefuse refuses this connection is decided
	refuse   *protoFault
	inBatch  bool // an extended-protocol batch is under way
	dropping bool // and it is answered by the Link: drop it up to its Sync
	stmts    map[string]string

	awaitByte int // one-byte answers due to SSLRequest / GSSENCRequest
	hdr       [5]byte
	hdrN      int
	typ       byte
	skip      int
	status    byte // transaction status of the last ReadyForQuery
}

// failedTx is the status of the ReadyForQuery after an answered error:
// idle if the session was idle, a failed transaction block otherwise.
func (s *pgState) failedTx() byte {
	if s.status == 0 || s.status == 'I' {
		return 'I'
	}
	return 'E'
}

func pgReadyForQuery(status byte) []byte { return []byte{'Z', 0, 0, 0, 5, status} }

// pgErrorResponse is an ErrorResponse with severity sev, SQLSTATE code
// and message msg.
func pgErrorResponse(sev, code, msg string) []byte {
	var body []byte
	for _, f := range []struct {
		t byte
		v string
	}{{'S', sev}, {'V', sev}, {'C', code}, {'M', msg}} {
		body = append(body, f.t)
		body = append(body, f.v...)
		body = append(body, 0)
	}
	body = append(body, 0)
	out := []byte{'E', 0, 0, 0, 0}
	binary.BigEndian.PutUint32(out[1:], uint32(len(body)+4))
	return append(out, body...)
}

// pgAnswer is the answer of an active PgError.
func pgAnswer(f toxics.PgError) protoEntry {
	msg := f.Message
	if msg == "" {
		msg = toxics.PgMessage(f.Code)
	}
	if toxics.PgFatal(f.Code) {
		return protoEntry{answer: pgErrorResponse("FATAL", f.Code, msg), close: true}
	}
	return protoEntry{answer: pgErrorResponse("ERROR", f.Code, msg)}
}

func (pc *protoConn) setOpaque() {
	pc.mu.Lock()
	pc.opaque = true
	pc.mu.Unlock()
}

// pgRequests cuts whole packets and messages out of pc.up and deals with
// each.
func (pc *protoConn) pgRequests(d *linkDir) error {
	s := &pc.pg
	if s.stmts == nil {
		s.stmts = map[string]string{}
	}
	for len(pc.up) > 0 {
		if s.phase == 0 {
			s.phase = 2
			if pc.up[0] == 0 { // a start-up packet begins with a length < 2^24
				s.phase = 1
			}
		}
		var n int
		if s.phase == 1 {
			n = pgPacketLen(pc.up, 0)
		} else {
			n = pgPacketLen(pc.up, 1)
		}
		if n < 0 {
			pc.setOpaque()
			b := pc.up
			pc.up = nil
			return pc.pass(d, b)
		}
		if n == 0 || len(pc.up) < n {
			return nil
		}
		msg := pc.up[:n:n]
		pc.up = pc.up[n:]
		var err error
		if s.phase == 1 {
			err = pc.pgStartup(d, msg)
		} else {
			err = pc.pgMessage(d, msg)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// pgPacketLen returns the length of the packet at the start of b whose
// length field follows typeLen type bytes: 0 if not known yet, -1 if the
// length is not sane.
func pgPacketLen(b []byte, typeLen int) int {
	if len(b) < typeLen+4 {
		return 0
	}
	n := int(binary.BigEndian.Uint32(b[typeLen:]))
	if n < 4 || n > pgMaxMessage {
		return -1
	}
	return typeLen + n
}

// pgStartup deals with one start-up packet.
func (pc *protoConn) pgStartup(d *linkDir, pkt []byte) error {
	s := &pc.pg
	code := uint32(0)
	if len(pkt) >= 8 {
		code = binary.BigEndian.Uint32(pkt[4:])
	}
	if code == pgCancelRequest {
		return pc.pass(d, pkt)
	}
	if !s.decided {
		s.decided = true
		_, _, s.refuse = pc.decide("", func(f toxics.LinkFault) bool { _, ok := f.(toxics.PgRefuse); return ok })
	}
	switch code {
	case pgSSLRequest, pgGSSENCRequest:
		if s.refuse != nil {
			return pc.answer(d, protoEntry{answer: []byte{'N'}})
		}
		pc.mu.Lock()
		s.awaitByte++
		pc.mu.Unlock()
		return pc.pass(d, pkt)
	}
	s.phase = 2
	if s.refuse != nil {
		f := s.refuse.fault.(toxics.PgRefuse)
		msg := f.Message
		if msg == "" {
			msg = toxics.PgMessage(f.Code)
		}
		return pc.answer(d, protoEntry{answer: pgErrorResponse("FATAL", f.Code, msg), close: true})
	}
	return pc.forward(d, pkt) // the server's reply ends with its first ReadyForQuery
}

func isPgError(f toxics.LinkFault) bool { _, ok := f.(toxics.PgError); return ok }

// pgMessage deals with one typed message from the client.
func (pc *protoConn) pgMessage(d *linkDir, msg []byte) error {
	s := &pc.pg
	body := msg[5:]
	switch typ := msg[0]; typ {
	case 'Q', 'F':
		cmd := ""
		if typ == 'Q' {
			cmd = sqlCommand(cstring(body))
		}
		if _, _, by := pc.decide(cmd, isPgError); by != nil {
			e := pgAnswer(by.fault.(toxics.PgError))
			e.pgReady = !e.close
			return pc.answer(d, e)
		}
		return pc.forward(d, msg)
	case 'P', 'B', 'D', 'E', 'C', 'H':
		if !s.inBatch {
			s.inBatch = true
			cmd := ""
			switch typ {
			case 'P': // statement name, then the query
				name := cstring(body)
				cmd = sqlCommand(cstring(body[min(len(body), len(name)+1):]))
			case 'B': // portal name, then the statement name
				portal := cstring(body)
				cmd = sqlCommand(s.stmts[cstring(body[min(len(body), len(portal)+1):])])
			}
			if _, _, by := pc.decide(cmd, isPgError); by != nil {
				s.dropping = true
				if err := pc.answer(d, pgAnswer(by.fault.(toxics.PgError))); err != nil {
					return err
				}
			}
		}
		if s.dropping {
			return nil
		}
		if typ == 'P' {
			name := cstring(body)
			s.stmts[name] = cstring(body[min(len(body), len(name)+1):])
		}
		return pc.pass(d, msg)
	case 'S':
		dropped := s.inBatch && s.dropping
		s.inBatch, s.dropping = false, false
		if dropped {
			return pc.answer(d, protoEntry{pgReady: true})
		}
		return pc.forward(d, msg)
	}
	// Terminate, copy data, password messages: no reply of their own.
	return pc.pass(d, msg)
}

// cstring returns the NUL-terminated string at the start of b.
func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// sqlCommand returns the first keyword of sql in upper case, past white
// space, comments and opening parentheses.
func sqlCommand(sql string) string {
	for {
		sql = strings.TrimLeft(sql, " \t\r\n(;")
		switch {
		case strings.HasPrefix(sql, "--"):
			i := strings.IndexByte(sql, '\n')
			if i < 0 {
				return ""
			}
			sql = sql[i+1:]
		case strings.HasPrefix(sql, "/*"):
			i := strings.Index(sql, "*/")
			if i < 0 {
				return ""
			}
			sql = sql[i+2:]
		default:
			end := 0
			for end < len(sql) && (sql[end] >= 'a' && sql[end] <= 'z' || sql[end] >= 'A' && sql[end] <= 'Z' || sql[end] == '_') {
				end++
			}
			return strings.ToUpper(sql[:end])
		}
	}
}

// feed cuts the server's bytes into messages and returns the offsets in p
// just after each ReadyForQuery. An SSLRequest or GSSENCRequest answered
// yes makes the rest opaque (encrypted).
func (s *pgState) feed(p []byte, opaque *bool) []int {
	var ends []int
	for i := 0; i < len(p) && !*opaque; {
		switch {
		case s.skip > 0:
			n := min(s.skip, len(p)-i)
			if s.typ == 'Z' && n > 0 {
				s.status = p[i]
			}
			i += n
			s.skip -= n
			if s.skip == 0 && s.typ == 'Z' {
				ends = append(ends, i)
			}
		case s.hdrN == 0 && s.awaitByte > 0:
			s.awaitByte--
			if p[i] != 'N' {
				*opaque = true
			}
			i++
		default:
			n := copy(s.hdr[s.hdrN:], p[i:])
			s.hdrN += n
			i += n
			if s.hdrN < 5 {
				continue
			}
			s.hdrN = 0
			s.typ = s.hdr[0]
			size := int(binary.BigEndian.Uint32(s.hdr[1:]))
			if size < 4 || size > pgMaxMessage {
				*opaque = true
				continue
			}
			s.skip = size - 4
			if s.skip == 0 && s.typ == 'Z' {
				ends = append(ends, i)
			}
		}
	}
	return ends
}
