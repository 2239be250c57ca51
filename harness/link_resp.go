package harness

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shakedown/shakedown/toxics"
)

// Protocol faults
//
// A protocol fault ([toxics.RedisError], [toxics.RedisDelay],
// [toxics.PgError], [toxics.PgRefuse]) arms a slot in both directions like
// any other fault, so that both directions of every connection run on the
// pipeline while it is active; the slots pass the bytes on unchanged. The
// fault acts at the pipelines' ends, where the Link writes to the sockets:
// the upstream end cuts the client's bytes into requests, forwards each,
// holds it, or answers it itself; the downstream end cuts the server's
// bytes into replies and puts each answer in its place among them. A
// per-connection queue holds, in request order, the forwarded requests
// whose replies have not all reached the client and the answers waiting
// behind them, so replies keep their order with pipelined requests. While
// it is not empty the downstream direction stays on the pipeline even once
// the fault is reverted. Nothing is parsed while no protocol fault is
// active: the fast path never looks at the bytes.
//
// A connection that was open before the fault is assumed to be between
// requests (and, for Postgres, past its start-up) when the fault begins;
// a reply the server still owed then may reach the client after an
// answer of the Link to a later request.

// WithProtocol declares the protocol the Link's upstream speaks
// ([toxics.ProtocolRedis], [toxics.ProtocolPostgres] or
// [toxics.ProtocolHTTP]), so the Link takes that protocol's faults
// ([Link.Supports]). The Links of [Env.Redis] and [Env.Postgres] declare
// theirs; pass it to [Env.Address] or [Env.Container] to declare the
// protocol of a server the Env does not know, and to [StartLink] for a
// Link of your own. Without it a Link refuses protocol faults. Any other
// name makes StartLink fail, and stops the test in Address and Container,
// with an error naming it.
//
// For HTTP (HTTP/1.1), pipelining is not supported: a client that sends a
// request before the response to the previous one has arrived may get the
// answer of an HTTPStatus fault ahead of that response. net/http's
// Transport, and most clients, never pipeline. A connection the Link
// cannot parse (not HTTP/1.1, a request half sent when the fault was
// applied, an upgrade) passes through untouched, and the Link logs "http:
// not parsing this connection any more" at debug level (see
// [WithLogger]).
func WithProtocol(protocol string) ProtocolOption { return protocolOption(protocol) }

// ProtocolOption is what [WithProtocol] returns: a [LinkOption] and a
// [ServiceOption].
type ProtocolOption interface {
	LinkOption
	ServiceOption
}

type protocolOption string

func (o protocolOption) applyLink(c *linkConfig)       { c.protocol = string(o) }
func (o protocolOption) applyService(c *serviceConfig) { c.protocol = string(o) }

func checkProtocol(p string) error {
	switch p {
	case "", toxics.ProtocolRedis, toxics.ProtocolPostgres, toxics.ProtocolHTTP:
		return nil
	}
	return fmt.Errorf("protocol %q is not one of %q, %q, %q", p, toxics.ProtocolRedis, toxics.ProtocolPostgres, toxics.ProtocolHTTP)
}

// Protocol returns the protocol the Link's upstream speaks, or "".
func (l *Link) Protocol() string { return *l.protocol.Load() }

// speak declares the Link's protocol after it started, before it has
// connections: Env.Redis and Env.Postgres do.
func (l *Link) speak(protocol string) { l.protocol.Store(&protocol) }

// protoFault is one active protocol fault of a Link.
type protoFault struct {
	id    uint64
	fault toxics.LinkFault
	req   toxics.Requests
	cmds  map[string]bool // req's commands; nil: every command
	seed  uint64
	count atomic.Int64  // requests it matched, for Nth
	done  chan struct{} // closed by revert: held requests go on
}

// selects reports whether pf acts on the request named cmd (upper case),
// the n-th (from 0) it matched on connection conn.
func (pf *protoFault) selects(cmd string, conn uint64, n *uint64) bool {
	if pf.cmds != nil && !pf.cmds[cmd] {
		return false
	}
	if pf.req.Nth > 0 {
		return pf.count.Add(1) == int64(pf.req.Nth)
	}
	i := *n
	*n++
	u := float64(seedMix(seedMix(pf.seed, conn), i)>>11) / (1 << 53)
	return u < pf.req.Share
}

