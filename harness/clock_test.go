package harness_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/harness"
	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// The clock kinds are simulation-only: a real Link refuses them, when a
// schedule is validated against it and when applied, with the reason.
func TestLinkRefusesClockFaults(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	l := harness.NewLink(t, "db", ln.Addr().String())
	for _, f := range []toxics.Fault{toxics.ClockSkew{Offset: time.Second}, toxics.ClockJump{By: -time.Second, Back: true}} {
		require.False(t, l.Supports(f.Kind()), "%v", f)
		s := sim.Schedule{Steps: []sim.Step{{Target: "db", For: time.Second, Fault: f}}}
		err := s.Validate([]sim.Target{l})
		require.ErrorContains(t, err, "simulation-only", "%v", f)
		_, err = l.Apply(context.Background(), f)
		require.Error(t, err, "%v", f)
	}
	require.Empty(t, l.Active())
}

// Every Node can say how starved of CPU its container is, so a real run
// records it (sim.Machine.Dependencies).
var (
	_ sim.CPUStaller  = (*harness.Node)(nil)
	_ sim.ConnCounter = (*harness.Node)(nil)
	_ sim.AnswerTimer = (*harness.Node)(nil)
)
