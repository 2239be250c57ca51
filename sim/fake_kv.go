package sim

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// FakeKV is an in-process key-value server on a [Network] that speaks
// enough of the Redis protocol (RESP2) for a real Redis client, such as
// go-redis v9, to use it in virtual time. It embeds its [Endpoint], so it
// is the [Target] for its name.
//
// Commands: PING, ECHO, GET, SET (with EX, PX, EXAT, PXAT, NX, XX,
// KEEPTTL, GET), DEL, EXISTS, INCR, INCRBY, DECR, DECRBY, EXPIRE,
// PEXPIRE, EXPIREAT, PEXPIREAT (with NX, XX, GT, LT), TTL, PTTL, PERSIST,
// DBSIZE, SELECT 0, FLUSHDB, FLUSHALL and QUIT, with Redis's replies and
// error messages. HELLO and
// CLIENT get an unknown-command error, so go-redis falls back to RESP2 and
// goes on; other commands get the same error. Pipelining works. Expiry
// follows the endpoint's clock ([Endpoint.Now]: the client's clock, virtual
// in a bubble, moved by clock faults), so under a [toxics.ClockSkew] a key
// given an absolute expiry (EXPIREAT, PXAT) by a client expires early or
// late, and under a [toxics.ClockJump] (or a skew's start or end) a TTL
// running across the step does.
//
// Node faults: a crash loses every key (a Redis without persistence); a
// stop or restart keeps them (saved on a graceful shutdown).
//
// With go-redis, turn its maintenance notifications off: otherwise
// redis.NewClient resolves the host of Addr with the real DNS, outside the
// simulation (inside a bubble that is a fatal error of the test binary):
//
//	rdb := redis.NewClient(&redis.Options{
//		Addr:                     "cache:6379",
//		Dialer:                   n.Dial,
//		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
//	})
type FakeKV struct {
	*Endpoint
	srv *fakeServer

	mu    sync.Mutex
	data  map[string]kvEntry
	calls map[string]int64

	requests atomic.Int64
	faults   kvFaults // Redis protocol faults (fake_kv_faults.go)
}

type kvEntry struct {
	val string
	exp time.Time // zero: never
}

// Limits on what a client may send, as Redis has (its bulk limit is
// larger): past them the connection gets a protocol error and closes.
const (
	kvMaxArgs   = 1 << 20
	kvMaxBulk   = 16 << 20
	kvMaxInline = 64 << 10
)

// FakeKV starts a fake key-value server under name. Clients dial
// "<name>:6379" (any port reaches it unless name has one). It is ready on
// return and closed by [Network.Close] or [FakeKV.Close].
func (n *Network) FakeKV(name string) (*FakeKV, error) {
	ln, ep, err := listenFake(n, "fake KV", name)
	if err != nil {
		return nil, err
	}
	kv := &FakeKV{Endpoint: ep, srv: newFakeServer("fake KV", name, ln), data: map[string]kvEntry{}, calls: map[string]int64{}}
	if err := n.addFake(kv); err != nil {
		ln.Close()
		return nil, fmt.Errorf("sim: fake KV %q: %w", name, err)
	}
	ep.watch(func(ev nodeEvent) {
		if ev == nodeCrashed {
			kv.mu.Lock()
			clear(kv.data)
			kv.mu.Unlock()
		}
	})
	kv.srv.start(kv.serve)
	return kv, nil
}

// Requests returns how many commands reached the server, the connection
// set-up commands of clients (HELLO, CLIENT, SELECT) included.
func (kv *FakeKV) Requests() int64 { return kv.requests.Load() }

// Calls returns how many commands named name (case-insensitive) reached
// the server.
func (kv *FakeKV) Calls(name string) int64 {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	return kv.calls[strings.ToUpper(name)]
}

// Get returns the value of key as the server holds it now.
func (kv *FakeKV) Get(key string) (string, bool) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	e, ok := kv.lookupLocked(key, kv.Endpoint.Now())
	return e.val, ok
}

// Snapshot returns a copy of every live key and its value.
func (kv *FakeKV) Snapshot() map[string]string {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	now := kv.Endpoint.Now()
	out := make(map[string]string, len(kv.data))
	for k, e := range kv.data {
		if e.exp.IsZero() || now.Before(e.exp) {
			out[k] = e.val
		}
	}
	return out
}