// startProto makes a's fault act on requests: called by Apply once both
// directions of every live connection run on the pipeline.
func (l *Link) startProto(a *appliedFault) {
	req, _ := toxics.RequestsOf(a.fault)
	pf := &protoFault{id: a.id, fault: a.fault, req: req, seed: faultSeed(l.seed, a.id, toxics.Both), done: make(chan struct{})}
	if list := req.CommandList(); len(list) > 0 {
		pf.cmds = map[string]bool{}
		for _, c := range list {
			pf.cmds[c] = true
		}
	}
	l.protoMu.Lock()
	defer l.protoMu.Unlock()
	old := l.protoFaults.Load()
	next := []*protoFault{pf}
	if old != nil {
		next = append(slices.Clone(*old), pf)
	}
	l.protoFaults.Store(&next)
}

// stopProto stops a's fault acting on requests and lets go of the
// requests it holds; called by revert before the slots are disarmed.
func (l *Link) stopProto(a *appliedFault) {
	l.protoMu.Lock()
	defer l.protoMu.Unlock()
	old := l.protoFaults.Load()
	if old == nil {
		return
	}
	var next []*protoFault
	for _, pf := range *old {
		if pf.id == a.id {
			close(pf.done)
			continue
		}
		next = append(next, pf)
	}
	l.protoFaults.Store(&next)
}

func (l *Link) activeProto() []*protoFault {
	if p := l.protoFaults.Load(); p != nil {
		return *p
	}
	return nil
}

// checkProtoFault is Apply's check of a protocol fault: the Link must
// speak its protocol.
func (l *Link) checkProtoFault(f toxics.Fault) error {
	if p := f.Kind().Protocol(); p != "" && p != l.Protocol() {
		if l.Protocol() == "" {
			return fmt.Errorf("%s speaks %s, and the link declares no protocol (start it with WithProtocol(%q))", f.Kind(), p, p)
		}
		return fmt.Errorf("%s speaks %s, and the link speaks %s", f.Kind(), p, l.Protocol())
	}
	return nil
}

// protoEntry is one request in a connection's queue: forwarded (answer
// nil, its reply still due from the server) or answered by the Link.
type protoEntry struct {
	answer  []byte
	pgReady bool // a Postgres answer: ReadyForQuery follows it
	close   bool // the connection closes after the answer
}

// protoConn is a connection's protocol state; made when a protocol fault
// first meets the connection, it lives as long as the connection.
type protoConn struct {
	c *linkConn

	up     []byte // client bytes not yet cut into whole requests
	shares map[uint64]uint64
	out    []byte // client bytes cut, to be written to the server at once
	outN   int    // requests in out whose replies are due

	// mu guards what follows; the downstream end holds it while it
	// writes to the client, the upstream end while it answers.
	mu      sync.Mutex
	queue   []protoEntry
	pending atomic.Int32 // len(queue), read by linkDir.armed
	opaque  bool         // no longer parsed (TLS, a subscription)
	failed  bool         // a write to the client failed

	redis redisReplies
	pg    pgState
}

// proto returns the connection's protocol state, making it if a protocol
// fault is active, or nil.
func (c *linkConn) protoState() *protoConn {
	if pc := c.proto.Load(); pc != nil {
		return pc
	}
	if c.l.Protocol() == "" || len(c.l.activeProto()) == 0 {
		return nil
	}
	pc := &protoConn{c: c, shares: map[uint64]uint64{}}
	if c.proto.CompareAndSwap(nil, pc) {
		return pc
	}
	return c.proto.Load()
}

// protoBusy reports whether the connection owes the client answers.
func (c *linkConn) protoBusy() bool {
	pc := c.proto.Load()
	return pc != nil && pc.pending.Load() > 0
}

// write is what a pipeline's sink writes to its socket: through the
// protocol ends while the connection has protocol state.
func (d *linkDir) write(p []byte) (int, error) {
	if pc := d.conn.protoState(); pc != nil {
		var err error
		if d.dir == toxics.Upstream {
			err = pc.fromClient(d, p)
		} else {
			err = pc.fromServer(d, p)
		}
		if err != nil {
			return 0, err
		}
		return len(p), nil
	}
	d.delivered(p) // the traceparent tap (link_trace.go)
	return d.dst.Write(p)
}

