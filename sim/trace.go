package sim

import (
	"context"
	"encoding/hex"
)

// opKey is the context key under which an op's identity travels.
type opKey struct{}

type opInfo struct {
	id   uint64
	seed int64
}

func withOp(ctx context.Context, seed int64, id uint64) context.Context {
	return context.WithValue(ctx, opKey{}, opInfo{id: id, seed: seed})
}

// OpID returns the ID of the op whose context ctx is (the ID it has in the
// History), and false if ctx does not belong to an op.
func OpID(ctx context.Context) (uint64, bool) {
	info, ok := ctx.Value(opKey{}).(opInfo)
	return info.id, ok
}

// Traceparent returns a W3C trace context header value for the op whose
// context ctx is, such as
//
//	00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
//
// An HTTP workload sends it as the "traceparent" header so the server's
// logs and traces can be matched to the op. The trace and span IDs are
// derived from the run's seed and the op's ID, so a replayed run sends the
// same values. It returns "" if ctx does not belong to an op.
func Traceparent(ctx context.Context) string {
	info, ok := ctx.Value(opKey{}).(opInfo)
	if !ok {
		return ""
	}
	return traceparent(info.seed, info.id)
}

func traceparent(seed int64, id uint64) string {
	var b [55]byte
	copy(b[:], "00-")
	var raw [24]byte
	for i := range 3 {
		v := mix(uint64(seed), id, uint64(i)+0x7472616365) // "trace"
		for j := range 8 {
			raw[i*8+j] = byte(v >> (56 - 8*j))
		}
	}
	// The spec forbids all-zero IDs; a zero draw is astronomically rare,
	// but keep the header valid regardless.
	if allZero(raw[:16]) {
		raw[15] = 1
	}
	if allZero(raw[16:]) {
		raw[23] = 1
	}
	hex.Encode(b[3:35], raw[:16])
	b[35] = '-'
	hex.Encode(b[36:52], raw[16:])
	copy(b[52:], "-01")
	return string(b[:])
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// mix hashes a seed, an op ID and a salt into 64 well-mixed bits
// (splitmix64's finaliser over a combination of the three).
func mix(seed, id, salt uint64) uint64 {
	z := seed ^ (id+salt)*0x9e3779b97f4a7c15
	z ^= salt << 17
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
