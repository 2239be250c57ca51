package sim

import (
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDialsCountsDialsAndCloses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	accepted := make(chan net.Conn, 8)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		close(accepted)
		for c := range accepted {
			c.Close()
		}
	})

	var d Dials
	dial := d.DialContext(nil)
	a, err := dial(t.Context(), "tcp", ln.Addr().String())
	require.NoError(t, err)
	b, err := dial(t.Context(), "tcp", ln.Addr().String())
	require.NoError(t, err)
	require.NoError(t, a.Close())
	_ = a.Close() // a second close is not counted again

	// A dial to a closed port fails and is counted as such.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := closed.Addr().String()
	require.NoError(t, closed.Close())
	_, err = dial(t.Context(), "tcp", addr)
	require.Error(t, err)

	dials, failed, open := d.Count()
	require.Equal(t, [3]int64{3, 1, 1}, [3]int64{dials, failed, open})
	vals, err := d.Sampler("api").Sample(t.Context())
	require.NoError(t, err)
	require.Equal(t, map[string]float64{"dials": 3, "dial_errors": 1, "open": 1}, vals)
	require.NoError(t, b.Close())
}

func TestCounter(t *testing.T) {
	var n int64 = 41
	vals, err := Counter("calls", func() int64 { n++; return n }).Sample(t.Context())
	require.NoError(t, err)
	require.Equal(t, map[string]float64{"": 42}, vals)
	_, err = Counter("calls", nil).Sample(t.Context())
	require.ErrorContains(t, err, "count is nil")
}
