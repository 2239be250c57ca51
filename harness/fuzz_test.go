package harness

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Fuzz targets for what a user (or any process on the machine) feeds the
// harness: SHAKEDOWN_BACKEND, ContainerSpec.Port, and /proc/<pid>/stat,
// whose command name any process chooses. Run one for a few seconds with
//
//	go test -run '^$' -fuzz '^FuzzParseBackend$' -fuzztime 10s ./harness/

// FuzzParseBackend: never panics; what parses prints as a name that
// parses to the same backend.
func FuzzParseBackend(f *testing.F) {
	for _, s := range []string{"auto", "docker", "process", "", " Docker ", "podman", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseBackend(s)
		if err != nil {
			if !strings.Contains(err.Error(), "auto, docker, process") {
				t.Fatalf("ParseBackend(%q): error does not list the choices: %v", s, err)
			}
			return
		}
		again, err := ParseBackend(b.String())
		if err != nil || again != b {
			t.Fatalf("ParseBackend(%q) = %v, whose name parses to %v, %v", s, b, again, err)
		}
	})
}

// FuzzNormalizePort: never panics; what is accepted is a TCP port in
// canonical form, which normalizes to itself.
func FuzzNormalizePort(f *testing.F) {
	for _, s := range []string{"8080", "8080/tcp", "53/udp", "", "0", "65536", "1-2", "80/TCP", "/tcp", "8080/tcp/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := normalizePort(s)
		if err != nil {
			return
		}
		num, proto, ok := strings.Cut(p, "/")
		if !ok || proto != "tcp" {
			t.Fatalf("normalizePort(%q) = %q: not n/tcp", s, p)
		}
		if n, err := strconv.Atoi(num); err != nil || n < 0 || n > 65535 {
			t.Fatalf("normalizePort(%q) = %q: not a port number", s, p)
		}
		if again, err := normalizePort(p); err != nil || again != p {
			t.Fatalf("normalizePort(%q) = %q, which normalizes to %q, %v", s, p, again, err)
		}
	})
}

// FuzzParseProcStat: never panics, whatever the command name; a stat
// line built around any name parses to the fields it was built with.
func FuzzParseProcStat(f *testing.F) {
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		f.Add(b, "x", 1, uint64(2))
	}
	f.Add([]byte("1 (a) b) S 0 1 1 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 42 0 0"), "a) S 7 (", 7, uint64(42))
	f.Add([]byte(""), "", 0, uint64(0))
	f.Fuzz(func(t *testing.T, raw []byte, comm string, ppid int, start uint64) {
		_, _, _, _ = parseProcStat(raw)
		if ppid < 0 {
			ppid = -ppid
		}
		if ppid < 0 { // math.MinInt
			ppid = 0
		}
		line := "123 (" + comm + ") S " + strconv.Itoa(ppid) + " 1 1 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 " +
			strconv.FormatUint(start, 10) + " 0 0\n"
		gotPPID, gotStart, state, err := parseProcStat([]byte(line))
		if err != nil || gotPPID != ppid || gotStart != start || state != 'S' {
			t.Fatalf("%q: got ppid %d start %d state %c err %v", line, gotPPID, gotStart, state, err)
		}
	})
}

// FuzzHeadScanner: any bytes, cut anywhere, give the Link's traceparent
// tap the same reports as the whole stream, and never panic.
func FuzzHeadScanner(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n"), uint16(7))
	f.Add([]byte("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /x HTTP/1.0\r\n\r\n"), uint16(30))
	f.Add([]byte("PUT / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n"), uint16(0))
	f.Fuzz(func(t *testing.T, stream []byte, cut uint16) {
		scan := func(pieces ...[]byte) []string {
			var s headScanner
			var got []string
			for _, p := range pieces {
				s.feed(p, func(v string) { got = append(got, v) })
			}
			return got
		}
		i := int(cut) % (len(stream) + 1)
		whole, split := scan(stream), scan(stream[:i], stream[i:])
		if !slices.Equal(whole, split) {
			t.Fatalf("cut at %d: %q, whole %q", i, split, whole)
		}
	})
}
