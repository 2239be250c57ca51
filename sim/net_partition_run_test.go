package sim_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// TestRunPartition: a Run applies a partition to the network target and
// reverts it: an API that calls its database fails while the two are cut
// apart, and serves before and after.
func TestRunPartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := sim.NewNetwork(7)
		t.Cleanup(func() { require.NoError(t, n.Close()) })
		_, err := n.FakeTCP("db", func(c net.Conn) { io.Copy(c, c) })
		require.NoError(t, err)
		dbDial := n.DialFrom("api")
		api, err := n.FakeHTTP("api", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := dbDial(r.Context(), "tcp", "db:5432")
			if err == nil {
				defer c.Close()
				c.SetDeadline(time.Now().Add(100 * time.Millisecond))
				if _, err = c.Write([]byte("q")); err == nil {
					_, err = io.ReadFull(c, make([]byte, 1))
				}
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
			}
		}))
		require.NoError(t, err)
		client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DialContext: n.Dial}}
		defer client.CloseIdleConnections()
		get := func(ctx context.Context, _ string) (string, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, api.URL(), nil)
			if err != nil {
				return "", err
			}
			resp, err := client.Do(req)
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return "", &net.OpError{Op: "get", Err: io.ErrUnexpectedEOF}
			}
			return "", nil
		}
		sched, err := sim.ParseSchedule([]byte(`{"steps":[{"at":"1s","for":"2s","target":"network","fault":{"kind":"partition","groups":[["api"],["db"]]}}]}`))
		require.NoError(t, err)
		h, err := sim.Run(t.Context(), sim.Plan{
			World: sim.World{
				Targets:  append(n.Targets(), n.Partitions()),
				Workload: sim.Workload{Driver: sim.OpenLoop{Rate: 20}, Kinds: []sim.OpKind{{Name: "get", Do: get}}},
			},
			Schedule: sched,
		})
		require.NoError(t, err)
		require.Len(t, h.Faults, 1)
		require.True(t, h.Faults[0].Applied(), "%+v", h.Faults[0])
		require.Equal(t, toxics.KindPartition, h.Faults[0].Fault.Fault.Kind())
		from, to := h.Faults[0].Start, h.Faults[0].End
		var calm, cut int
		for _, op := range h.Ops {
			switch {
			case op.Intended > from && op.End < to:
				cut++
				require.NotEqual(t, sim.OK, op.Outcome, "op %d at %v, inside the partition [%v, %v], reached the db", op.ID, op.Intended, from, to)
			case op.End < from || op.Intended > to:
				calm++
				require.Equal(t, sim.OK, op.Outcome, "op %d at %v, outside the partition [%v, %v]: %s", op.ID, op.Intended, from, to, op.Err)
			}
		}
		require.Greater(t, cut, 30, "ops inside the partition")
		require.Greater(t, calm, 30, "ops outside it")
	})
}
