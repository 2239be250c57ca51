package harness

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
)

// redisStream holds replies of every RESP2 and RESP3 type, with a push
// and an attribute that answer no command; wantEnds are the offsets just
// after each reply to a command.
func redisStream() (stream []byte, wantEnds []int) {
	parts := []struct {
		s       string
		counted bool
	}{
		{"+OK\r\n", true},
		{"-ERR no\r\n", true},
		{":42\r\n", true},
		{"$5\r\nhe\r\nl\r\n", true}, // CRLF inside a bulk string
		{"$-1\r\n", true},
		{"*-1\r\n", true},
		{"*0\r\n", true},
		{"*2\r\n$1\r\na\r\n*2\r\n:1\r\n:2\r\n", true},
		{">3\r\n+message\r\n+ch\r\n+hi\r\n", false},
		{"|1\r\n+key\r\n+val\r\n", false},
		{"%2\r\n+a\r\n:1\r\n+b\r\n~1\r\n_\r\n", true},
		{"=8\r\ntxt:abcd\r\n", true},
		{",1.5\r\n", true},
		{"#t\r\n", true},
		{"(123\r\n", true},
		{"!3\r\nerr\r\n", true},
		{"*2\r\n|1\r\n+k\r\n+v\r\n:1\r\n:2\r\n", true}, // an attribute inside an array
	}
	for _, p := range parts {
		stream = append(stream, p.s...)
		if p.counted {
			wantEnds = append(wantEnds, len(stream))
		}
	}
	return stream, wantEnds
}

func TestRedisRepliesAnySplit(t *testing.T) {
	stream, want := redisStream()
	for cut := 0; cut <= len(stream); cut++ {
		var r redisReplies
		got := r.feed(stream[:cut])
		for _, e := range r.feed(stream[cut:]) {
			got = append(got, e+cut)
		}
		require.Equal(t, want, got, "cut at %d", cut)
		require.False(t, r.bad)
	}
	var r redisReplies
	var got []int
	for i := range stream {
		for _, e := range r.feed(stream[i : i+1]) {
			got = append(got, e+i)
		}
	}
	require.Equal(t, want, got, "byte by byte")
}

func TestRedisCommand(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int
		cmd  string
		fail bool
	}{
		{"*2\r\n$3\r\nget\r\n$1\r\nk\r\n", 20, "GET", false},
		{"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1", 20, "GET", false},
		{"*2\r\n$3\r\nGET\r\n$1\r\n", 0, "", false},
		{"*2\r\n$3\r\nGE", 0, "", false},
		{"PING\r\n", 6, "PING", false},
		{"set a b\n", 8, "SET", false},
		{"\r\n", 2, "", false},
		{"*1\r\n:3\r\n", 0, "", true},
		{"*x\r\n", 0, "", true},
		{"*1\r\n$-5\r\n", 0, "", true},
	} {
		n, cmd, err := redisCommand([]byte(tt.in))
		require.Equal(t, tt.fail, err != nil, "%q: %v", tt.in, err)
		require.Equal(t, tt.n, n, "%q", tt.in)
		require.Equal(t, tt.cmd, cmd, "%q", tt.in)
	}
}

func pgMsg(typ byte, body string) []byte {
	b := []byte{typ, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(len(body)+4))
	return append(b, body...)
}

func TestPgRepliesAnySplit(t *testing.T) {
	var stream []byte
	var want []int
	stream = append(stream, 'N') // the answer to an SSLRequest
	for _, m := range [][]byte{pgMsg('R', "\x00\x00\x00\x00"), pgMsg('S', "a\x00b\x00"), pgMsg('Z', "I"),
		pgMsg('1', ""), pgMsg('2', ""), pgMsg('D', "\x00\x01\x00\x00\x00\x01x"), pgMsg('C', "SELECT 1\x00"), pgMsg('Z', "T"),
		pgMsg('E', "SERROR\x00\x00"), pgMsg('Z', "E")} {
		stream = append(stream, m...)
		if m[0] == 'Z' {
			want = append(want, len(stream))
		}
	}
	for cut := 0; cut <= len(stream); cut++ {
		s := pgState{awaitByte: 1}
		var opaque bool
		got := s.feed(stream[:cut], &opaque)
		for _, e := range s.feed(stream[cut:], &opaque) {
			got = append(got, e+cut)
		}
		require.False(t, opaque)
		require.Equal(t, want, got, "cut at %d", cut)
		require.Equal(t, byte('E'), s.status)
	}
	s := pgState{awaitByte: 1}
	var opaque bool
	s.feed([]byte("S\x16\x03"), &opaque)
	require.True(t, opaque, "TLS after 'S' is not parsed")
}

func TestSQLCommand(t *testing.T) {
	for in, want := range map[string]string{
		"select 1":                      "SELECT",
		"  -- c\n/* x */ (SELECT 1)":    "SELECT",
		"update t set a=1":              "UPDATE",
		"WITH x AS (SELECT 1) SELECT 1": "WITH",
		"":                              "",
		"-- only a comment":             "",
	} {
		require.Equal(t, want, sqlCommand(in), "%q", in)
	}
}

func TestPgErrorResponse(t *testing.T) {
	b := pgErrorResponse("ERROR", "40001", "m")
	require.Equal(t, byte('E'), b[0])
	require.Equal(t, len(b)-1, int(binary.BigEndian.Uint32(b[1:])))
	require.Equal(t, "SERROR\x00VERROR\x00C40001\x00Mm\x00\x00", string(b[5:]))
}

// FuzzRedisReplies: the reply cutter never panics, and cuts the same
// wherever a chunk ends.
func FuzzRedisReplies(f *testing.F) {
	s, _ := redisStream()
	f.Add(s, 3)
	f.Add([]byte("*3\r\n$1\r\na\r\n"), 1)
	f.Fuzz(func(t *testing.T, b []byte, cut int) {
		if cut < 0 || cut > len(b) {
			cut = len(b) / 2
		}
		var whole redisReplies
		want := whole.feed(b)
		var split redisReplies
		got := split.feed(b[:cut])
		for _, e := range split.feed(b[cut:]) {
			got = append(got, e+cut)
		}
		if !whole.bad && !split.bad {
			require.Equal(t, want, got)
		}
		_, _, _ = redisCommand(b)
	})
}

// FuzzPgReplies: the message cutter never panics, and cuts the same
// wherever a chunk ends.
func FuzzPgReplies(f *testing.F) {
	f.Add(append(pgMsg('Z', "I"), pgMsg('C', "x\x00")...), 2)
	f.Fuzz(func(t *testing.T, b []byte, cut int) {
		if cut < 0 || cut > len(b) {
			cut = len(b) / 2
		}
		var whole, split pgState
		var o1, o2 bool
		want := whole.feed(b, &o1)
		got := split.feed(b[:cut], &o2)
		for _, e := range split.feed(b[cut:], &o2) {
			got = append(got, e+cut)
		}
		if !o1 && !o2 {
			require.Equal(t, want, got)
		}
		_ = pgPacketLen(b, 1)
		_ = sqlCommand(string(b))
	})
}
