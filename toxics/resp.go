package toxics

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Protocol fault kinds: faults that speak a dependency's protocol, so they
// act on requests and replies rather than on bytes. A target takes them
// only if it speaks that protocol (see [Kind.Protocol]). Mildest first
// within each protocol.
const (
	KindRedisDelay Kind = "redis_delay"
	KindRedisError Kind = "redis_error"
	KindPgError    Kind = "pg_error"
	KindPgRefuse   Kind = "pg_refuse"
)

// Protocols named by [Kind.Protocol].
const (
	ProtocolRedis    = "redis"
	ProtocolPostgres = "postgres"
	// ProtocolHTTP is HTTP/1.1, whose faults are the HTTP kinds
	// ([HTTPKinds]); Kind.Protocol of those is "" (see Kind.IsHTTP).
	ProtocolHTTP = "http"
)

// ProtocolKinds returns every protocol fault kind, mildest first within
// each protocol. They are link kinds ([Kind.IsLink]) but not in
// [LinkKinds], which lists the kinds that act on bytes and suit any link.
func ProtocolKinds() []Kind { return append([]Kind(nil), protocolKinds...) }

// DataKinds returns the kinds of data steps ([KindData]): node kinds that
// only targets made for them take.
func DataKinds() []Kind { return append([]Kind(nil), dataKinds...) }

// Protocol returns the protocol a fault of kind k speaks ([ProtocolRedis],
// [ProtocolPostgres]), or "" for kinds that act on bytes, connections or
// nodes and suit any target of their sort.
func (k Kind) Protocol() string {
	switch k {
	case KindRedisDelay, KindRedisError:
		return ProtocolRedis
	case KindPgError, KindPgRefuse:
		return ProtocolPostgres
	case KindData:
		return ProtocolData
	}
	return ""
}

// Requests selects the requests a protocol fault acts on: Redis commands,
// Postgres queries, or Postgres connection attempts for [PgRefuse].
//
// Exactly one of Share and Nth is set. Share answers that share of the
// requests, each drawn from the seed of whoever applies the fault (1 is
// every request); Nth answers only the Nth request, counted from 1 over
// all the target's connections since the fault began. Commands, if not
// empty, is a space-separated list of command names (Redis: "GET SET";
// Postgres: the first keyword of the SQL, "SELECT INSERT COMMIT"),
// case-insensitive: only those requests are counted and drawn.
type Requests struct {
	Share    float64
	Nth      int
	Commands string
}

func (r Requests) validate(k Kind) error {
	switch {
	case math.IsNaN(r.Share) || r.Share < 0 || r.Share > 1:
		return &FieldError{Kind: k, Field: "share", Value: r.Share, Reason: "must be in (0, 1]"}
	case r.Nth < 0:
		return &FieldError{Kind: k, Field: "nth", Value: r.Nth, Reason: "must not be negative"}
	case r.Nth > 0 && r.Share != 0:
		return &FieldError{Kind: k, Field: "share", Value: r.Share, Reason: fmt.Sprintf("must be 0 (unset) when nth is set (%d)", r.Nth)}
	case r.Nth == 0 && r.Share == 0:
		return &FieldError{Kind: k, Field: "share", Value: r.Share, Reason: "must be in (0, 1], or nth set instead"}
	}
	for _, c := range r.CommandList() {
		for _, b := range []byte(c) {
			if !(b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '-' || b == '|') {
				return &FieldError{Kind: k, Field: "commands", Value: fmt.Sprintf("%q", r.Commands), Reason: fmt.Sprintf("command %q has a character other than letters, digits, _ - |", c)}
			}
		}
	}
	return nil
}

// CommandList returns Commands split on white space and commas, in upper
// case.
func (r Requests) CommandList() []string {
	return strings.FieldsFunc(strings.ToUpper(r.Commands), func(c rune) bool {
		return c == ' ' || c == ',' || c == '\t' || c == '\n' || c == '\r'
	})
}

