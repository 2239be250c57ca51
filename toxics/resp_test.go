package toxics_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shakedown/shakedown/toxics"
)

// The protocol faults join the round-trip table, and so the fuzz targets'
// seeds.
func init() {
	every = append(every,
		toxics.RedisDelay{Delay: 300 * time.Millisecond, Requests: toxics.Requests{Share: 0.5, Commands: "GET SET"}},
		toxics.RedisDelay{Delay: time.Second, Requests: toxics.Requests{Nth: 3}},
		toxics.RedisError{Reply: toxics.RedisLoading, Requests: toxics.Requests{Share: 1}},
		toxics.RedisError{Reply: "ERR custom message", Requests: toxics.Requests{Nth: 2, Commands: "INCR"}},
		toxics.PgError{Code: toxics.PgSerializationFailure, Requests: toxics.Requests{Share: 0.25, Commands: "UPDATE COMMIT"}},
		toxics.PgError{Code: toxics.PgAdminShutdown, Message: "bye", Requests: toxics.Requests{Nth: 1}},
		toxics.PgRefuse{Code: toxics.PgTooManyConnections, Requests: toxics.Requests{Share: 1}},
		toxics.Data{},
	)
}

func TestProtocolKindsCovered(t *testing.T) {
	seen := map[toxics.Kind]bool{}
	for _, f := range every {
		seen[f.Kind()] = true
	}
	for _, k := range toxics.DataKinds() {
		if !seen[k] || !k.IsNode() || k.Protocol() != toxics.ProtocolData {
			t.Errorf("data kind %s: in table %v, IsNode=%v, Protocol=%q", k, seen[k], k.IsNode(), k.Protocol())
		}
	}
	for _, k := range toxics.ProtocolKinds() {
		if !seen[k] {
			t.Errorf("kind %s has no value in the round-trip table", k)
		}
		if !k.IsLink() || k.IsNode() || k.Protocol() == "" {
			t.Errorf("kind %s: IsLink=%v IsNode=%v Protocol=%q", k, k.IsLink(), k.IsNode(), k.Protocol())
		}
	}
	for _, k := range append(toxics.LinkKinds(), toxics.NodeKinds()...) {
		if k.Protocol() != "" {
			t.Errorf("kind %s acts on bytes or nodes but says it speaks %q", k, k.Protocol())
		}
	}
}

func TestProtocolHandWritten(t *testing.T) {
	for _, tt := range []struct {
		json string
		want toxics.Fault
	}{
		{`{"kind":"redis_error","reply":"BUSY busy","share":1}`, toxics.RedisError{Reply: "BUSY busy", Requests: toxics.Requests{Share: 1}}},
		{`{"kind":"redis_delay","delay":"250ms","nth":4,"commands":"get"}`, toxics.RedisDelay{Delay: 250 * time.Millisecond, Requests: toxics.Requests{Nth: 4, Commands: "get"}}},
		{`{"kind":"pg_error","code":"40P01","share":0.1}`, toxics.PgError{Code: "40P01", Requests: toxics.Requests{Share: 0.1}}},
		{`{"kind":"pg_refuse","code":"53300","nth":1}`, toxics.PgRefuse{Code: "53300", Requests: toxics.Requests{Nth: 1}}},
	} {
		got, err := toxics.Unmarshal([]byte(tt.json))
		if err != nil {
			t.Errorf("Unmarshal(%s): %v", tt.json, err)
			continue
		}
		if got != tt.want {
			t.Errorf("Unmarshal(%s) = %#v, want %#v", tt.json, got, tt.want)
		}
	}
}

func TestProtocolUnmarshalErrors(t *testing.T) {
	for _, tt := range []struct{ json, want string }{
		{`{"kind":"redis_error","share":1}`, `field "reply" is required`},
		{`{"kind":"redis_error","reply":"LOADING x","share":1,"code":"40001"}`, `has no field "code"`},
		{`{"kind":"pg_refuse","code":"53300","share":1,"commands":"SELECT"}`, `has no field "commands"`},
		{`{"kind":"pg_error","code":"40001"}`, `pg_error.share = 0: must be in (0, 1], or nth set instead`},
		{`{"kind":"redis_delay","delay":"1s","share":0.5,"nth":2}`, `redis_delay.share = 0.5: must be 0 (unset) when nth is set (2)`},
	} {
		_, err := toxics.Unmarshal([]byte(tt.json))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Unmarshal(%s) = %v, want an error containing %q", tt.json, err, tt.want)
		}
	}
}

func TestProtocolValidate(t *testing.T) {
	all := toxics.Requests{Share: 1}
	for _, tt := range []struct {
		fault toxics.Fault
		field string
	}{
		{toxics.RedisError{Requests: all}, "reply"},
		{toxics.RedisError{Reply: "ERR a\r\nb", Requests: all}, "reply"},
		{toxics.RedisError{Reply: "ERR x", Requests: toxics.Requests{Share: 1.5}}, "share"},
		{toxics.RedisError{Reply: "ERR x", Requests: toxics.Requests{Share: -0.1}}, "share"},
		{toxics.RedisError{Reply: "ERR x", Requests: toxics.Requests{Nth: -1}}, "nth"},
		{toxics.RedisError{Reply: "ERR x", Requests: toxics.Requests{Share: 1, Commands: "GET $SET"}}, "commands"},
		{toxics.RedisDelay{Requests: all}, "delay"},
		{toxics.RedisDelay{Delay: -time.Second, Requests: all}, "delay"},
		{toxics.RedisDelay{Delay: time.Second}, "share"},
		{toxics.PgError{Code: "4001", Requests: all}, "code"},
		{toxics.PgError{Code: "4000a", Requests: all}, "code"},
		{toxics.PgError{Code: "00000", Requests: all}, "code"},
		{toxics.PgError{Code: "40001", Message: "a\x00b", Requests: all}, "message"},
		{toxics.PgRefuse{Code: "53300", Requests: toxics.Requests{Share: 1, Commands: "SELECT"}}, "commands"},
		{toxics.PgRefuse{Code: "", Requests: all}, "code"},
	} {
		err := tt.fault.Validate()
		var fe *toxics.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field || fe.Kind != tt.fault.Kind() {
			t.Errorf("Validate(%#v) = %v, want a *FieldError on %s.%s", tt.fault, err, tt.fault.Kind(), tt.field)
		}
	}
}

func TestProtocolStrings(t *testing.T) {
	for _, tt := range []struct {
		f    toxics.Fault
		want string
	}{
		{toxics.RedisError{Reply: toxics.RedisOOM, Requests: toxics.Requests{Share: 0.5, Commands: "set"}}, "redis_error(OOM share=0.5 SET)"},
		{toxics.RedisDelay{Delay: time.Second, Requests: toxics.Requests{Nth: 2}}, "redis_delay(1s nth=2)"},
		{toxics.PgError{Code: "40001", Requests: toxics.Requests{Share: 1}}, "pg_error(40001 share=1)"},
		{toxics.PgRefuse{Code: "53300", Requests: toxics.Requests{Nth: 1}}, "pg_refuse(53300 nth=1)"},
	} {
		if got := tt.f.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestRequestsMatches(t *testing.T) {
	r := toxics.Requests{Share: 1, Commands: "get, Set"}
	for cmd, want := range map[string]bool{"GET": true, "get": true, "SET": true, "DEL": false, "": false} {
		if got := r.Matches(cmd); got != want {
			t.Errorf("Matches(%q) = %v, want %v", cmd, got, want)
		}
	}
	if !(toxics.Requests{Share: 1}).Matches("anything") {
		t.Error("empty Commands should match every command")
	}
}