// Err returns the first panic of the server, wrapping [ErrPanic], or nil.
func (kv *FakeKV) Err() error { return kv.srv.err() }

// Close stops the fake: it stops listening, closes every connection and
// waits for its goroutines. The data is dropped. It is idempotent.
func (kv *FakeKV) Close() error { kv.clearFaults(); return kv.srv.close() }

func (kv *FakeKV) lookupLocked(key string, now time.Time) (kvEntry, bool) {
	e, ok := kv.data[key]
	if ok && !e.exp.IsZero() && !now.Before(e.exp) {
		delete(kv.data, key)
		return kvEntry{}, false
	}
	return e, ok
}

// errProtocol is a malformed request: the server replies with it and
// closes the connection, as Redis does.
type errProtocol string

func (e errProtocol) Error() string { return "Protocol error: " + string(e) }

// kvBufs are the buffers of FakeKV's connections, reused: a schedule
// that crashes or resets the server makes its clients dial again, and
// two 4 KiB buffers for each new connection were a third of what a
// simulated run allocated.
var kvBufs = sync.Pool{New: func() any { return &kvBuf{r: bufio.NewReader(nil), w: bufio.NewWriter(nil)} }}

type kvBuf struct {
	r *bufio.Reader
	w *bufio.Writer
}

func (kv *FakeKV) serve(c net.Conn) {
	b := kvBufs.Get().(*kvBuf)
	r, w := b.r, b.w
	r.Reset(c)
	w.Reset(c)
	defer func() {
		r.Reset(nil)
		w.Reset(nil)
		kvBufs.Put(b)
	}()
	cf := kv.newConnFaults()
	for {
		args, err := readCommand(r)
		if err != nil {
			var perr errProtocol
			if errors.As(err, &perr) {
				w.WriteString("-ERR " + perr.Error() + "\r\n")
				w.Flush()
			}
			return
		}
		if len(args) == 0 {
			continue
		}
		var quit bool
		if reply, answered := kv.meet(cf, w, args[0]); answered {
			writeError(w, reply)
		} else {
			kv.requests.Add(1)
			quit = kv.exec(w, args)
		}
		if quit || r.Buffered() == 0 {
			if w.Flush() != nil {
				return
			}
		}
		if quit {
			return
		}
	}
}

// readCommand reads one request: a RESP array of bulk strings, or an
// inline command (words on a line). The lines and bulk strings already
// in r's buffer are parsed in place: an argument costs one string.
func readCommand(r *bufio.Reader) ([]string, error) {
	line, err := readLine(r)
	if err != nil {
		return nil, err
	}
	if len(line) == 0 || line[0] != '*' {
		return strings.Fields(string(line)), nil
	}
	n, err := atoi(line[1:])
	if err != nil || n > kvMaxArgs {
		return nil, errProtocol("invalid multibulk length")
	}
	if n <= 0 {
		return nil, nil
	}
	args := make([]string, 0, min(n, 64))
	for range n {
		line, err := readLine(r)
		if err != nil {
			return nil, err
		}
		if len(line) == 0 || line[0] != '$' {
			got := "''"
			if len(line) > 0 {
				got = "'" + string(line[:1]) + "'"
			}
			return nil, errProtocol("expected '$', got " + got)
		}
		size, err := atoi(line[1:])
		if err != nil || size < 0 || size > kvMaxBulk {
			return nil, errProtocol("invalid bulk length")
		}
		var buf []byte
		if r.Buffered() >= size+2 {
			// All of it is in the buffer, where io.ReadFull would
			// only copy it from.
			buf, _ = r.Peek(size + 2)
			r.Discard(size + 2)
		} else {
			buf = make([]byte, size+2)
			if _, err := io.ReadFull(r, buf); err != nil {
				return nil, err
			}
		}
		if buf[size] != '\r' || buf[size+1] != '\n' {
			return nil, errProtocol("bulk string not followed by CRLF")
		}
		args = append(args, string(buf[:size]))
	}
	return args, nil
}