var errProtoClosed = errors.New("the link closed the connection after a fatal answer")

// fromClient cuts the client's bytes into requests.
func (pc *protoConn) fromClient(d *linkDir, p []byte) error {
	if pc.isOpaque() {
		_, err := d.dst.Write(p)
		return err
	}
	pc.up = append(pc.up, p...)
	var err error
	switch pc.c.l.Protocol() {
	case toxics.ProtocolRedis:
		err = pc.redisRequests(d)
	default:
		err = pc.pgRequests(d)
	}
	if len(pc.up) == 0 {
		pc.up = nil
	}
	if ferr := pc.flushOut(d); err == nil {
		err = ferr
	}
	return err
}

func (pc *protoConn) isOpaque() bool {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.opaque
}

// decide returns how long to hold the request named cmd and the fault
// that answers it, if one does.
func (pc *protoConn) decide(cmd string, answers func(toxics.LinkFault) bool) (hold time.Duration, holdFor []*protoFault, by *protoFault) {
	for _, pf := range pc.c.l.activeProto() {
		n := pc.shares[pf.id]
		if d, ok := pf.fault.(toxics.RedisDelay); ok {
			if pf.selects(cmd, pc.c.id, &n) {
				hold += d.Delay
				holdFor = append(holdFor, pf)
			}
		} else if answers(pf.fault) && by == nil && pf.selects(cmd, pc.c.id, &n) {
			by = pf
		}
		pc.shares[pf.id] = n
	}
	return hold, holdFor, by
}

// hold waits d, or less if the faults are reverted or the Link closes.
func (pc *protoConn) hold(d time.Duration, faults []*protoFault) {
	t := time.NewTimer(d)
	defer t.Stop()
	done := make(chan struct{})
	var once sync.Once
	for _, pf := range faults {
		go func() {
			select {
			case <-pf.done:
				once.Do(func() { close(done) })
			case <-done:
			}
		}()
	}
	select {
	case <-t.C:
	case <-done:
	case <-pc.c.l.done:
	}
	once.Do(func() { close(done) })
}

// forward sends a request on to the server, its reply now due. Requests
// and other bytes go out together, at the latest when the chunk from the
// client has been cut (flushOut).
func (pc *protoConn) forward(_ *linkDir, req []byte) error {
	pc.out = append(pc.out, req...)
	pc.outN++
	return nil
}

// pass sends bytes on to the server that no reply answers.
func (pc *protoConn) pass(_ *linkDir, b []byte) error {
	pc.out = append(pc.out, b...)
	return nil
}

// flushOut writes what forward and pass gathered, the replies due noted
// in the queue first (a reply may arrive as soon as the write is done).
func (pc *protoConn) flushOut(d *linkDir) error {
	if len(pc.out) == 0 {
		return nil
	}
	pc.mu.Lock()
	for range pc.outN {
		pc.queue = append(pc.queue, protoEntry{})
	}
	pc.pending.Store(int32(len(pc.queue)))
	pc.mu.Unlock()
	if pc.outN > 0 {
		// The replies must be cut: if the way back runs on the fast
		// path (a revert just moved it there), move it to the pipeline
		// first, as Apply does.
		if next := pc.c.dirs[1].interrupt(fastRead, true); next != nil {
			<-next
		}
	}
	_, err := d.dst.Write(pc.out)
	pc.out, pc.outN = pc.out[:0], 0
	if cap(pc.out) > linkChunk {
		pc.out = nil
	}
	return err
}

