package properties

import (
	"pgregory.net/rapid"

	"github.com/shakedown/shakedown/toxics"
)

// Protocol faults in generated schedules. They are drawn only for targets
// that speak the protocol: [Aim] asks each target, and a harness Link
// supports a protocol's kinds only if it declares that protocol (the
// Links of harness's Redis and Postgres do); sim's FakeKV takes the Redis
// kinds. Their fields are drawn once per schedule, after the steps, so
// that the draws of schedules without them are as before (saved draw
// streams replay the same): the share (milder: lower), the Redis reply
// and the Postgres code (milder: earlier in toxics.RedisReplies and
// toxics.PgErrorCodes). The delay of a redis_delay is the step's latency
// delay. The minimizer moves each step's values on its own.

// withProto draws the protocol fields and gives them to every step.
func withProto(t *rapid.T, v Values, raws []rawStep) {
	lo, hi := ppm(v.Share[0]), ppm(v.Share[1])
	share := rapid.Int64Range(lo, max(lo, hi)).Draw(t, "share_ppm")
	reply := rapid.IntRange(0, len(toxics.RedisReplies())-1).Draw(t, "redis_reply")
	code := rapid.IntRange(0, len(toxics.PgErrorCodes())-1).Draw(t, "pg_code")
	for i := range raws {
		build := raws[i].fault
		raws[i].fault = func(k toxics.Kind) toxics.Fault {
			if k.Protocol() == "" {
				return build(k)
			}
			f := fieldsOf(build(toxics.KindLatency))
			f.share, f.reply, f.code = share, reply, code
			return f.protoFault(k)
		}
	}
}

// protoFault is the protocol fault of kind k with f's fields.
func (f faultFields) protoFault(k toxics.Kind) toxics.Fault {
	req := toxics.Requests{Share: float64(max(1, f.share)) / 1e6}
	replies, codes := toxics.RedisReplies(), toxics.PgErrorCodes()
	switch k {
	case toxics.KindRedisDelay:
		return toxics.RedisDelay{Delay: f.delay, Requests: req}
	case toxics.KindRedisError:
		return toxics.RedisError{Reply: replies[min(max(f.reply, 0), len(replies)-1)], Requests: req}
	case toxics.KindPgError:
		return toxics.PgError{Code: codes[min(max(f.code, 0), len(codes)-1)], Requests: req}
	default:
		return toxics.PgRefuse{Code: toxics.PgTooManyConnections, Requests: req}
	}
}

// protoFields is the inverse of protoFault for the fields it draws.
func protoFields(f toxics.Fault) faultFields {
	req, _ := toxics.RequestsOf(f)
	out := faultFields{share: ppm(req.Share)}
	switch f := f.(type) {
	case toxics.RedisDelay:
		out.delay = f.Delay
	case toxics.RedisError:
		out.reply = max(0, indexOf(toxics.RedisReplies(), f.Reply))
	case toxics.PgError:
		out.code = max(0, indexOf(toxics.PgErrorCodes(), f.Code))
	}
	return out
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// protoKnobs are the magnitudes of a protocol fault the minimizer moves
// toward mild: the share, then the reply or the code.
func protoKnobs(k toxics.Kind, v Values) []knob {
	lo, hi := ppm(v.Share[0]), ppm(v.Share[1])
	ks := []knob{fieldKnob("share", lo, hi, max(1, (hi-lo)/64),
		func(f faultFields) int64 { return f.share }, func(f *faultFields, x int64) { f.share = x })}
	switch k {
	case toxics.KindRedisError:
		ks = append(ks, fieldKnob("reply", 0, int64(len(toxics.RedisReplies())-1), 1,
			func(f faultFields) int64 { return int64(f.reply) }, func(f *faultFields, x int64) { f.reply = int(x) }))
	case toxics.KindPgError:
		ks = append(ks, fieldKnob("code", 0, int64(len(toxics.PgErrorCodes())-1), 1,
			func(f faultFields) int64 { return int64(f.code) }, func(f *faultFields, x int64) { f.code = int(x) }))
	}
	return ks
}
