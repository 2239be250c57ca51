package properties

import (
	"time"

	"pgregory.net/rapid"

	"github.com/shakedown/shakedown/toxics"
)

// hasClock reports whether b names a clock kind for some target (only
// simulated endpoints take them).
func (b Bounds) hasClock() bool { return b.names(toxics.Kind.IsClock) }

// clockFields are the fields of the clock faults. Each shrinks toward its
// milder end: a smaller offset, ahead rather than behind, a jump that
// steps back at its revert.
type clockFields struct {
	offset time.Duration // magnitude, in Values.ClockOffset
	behind bool
	stays  bool // clock_jump: the step stays after the revert
}

// drawClock draws the clock fields; only bounds that name a clock kind
// draw them, so other bounds draw what they drew before.
func drawClock(t *rapid.T, v Values) clockFields {
	return clockFields{
		offset: drawDur(t, "clock_offset", v.ClockOffset, false),
		behind: rapid.SampledFrom([]bool{false, true}).Draw(t, "clock_behind"),
		stays:  rapid.SampledFrom([]bool{false, true}).Draw(t, "clock_jump_stays"),
	}
}

// clockFault is the clock fault of kind k with f's fields.
func (f faultFields) clockFault(k toxics.Kind) toxics.Fault {
	c := f.clock
	off := max(c.offset, time.Millisecond)
	if c.behind {
		off = -off
	}
	if k == toxics.KindClockJump {
		return toxics.ClockJump{By: off, Back: !c.stays}
	}
	return toxics.ClockSkew{Offset: off}
}

// clockFieldsOf is the inverse of faultFields.clockFault.
func clockFieldsOf(f toxics.Fault) faultFields {
	off, _ := toxics.ClockOffset(f)
	c := clockFields{offset: off, behind: off < 0}
	if off < 0 {
		c.offset = -off
	}
	if j, ok := f.(toxics.ClockJump); ok {
		c.stays = !j.Back
	}
	return faultFields{clock: c}
}