// readLine reads a line and returns it without its "\n" and one "\r"
// before it. The line is valid until the next read from r.
func readLine(r *bufio.Reader) ([]byte, error) {
	part, err := r.ReadSlice('\n')
	if err == nil { // the usual case: the whole line was in the buffer
		return bytes.TrimSuffix(part[:len(part)-1], []byte{'\r'}), nil
	}
	sb := append([]byte(nil), part...)
	for {
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
		if len(sb) > kvMaxInline {
			return nil, errProtocol("too big request line")
		}
		part, err = r.ReadSlice('\n')
		sb = append(sb, part...)
		if err == nil {
			break
		}
	}
	return bytes.TrimSuffix(sb[:len(sb)-1], []byte{'\r'}), nil
}

// atoi is strconv.Atoi of b, without making a string of b when b is a
// few decimal digits.
func atoi(b []byte) (int, error) {
	if len(b) == 0 || len(b) > 18 {
		return strconv.Atoi(string(b))
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return strconv.Atoi(string(b))
		}
		n = n*10 + int(c-'0')
	}
	return n, nil
}

// kvNames maps the name of each command FakeKV knows (and of those a
// client sends when it connects), in upper case, to itself.
var kvNames = func() map[string]string {
	m := map[string]string{}
	for _, name := range []string{"PING", "ECHO", "GET", "SET", "DEL", "EXISTS", "INCR", "INCRBY", "DECR", "DECRBY",
		"EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT", "TTL", "PTTL", "PERSIST", "DBSIZE", "SELECT", "FLUSHDB",
		"FLUSHALL", "QUIT", "HELLO", "CLIENT", "AUTH"} {
		m[name] = name
	}
	return m
}()