// Matches reports whether a request named command (case-insensitive) is
// one the fault counts.
func (r Requests) Matches(command string) bool {
	list := r.CommandList()
	if len(list) == 0 {
		return true
	}
	command = strings.ToUpper(command)
	for _, c := range list {
		if c == command {
			return true
		}
	}
	return false
}

func (r Requests) String() string {
	var s string
	if r.Nth > 0 {
		s = fmt.Sprintf("nth=%d", r.Nth)
	} else {
		s = fmt.Sprintf("share=%g", r.Share)
	}
	if l := r.CommandList(); len(l) > 0 {
		s += " " + strings.Join(l, ",")
	}
	return s
}

// Replies to [RedisError] with the prefixes clients look for (go-redis
// retries LOADING and READONLY on another node or later, for instance).
// Any other message works as well: its first word is the error code.
const (
	RedisLoading  = "LOADING the server is loading its dataset into memory"
	RedisBusy     = "BUSY the server is busy running a script"
	RedisReadOnly = "READONLY writes are not allowed against a read-only replica"
	RedisOOM      = "OOM command not allowed: used memory is over the maxmemory limit"
)

// RedisReplies lists the error replies above, mildest first: the server is
// starting, busy for a while, a replica, out of memory.
func RedisReplies() []string { return []string{RedisLoading, RedisBusy, RedisReadOnly, RedisOOM} }

// RedisError answers the Redis commands that Requests selects with the
// error reply Reply (without its leading '-', such as [RedisLoading])
// instead of forwarding them; the server never sees them. Replies keep
// their order: with pipelined commands, the error reply comes after the
// server's replies to the commands before it.
type RedisError struct {
	Reply string
	Requests
}

func (RedisError) Kind() Kind { return KindRedisError }
func (f RedisError) Validate() error {
	if f.Reply == "" {
		return &FieldError{Kind: KindRedisError, Field: "reply", Value: `""`, Reason: "must not be empty (an error reply such as \"LOADING ...\")"}
	}
	if strings.ContainsAny(f.Reply, "\r\n") {
		return &FieldError{Kind: KindRedisError, Field: "reply", Value: fmt.Sprintf("%q", f.Reply), Reason: "must be one line (no CR or LF)"}
	}
	return f.Requests.validate(KindRedisError)
}
func (f RedisError) String() string {
	code, _, _ := strings.Cut(f.Reply, " ")
	return call(KindRedisError, code+" "+f.Requests.String())
}

// RedisDelay holds the Redis commands that Requests selects for Delay
// before forwarding them. Commands pipelined behind a held one wait for
// it, so replies keep their order.
type RedisDelay struct {
	Delay time.Duration
	Requests
}

func (RedisDelay) Kind() Kind { return KindRedisDelay }
func (f RedisDelay) Validate() error {
	if err := positive(KindRedisDelay, "delay", f.Delay); err != nil {
		return err
	}
	return f.Requests.validate(KindRedisDelay)
}
func (f RedisDelay) String() string {
	return call(KindRedisDelay, f.Delay.String()+" "+f.Requests.String())
}

func (RedisError) fault()     {}
func (RedisDelay) fault()     {}
func (RedisError) linkFault() {}
func (RedisDelay) linkFault() {}

// RequestsOf returns the Requests of a protocol fault, and false for any
// other fault.
func RequestsOf(f Fault) (Requests, bool) {
	switch f := f.(type) {
	case RedisError:
		return f.Requests, true
	case RedisDelay:
		return f.Requests, true
	case PgError:
		return f.Requests, true
	case PgRefuse:
		return f.Requests, true
	}
	return Requests{}, false
}

// wire returns the JSON fields of r: share or nth, and commands if set.
func (r Requests) wire() (share *float64, nth *int, commands *string) {
	if r.Nth > 0 {
		nth = ptr(r.Nth)
	} else {
		share = ptr(r.Share)
	}
	return share, nth, optStr(r.Commands)
}

func (w *wire) requests() Requests {
	return Requests{Share: deref(w.Share), Nth: deref(w.Nth), Commands: deref(w.Commands)}
}

func optStr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
