package sim

import (
	"bufio"
	"math"
	"strconv"
	"strings"
	"time"
)

// Expiry commands of FakeKV, computed on its endpoint's clock
// ([Endpoint.Now]), with Redis's replies: EXPIRE, PEXPIRE, EXPIREAT,
// PEXPIREAT (with NX, XX, GT, LT), TTL, PTTL and PERSIST. SET takes EX,
// PX, EXAT and PXAT (fake_kv.go).

// expireAt returns the time an expiry argument names: a number of
// seconds or milliseconds from now (EX, PX, EXPIRE, PEXPIRE) or since the
// Unix epoch (EXAT, PXAT, EXPIREAT, PEXPIREAT). ok is false when it is not
// an integer, or is out of range (non-positive where positive, ms set).
func expireAt(opt, arg string, now time.Time, positive bool) (exp time.Time, reply string, ok bool) {
	v, err := strconv.ParseInt(arg, 10, 64)
	if err != nil {
		return time.Time{}, "ERR value is not an integer or out of range", false
	}
	unit := time.Second
	if strings.HasPrefix(opt, "P") {
		unit = time.Millisecond
	}
	abs := strings.HasSuffix(opt, "AT")
	if (positive && v <= 0) || v > math.MaxInt64/int64(unit) || v < math.MinInt64/int64(unit) {
		return time.Time{}, "", false
	}
	if abs {
		if unit == time.Second {
			return time.Unix(v, 0), "", true
		}
		return time.UnixMilli(v), "", true
	}
	d := time.Duration(v) * unit
	if d > 0 && now.Add(d).Before(now) {
		return time.Time{}, "", false
	}
	return now.Add(d), "", true
}

// expire runs EXPIRE, PEXPIRE, EXPIREAT or PEXPIREAT on args (the key,
// the time, then options). kv.mu must be held.
func (kv *FakeKV) expire(w *bufio.Writer, cmd string, args []string, now time.Time) {
	var nx, xx, gt, lt bool
	for _, o := range args[2:] {
		switch strings.ToUpper(o) {
		case "NX":
			nx = true
		case "XX":
			xx = true
		case "GT":
			gt = true
		case "LT":
			lt = true
		default:
			writeError(w, "ERR Unsupported option "+o)
			return
		}
	}
	switch {
	case nx && (xx || gt || lt):
		writeError(w, "ERR NX and XX, GT or LT options at the same time are not compatible")
		return
	case gt && lt:
		writeError(w, "ERR GT and LT options at the same time are not compatible")
		return
	}
	exp, reply, ok := expireAt(cmd, args[1], now, false)
	if !ok {
		if reply == "" {
			reply = "ERR invalid expire time in '" + strings.ToLower(cmd) + "' command"
		}
		writeError(w, reply)
		return
	}
	e, exists := kv.lookupLocked(args[0], now)
	has := exists && !e.exp.IsZero()
	switch {
	case !exists,
		nx && has,
		xx && !has,
		gt && (!has || !exp.After(e.exp)),
		lt && has && !exp.Before(e.exp):
		writeInt(w, 0)
		return
	}
	if !now.Before(exp) {
		delete(kv.data, args[0]) // already expired: Redis deletes the key
	} else {
		e.exp = exp
		kv.data[args[0]] = e
	}
	writeInt(w, 1)
}

// ttl runs TTL or PTTL. kv.mu must be held.
func (kv *FakeKV) ttl(w *bufio.Writer, cmd, key string, now time.Time) {
	e, ok := kv.lookupLocked(key, now)
	switch {
	case !ok:
		writeInt(w, -2)
	case e.exp.IsZero():
		writeInt(w, -1)
	case cmd == "PTTL":
		writeInt(w, int64(e.exp.Sub(now)/time.Millisecond))
	default: // rounded to the nearest second, as Redis does
		writeInt(w, int64((e.exp.Sub(now)/time.Millisecond+500)/1000))
	}
}

// persist runs PERSIST. kv.mu must be held.
func (kv *FakeKV) persist(w *bufio.Writer, key string, now time.Time) {
	e, ok := kv.lookupLocked(key, now)
	if !ok || e.exp.IsZero() {
		writeInt(w, 0)
		return
	}
	e.exp = time.Time{}
	kv.data[key] = e
	writeInt(w, 1)
}