// upperName is strings.ToUpper(name), without making a string when
// name is that of a command in kvNames in any case.
func upperName(name string) string {
	var buf [16]byte
	if len(name) > len(buf) {
		return strings.ToUpper(name)
	}
	for i := range len(name) {
		c := name[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		buf[i] = c
	}
	if upper, ok := kvNames[string(buf[:len(name)])]; ok {
		return upper
	}
	return strings.ToUpper(name)
}

// exec runs one command and writes its reply. It reports whether the
// connection should close (QUIT).
func (kv *FakeKV) exec(w *bufio.Writer, args []string) (quit bool) {
	name := upperName(args[0])
	kv.mu.Lock()
	defer kv.mu.Unlock()
	kv.calls[name]++
	now := kv.Endpoint.Now()
	argc := len(args) - 1
	arity := func(ok bool) bool {
		if !ok {
			writeError(w, "ERR wrong number of arguments for '"+strings.ToLower(args[0])+"' command")
		}
		return ok
	}
	switch name {
	case "PING":
		if arity(argc <= 1) {
			if argc == 1 {
				writeBulk(w, args[1])
			} else {
				w.WriteString("+PONG\r\n")
			}
		}
	case "ECHO":
		if arity(argc == 1) {
			writeBulk(w, args[1])
		}
	case "GET":
		if arity(argc == 1) {
			if e, ok := kv.lookupLocked(args[1], now); ok {
				writeBulk(w, e.val)
			} else {
				w.WriteString("$-1\r\n")
			}
		}
	case "SET":
		if arity(argc >= 2) {
			kv.set(w, args[1:], now)
		}
	case "DEL", "EXISTS":
		if arity(argc >= 1) {
			n := 0
			for _, k := range args[1:] {
				if _, ok := kv.lookupLocked(k, now); ok {
					n++
					if name == "DEL" {
						delete(kv.data, k)
					}
				}
			}
			writeInt(w, int64(n))
		}
	case "INCR", "DECR":
		if arity(argc == 1) {
			by := int64(1)
			if name == "DECR" {
				by = -1
			}
			kv.incr(w, args[1], by, now)
		}
	case "INCRBY", "DECRBY":
		if arity(argc == 2) {
			by, err := strconv.ParseInt(args[2], 10, 64)
			if err != nil || (name == "DECRBY" && by == math.MinInt64) {
				writeError(w, "ERR value is not an integer or out of range")
				break
			}
			if name == "DECRBY" {
				by = -by
			}
			kv.incr(w, args[1], by, now)
		}
	case "EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT":
		if arity(argc >= 2) {
			kv.expire(w, name, args[1:], now)
		}
	case "TTL", "PTTL":
		if arity(argc == 1) {
			kv.ttl(w, name, args[1], now)
		}
	case "PERSIST":
		if arity(argc == 1) {
			kv.persist(w, args[1], now)
		}
	case "DBSIZE":
		if arity(argc == 0) {
			n := 0
			for k := range kv.data {
				if _, ok := kv.lookupLocked(k, now); ok {
					n++
				}
			}
			writeInt(w, int64(n))
		}
	case "SELECT":
		if arity(argc == 1) {
			switch db, err := strconv.Atoi(args[1]); {
			case err != nil:
				writeError(w, "ERR value is not an integer or out of range")
			case db != 0:
				writeError(w, "ERR DB index is out of range")
			default:
				w.WriteString("+OK\r\n")
			}
		}
	case "FLUSHDB", "FLUSHALL":
		if arity(argc <= 1) {
			clear(kv.data)
			w.WriteString("+OK\r\n")
		}
	case "QUIT":
		w.WriteString("+OK\r\n")
		return true
	default:
		var sb strings.Builder
		for _, a := range args[1:] {
			sb.WriteString("'" + a + "' ")
		}
		writeError(w, fmt.Sprintf("ERR unknown command '%s', with args beginning with: %s", args[0], sb.String()))
	}
	return false
}

func (kv *FakeKV) set(w *bufio.Writer, args []string, now time.Time) {
	key, val := args[0], args[1]
	var nx, xx, keepTTL, get bool
	var exp time.Time
	for i := 2; i < len(args); i++ {
		switch opt := strings.ToUpper(args[i]); opt {
		case "NX":
			nx = true
		case "XX":
			xx = true
		case "KEEPTTL":
			keepTTL = true
		case "GET":
			get = true
		case "EX", "PX", "EXAT", "PXAT":
			if i+1 >= len(args) || !exp.IsZero() {
				writeError(w, "ERR syntax error")
				return
			}
			i++
			var reply string
			var ok bool
			if exp, reply, ok = expireAt(opt, args[i], now, true); !ok {
				if reply == "" {
					reply = "ERR invalid expire time in 'set' command"
				}
				writeError(w, reply)
				return
			}
		default:
			writeError(w, "ERR syntax error")
			return
		}
	}
	if (nx && xx) || (keepTTL && !exp.IsZero()) {
		writeError(w, "ERR syntax error")
		return
	}
	old, exists := kv.lookupLocked(key, now)
	if (nx && exists) || (xx && !exists) {
		if get && exists {
			writeBulk(w, old.val)
		} else {
			w.WriteString("$-1\r\n")
		}
		return
	}
	if keepTTL && exists {
		exp = old.exp
	}
	kv.data[key] = kvEntry{val: val, exp: exp}
	switch {
	case get && exists:
		writeBulk(w, old.val)
	case get:
		w.WriteString("$-1\r\n")
	default:
		w.WriteString("+OK\r\n")
	}
}

func (kv *FakeKV) incr(w *bufio.Writer, key string, by int64, now time.Time) {
	e, _ := kv.lookupLocked(key, now)
	var v int64
	if e.val != "" || kv.has(key) {
		var err error
		v, err = strconv.ParseInt(e.val, 10, 64)
		if err != nil {
			writeError(w, "ERR value is not an integer or out of range")
			return
		}
	}
	if (by > 0 && v > math.MaxInt64-by) || (by < 0 && v < math.MinInt64-by) {
		writeError(w, "ERR increment or decrement would overflow")
		return
	}
	v += by
	kv.data[key] = kvEntry{val: strconv.FormatInt(v, 10), exp: e.exp}
	writeInt(w, v)
}

func (kv *FakeKV) has(key string) bool {
	_, ok := kv.data[key]
	return ok
}

func writeBulk(w *bufio.Writer, s string) {
	w.WriteString("$" + strconv.Itoa(len(s)) + "\r\n")
	w.WriteString(s)
	w.WriteString("\r\n")
}

func writeInt(w *bufio.Writer, v int64) {
	w.WriteString(":" + strconv.FormatInt(v, 10) + "\r\n")
}

func writeError(w *bufio.Writer, msg string) {
	w.WriteString("-" + strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, msg) + "\r\n")
}
