package properties

import (
	"pgregory.net/rapid"

	"github.com/shakedown/shakedown/toxics"
)

// netFields are the drawn fields of the kinds of issue 15: a lossy link,
// connect-time hangs, connection limits and targeted faults. Each shrinks
// toward its milder end: rarer loss without bursts, a higher connection
// limit that holds rather than resets, a targeted fault on a smaller
// share of the connections open before it began, acting with its mildest
// inner kind.
type netFields struct {
	loss     float64 // loss probability per segment in the good state
	enterBad float64 // 0: no bursts
	accepted bool    // connect_hang: accepted rather than in the handshake
	max      int     // conn_limit
	hold     bool    // conn_limit: hold rather than reset
	inner    toxics.Kind
	share    float64
	opened   toxics.Opened
}

// targetedInner are the kinds a targeted fault is drawn with, mildest
// first.
var targetedInner = []toxics.Kind{toxics.KindLatency, toxics.KindLoss, toxics.KindBandwidth, toxics.KindBlackhole, toxics.KindReset}

func drawNetFields(t *rapid.T) netFields {
	return netFields{
		loss:     float64(rapid.Int64Range(1, 200).Draw(t, "loss_permille")) / 1000,
		enterBad: float64(rapid.Int64Range(0, 50).Draw(t, "enter_bad_permille")) / 1000,
		accepted: rapid.SampledFrom([]bool{true, false}).Draw(t, "hang_accepted"),
		max:      16 - rapid.IntRange(0, 16).Draw(t, "conn_limit_below_16"),
		hold:     rapid.SampledFrom([]bool{true, false}).Draw(t, "conn_limit_hold"),
		inner:    rapid.SampledFrom(targetedInner).Draw(t, "targeted_kind"),
		share:    float64(rapid.IntRange(1, 100).Draw(t, "targeted_percent")) / 100,
		opened:   rapid.SampledFrom([]toxics.Opened{toxics.Before, toxics.AnyTime, toxics.After}).Draw(t, "targeted_opened"),
	}
}

// netFault is the fault of kind k (one of issue 15's) with f's fields.
func (f faultFields) netFault(k toxics.Kind) toxics.Fault {
	n := f.net
	switch k {
	case toxics.KindLoss:
		l := toxics.Loss{Probability: n.loss, Direction: f.dir}
		if n.enterBad > 0 {
			l.EnterBad, l.BadProbability, l.LeaveBad = n.enterBad, 0.5, 0.25
		}
		return l
	case toxics.KindConnectHang:
		return toxics.ConnectHang{Accepted: n.accepted}
	case toxics.KindConnLimit:
		return toxics.ConnLimit{Max: n.max, Hold: n.hold}
	}
	inner := f.fault(n.inner).(toxics.LinkFault)
	return toxics.Targeted{Fault: inner, Conns: toxics.Conns{Share: n.share, Opened: n.opened}}
}

// severeNet is n at the harsh end of every range, for the minimizer's
// trial of a milder kind: a targeted fault on every connection (with n's
// inner kind, or a blackhole), the most loss, a limit of 0 that resets.
func severeNet(n netFields) netFields {
	inner := n.inner
	if inner == "" {
		inner = toxics.KindBlackhole
	}
	return netFields{loss: 0.2, enterBad: 0.05, max: 0, inner: inner, share: 1, opened: toxics.AnyTime}
}

// netFieldsOf is the inverse of faultFields.netFault.
func netFieldsOf(f toxics.Fault) faultFields {
	switch f := f.(type) {
	case toxics.Loss:
		return faultFields{dir: f.Direction, net: netFields{loss: f.Probability, enterBad: f.EnterBad}}
	case toxics.ConnectHang:
		return faultFields{net: netFields{accepted: f.Accepted}}
	case toxics.ConnLimit:
		return faultFields{net: netFields{max: f.Max, hold: f.Hold}}
	case toxics.Targeted:
		ff := fieldsOf(f.Fault)
		if _, ok := f.Fault.(toxics.Loss); !ok {
			ff.net = netFields{}
		}
		ff.net.inner, ff.net.share, ff.net.opened = f.Fault.Kind(), f.Conns.Share, f.Conns.Opened
		if ff.net.share == 0 {
			ff.net.share = 1
		}
		return ff
	}
	return faultFields{}
}

// netKnobs are the magnitudes the minimizer moves toward their mild end:
// a loss probability, a targeted fault's share, a connection limit.
func netKnobs(k toxics.Kind) []knob {
	switch k {
	case toxics.KindLoss:
		return []knob{fieldKnob("loss", 1, 200, 1,
			func(f faultFields) int64 { return int64(f.net.loss*1000 + 0.5) }, func(f *faultFields, x int64) { f.net.loss = float64(x) / 1000 })}
	case toxics.KindTargeted:
		return []knob{fieldKnob("share", 1, 100, 1,
			func(f faultFields) int64 { return int64(f.net.share*100 + 0.5) }, func(f *faultFields, x int64) { f.net.share = float64(x) / 100 })}
	case toxics.KindConnLimit:
		return []knob{fieldKnob("conn limit", 16, 0, 1,
			func(f faultFields) int64 { return int64(f.net.max) }, func(f *faultFields, x int64) { f.net.max = int(x) })}
	}
	return nil
}