// answer puts the Link's answer in its place: at once if no reply is due
// before it, otherwise after the replies before it. Requests gathered
// before it go out first.
func (pc *protoConn) answer(d *linkDir, e protoEntry) error {
	if err := pc.flushOut(d); err != nil {
		return err
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.queue = append(pc.queue, e)
	pc.pending.Store(int32(len(pc.queue)))
	return pc.flushLocked()
}

// replyDoneLocked notes that one reply of the server has been cut and
// reports whether answers of the Link come next. pc.mu must be held.
func (pc *protoConn) replyDoneLocked() bool {
	if len(pc.queue) > 0 && pc.queue[0].answer == nil && !pc.queue[0].pgReady {
		pc.queue = pc.queue[1:]
		pc.pending.Store(int32(len(pc.queue)))
	}
	return len(pc.queue) > 0 && (pc.queue[0].answer != nil || pc.queue[0].pgReady)
}

// flushLocked writes the answers at the head of the queue.
func (pc *protoConn) flushLocked() error {
	for len(pc.queue) > 0 && (pc.queue[0].answer != nil || pc.queue[0].pgReady) {
		e := pc.queue[0]
		pc.queue = pc.queue[1:]
		if err := pc.toClientLocked(e.answer); err != nil {
			return err
		}
		if e.pgReady {
			if err := pc.toClientLocked(pgReadyForQuery(pc.pg.failedTx())); err != nil {
				return err
			}
		}
		if e.close {
			pc.queue = nil
			pc.pending.Store(0)
			pc.c.close(false)
			return errProtoClosed
		}
	}
	pc.pending.Store(int32(len(pc.queue)))
	return nil
}

func (pc *protoConn) toClientLocked(b []byte) error {
	if pc.failed {
		return errProtoClosed
	}
	_, err := pc.c.client.Write(b)
	if err != nil {
		pc.failed = true
	}
	return err
}

// fromServer cuts the server's bytes into replies and writes them on,
// each answer of the Link in its place.
func (pc *protoConn) fromServer(d *linkDir, p []byte) error {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.opaque && len(pc.queue) == 0 {
		return pc.toClientLocked(p)
	}
	var ends []int
	if pc.c.l.Protocol() == toxics.ProtocolRedis {
		ends = pc.redis.feed(p)
	} else {
		ends = pc.pg.feed(p, &pc.opaque)
	}
	from := 0
	for _, end := range ends {
		if !pc.replyDoneLocked() {
			continue
		}
		if err := pc.toClientLocked(p[from:end]); err != nil {
			return err
		}
		from = end
		if err := pc.flushLocked(); err != nil {
			return err
		}
	}
	if from < len(p) {
		return pc.toClientLocked(p[from:])
	}
	return nil
}

// Redis

// redisRequests cuts whole commands out of pc.up and deals with each.
func (pc *protoConn) redisRequests(d *linkDir) error {
	for len(pc.up) > 0 {
		n, cmd, err := redisCommand(pc.up)
		if err != nil {
			// Not RESP as we know it: pass everything on unparsed.
			pc.mu.Lock()
			pc.opaque = true
			pc.mu.Unlock()
			b := pc.up
			pc.up = nil
			return pc.pass(d, b)
		}
		if n == 0 {
			return nil // incomplete
		}
		req := pc.up[:n:n]
		pc.up = pc.up[n:]
		if cmd == "" { // an empty line
			if err := pc.pass(d, req); err != nil {
				return err
			}
			continue
		}
		hold, holdFor, by := pc.decide(cmd, func(f toxics.LinkFault) bool { _, ok := f.(toxics.RedisError); return ok })
		if hold > 0 {
			if err := pc.flushOut(d); err != nil {
				return err
			}
			pc.hold(hold, holdFor)
		}
		if by != nil {
			reply := by.fault.(toxics.RedisError).Reply
			if err := pc.answer(d, protoEntry{answer: []byte("-" + reply + "\r\n")}); err != nil {
				return err
			}
			continue
		}
		switch cmd {
		case "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "MONITOR", "SYNC", "PSYNC":
			// Replies no longer answer commands one to one.
			pc.mu.Lock()
			pc.opaque = true
			pc.mu.Unlock()
		}
		if err := pc.forward(d, req); err != nil {
			return err
		}
	}
	return nil
}

// Bounds on what the Link parses of a Redis command before it gives up
// parsing the connection.
const (
	redisMaxArgs = 1 << 20
	redisMaxBulk = 512 << 20
	redisMaxLine = 64 << 10
)

var errNotRESP = errors.New("not RESP")

// redisCommand returns the length of the first whole command in b and its
// name in upper case; n is 0 if b does not hold a whole command yet. An
// inline command is a line of words.
func redisCommand(b []byte) (n int, cmd string, err error) {
	line, rest, ok := cutLine(b)
	if !ok {
		if len(b) > redisMaxLine {
			return 0, "", errNotRESP
		}
		return 0, "", nil
	}
	if len(line) == 0 || line[0] != '*' {
		words := bytes.Fields(line)
		if len(words) == 0 {
			return len(b) - len(rest), "", nil
		}
		return len(b) - len(rest), string(bytes.ToUpper(words[0])), nil
	}
	count, err := atoi(line[1:])
	if err != nil || count > redisMaxArgs {
		return 0, "", errNotRESP
	}
	off := len(b) - len(rest)
	for i := 0; i < count; i++ {
		hdr, after, ok := cutLine(b[off:])
		if !ok {
			return 0, "", nil
		}
		if len(hdr) == 0 || hdr[0] != '$' {
			return 0, "", errNotRESP
		}
		size, err := atoi(hdr[1:])
		if err != nil || size < 0 || size > redisMaxBulk {
			return 0, "", errNotRESP
		}
		start := len(b) - len(after)
		if len(b) < start+size+2 {
			return 0, "", nil
		}
		if i == 0 {
			cmd = string(bytes.ToUpper(b[start : start+size]))
		}
		off = start + size + 2
	}
	return off, cmd, nil
}

// cutLine returns the line at the start of b without its CRLF (or LF) and
// what follows it.
func cutLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, nil, false
	}
	line = b[:i]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, b[i+1:], true
}

