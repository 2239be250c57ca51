package harness

import (
	"bytes"
	"io"
	"net/http/httputil"
	"testing"
)

// FuzzChunkFrame: where the Link's chunked framing says a body ends, the
// chunked reader of net/http reads that body to its end without error;
// and fed in pieces, it ends at the same place as fed at once.
func FuzzChunkFrame(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\nNEXT"), 3)
	f.Add([]byte("3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\n"), 1)
	f.Add([]byte("zz\r\n"), 2)
	f.Fuzz(func(t *testing.T, data []byte, step int) {
		var whole bodyFrame
		_ = whole.start([]string{"chunked"}, -1, true)
		n, done, err := whole.feed(data)
		if err != nil || !done {
			return
		}
		if _, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(data[:n]))); err != nil {
			t.Fatalf("framed %q as one body, net/http reads: %v", data[:n], err)
		}
		step = max(1, step%16+1)
		var pieces bodyFrame
		_ = pieces.start([]string{"chunked"}, -1, true)
		at := 0
		for at < len(data) {
			k, done, err := pieces.feed(data[at:min(len(data), at+step)])
			if err != nil {
				t.Fatalf("fed in pieces of %d: %v", step, err)
			}
			at += k
			if done {
				break
			}
		}
		if at != n {
			t.Fatalf("fed at once: ends at %d; in pieces of %d: at %d", n, step, at)
		}
	})
}