// redisReplies cuts a stream of RESP2 or RESP3 replies, chunk by chunk,
// without holding them.
type redisReplies struct {
	line  []byte       // header line read so far
	skip  int          // payload bytes (and CRLF) of a blob still to pass
	stack []redisFrame // open aggregates
	bad   bool         // not RESP: stop cutting
}

type redisFrame struct {
	left     int  // elements still due
	uncounts bool // a push or an attribute: not a reply to a command
}

// feed returns the offsets in p just after each reply to a command ends
// (push messages and attributes are not replies to commands).
func (r *redisReplies) feed(p []byte) []int {
	var ends []int
	i := 0
	for i < len(p) && !r.bad {
		if r.skip > 0 {
			n := min(r.skip, len(p)-i)
			i += n
			r.skip -= n
			if r.skip == 0 {
				if r.done() {
					ends = append(ends, i)
				}
			}
			continue
		}
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			r.line = append(r.line, p[i:]...)
			if len(r.line) > redisMaxLine {
				r.bad = true
			}
			break
		}
		r.line = append(r.line, p[i:i+j]...)
		i += j + 1
		line := bytes.TrimSuffix(r.line, []byte("\r"))
		r.line = r.line[:0]
		if len(line) == 0 {
			r.bad = true
			break
		}
		typ := line[0]
		num := func() int {
			v, err := atoi(line[1:])
			if err != nil {
				r.bad = true
			}
			return v
		}
		switch typ {
		case '+', '-', ':', '_', ',', '#', '(':
			if r.done() {
				ends = append(ends, i)
			}
		case '$', '!', '=':
			size := num()
			if r.bad {
				break
			}
			if size < 0 {
				if r.done() {
					ends = append(ends, i)
				}
			} else {
				r.skip = size + 2
			}
		case '*', '~', '>', '%', '|':
			count := num()
			if r.bad {
				break
			}
			if typ == '%' || typ == '|' {
				count *= 2
			}
			uncounts := len(r.stack) == 0 && typ == '>' || typ == '|'
			if count <= 0 {
				if !uncounts && r.done() {
					ends = append(ends, i)
				}
			} else {
				r.stack = append(r.stack, redisFrame{left: count, uncounts: uncounts})
			}
		default:
			r.bad = true
		}
	}
	return ends
}

// done notes that a value ended and reports whether a reply to a command
// ended with it.
func (r *redisReplies) done() bool {
	for len(r.stack) > 0 {
		top := &r.stack[len(r.stack)-1]
		top.left--
		if top.left > 0 {
			return false
		}
		r.stack = r.stack[:len(r.stack)-1]
		if top.uncounts {
			// An attribute precedes the value it describes; a push
			// answers no command.
			return false
		}
	}
	return true
}

// atoi parses a decimal integer, with an optional minus sign, without
// allocating.
func atoi(b []byte) (int, error) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, errNotRESP
	}
	v := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, errNotRESP
		}
		v = 10*v + int(c-'0')
	}
	if neg {
		v = -v
	}
	return v, nil
}
