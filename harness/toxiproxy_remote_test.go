package harness

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	tpclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// Timing claims here are lower bounds (a 150 ms latency adds at least
// 150 ms), which load cannot break, or "no data within 300 ms" where the
// fault holds the data for good, which load cannot break either.

// remoteCase is one subtest: a proxy named after it on the shared server,
// in front of the shared echo server, and a RemoteProxy for it.
type remoteCase struct {
	api   string
	proxy *tpclient.Proxy
	rp    *RemoteProxy
}

func newRemoteCase(t *testing.T, api, echoAddr string) *remoteCase {
	t.Helper()
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	p := serverProxy(t, api, name, echoAddr)
	t.Cleanup(func() {
		// Runs after the RemoteProxy's own cleanup: whatever happened, the
		// case ends with no toxic left and the proxy enabled.
		if ts := serverToxics(t, api, name); len(ts) != 0 {
			t.Errorf("toxics left on the proxy: %+v", ts)
		}
		if !serverEnabled(t, api, name) {
			t.Errorf("the proxy was left disabled")
		}
	})
	return &remoteCase{api: api, proxy: p, rp: NewRemoteProxy(t, "dep", api, name)}
}

// requireClean checks through the API that the proxy has no toxic and
// is enabled.
func (rc *remoteCase) requireClean(t *testing.T) {
	t.Helper()
	require.Empty(t, serverToxics(t, rc.api, rc.proxy.Name), "toxics on the proxy")
	require.True(t, serverEnabled(t, rc.api, rc.proxy.Name), "the proxy is enabled")
}

// silent checks that nothing arrives on c for 300 ms, and clears the
// deadline again.
func silent(t *testing.T, c net.Conn) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(300*time.Millisecond)))
	n, err := c.Read(make([]byte, 64))
	require.Zero(t, n, "bytes arrived through the fault")
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(ioDeadline)))
}

// closed checks that c's peer closed it: a read returns EOF or a reset,
// and no data.
func closed(t *testing.T, c net.Conn) {
	t.Helper()
	n, err := c.Read(make([]byte, 64))
	require.Zero(t, n, "bytes arrived on a connection that should be closed")
	require.Error(t, err)
	require.NotErrorIs(t, err, os.ErrDeadlineExceeded, "the connection stayed open")
}

func TestRemoteProxy(t *testing.T) {
	api := startToxiproxyServer(t)
	echoAddr := serveTCP(t, echo)
	ctx := ctxFor(t, 5*time.Minute)

	t.Run("latency", func(t *testing.T) {
		rc := newRemoteCase(t, api, echoAddr)
		live := dial(t, rc.proxy.Listen)
		ping(t, live, 1)
		const delay = 150 * time.Millisecond
		revert, err := rc.rp.Apply(ctx, toxics.Latency{Delay: delay, Direction: toxics.Downstream})
		require.NoError(t, err)
		ts := serverToxics(t, api, rc.proxy.Name)
		require.Len(t, ts, 1)
		require.Equal(t, "latency", ts[0].Type)
		require.Equal(t, "downstream", ts[0].Stream)
		require.EqualValues(t, 150, ts[0].Attributes["latency"])
		require.EqualValues(t, 1, ts[0].Toxicity)
		require.GreaterOrEqual(t, ping(t, live, 2), delay, "a live connection")
		require.GreaterOrEqual(t, ping(t, dial(t, rc.proxy.Listen), 3), delay, "a new connection")
		require.NoError(t, revert(ctx))
		require.NoError(t, revert(ctx), "a second revert does nothing")
		rc.requireClean(t)
		ping(t, live, 4) // the live connection survived

		// Both ways, with jitter: two toxics, and a round trip pays both.
		revert, err = rc.rp.Apply(ctx, toxics.Latency{Delay: 100 * time.Millisecond, Jitter: 20 * time.Millisecond})
		require.NoError(t, err)
		ts = serverToxics(t, api, rc.proxy.Name)
		require.Len(t, ts, 2)
		streams := []string{ts[0].Stream, ts[1].Stream}
		require.ElementsMatch(t, []string{"upstream", "downstream"}, streams)
		require.EqualValues(t, 20, ts[0].Attributes["jitter"])
		require.GreaterOrEqual(t, ping(t, live, 5), 2*(100-20)*time.Millisecond)
		require.NoError(t, revert(ctx))
		rc.requireClean(t)
	})

	t.Run("bandwidth", func(t *testing.T) {
		rc := newRemoteCase(t, api, echoAddr)
		live := dial(t, rc.proxy.Listen)
		ping(t, live, 1)
		revert, err := rc.rp.Apply(ctx, toxics.Bandwidth{Rate: 0, Direction: toxics.Downstream})
		require.NoError(t, err)
		_, err = live.Write([]byte("held back"))
		require.NoError(t, err)
		silent(t, live)
		require.NoError(t, revert(ctx))
		got := make([]byte, len("held back"))
		_, err = io.ReadFull(live, got)
		require.NoError(t, err, "the revert delivers what was held")
		require.Equal(t, "held back", string(got))
		rc.requireClean(t)

		// 10 KB/s: 5,000 bytes take at least 0.4 s (Toxiproxy sends the
		// first 1,000 after 100 ms, the last after 500 ms).
		revert, err = rc.rp.Apply(ctx, toxics.Bandwidth{Rate: 10_000, Direction: toxics.Downstream})
		require.NoError(t, err)
		require.EqualValues(t, 10, serverToxics(t, api, rc.proxy.Name)[0].Attributes["rate"], "KB/s")
		payload := pattern(5000)
		start := time.Now()
		_, err = live.Write(payload)
		require.NoError(t, err)
		got = make([]byte, len(payload))
		_, err = io.ReadFull(live, got)
		require.NoError(t, err)
		require.GreaterOrEqual(t, time.Since(start), 400*time.Millisecond)
		require.Equal(t, payload, got)
		require.NoError(t, revert(ctx))
		rc.requireClean(t)
	})

	t.Run("slicer", func(t *testing.T) {
		rc := newRemoteCase(t, api, echoAddr)
		live := dial(t, rc.proxy.Listen)
		const delay = 30 * time.Millisecond
		revert, err := rc.rp.Apply(ctx, toxics.Slicer{AverageSize: 10, Delay: delay, Direction: toxics.Downstream})
		require.NoError(t, err)
		require.EqualValues(t, 30_000, serverToxics(t, api, rc.proxy.Name)[0].Attributes["delay"], "µs")
		payload := pattern(100)
		start := time.Now()
		_, err = live.Write(payload)
		require.NoError(t, err)
		got := make([]byte, len(payload))
		_, err = io.ReadFull(live, got)
		require.NoError(t, err)
		// At least ten slices of at most 10 bytes, each sent delay after
		// the one before.
		require.GreaterOrEqual(t, time.Since(start), 9*delay)
		require.Equal(t, payload, got, "sliced, not altered")
		require.NoError(t, revert(ctx))
		rc.requireClean(t)
	})

	t.Run("slow_close", func(t *testing.T) {
		rc := newRemoteCase(t, api, echoAddr)
		c := dial(t, rc.proxy.Listen)
		ping(t, c, 1)
		const delay = 300 * time.Millisecond
		revert, err := rc.rp.Apply(ctx, toxics.SlowClose{Delay: delay, Direction: toxics.Downstream})
		require.NoError(t, err)
		start := time.Now()
		require.NoError(t, c.CloseWrite()) // the echo server closes in turn
		_, err = io.ReadAll(c)
		require.NoError(t, err)
		require.GreaterOrEqual(t, time.Since(start), delay, "the close reached the client only after the delay")
		require.NoError(t, revert(ctx))
		rc.requireClean(t)
	})

	t.Run("data_limit", func(t *testing.T) {
		rc := newRemoteCase(t, api, echoAddr)
		c := dial(t, rc.proxy.Listen)
		ping(t, c, 1) // bytes before the fault do not count
		revert, err := rc.rp.Apply(ctx, toxics.DataLimit{Bytes: 10, Direction: toxics.Downstream})
		require.NoError(t, err)
		payload := pattern(100)
		_, err = c.Write(payload)
		require.NoError(t, err)
		var got bytes.Buffer
		_, err = io.Copy(&got, c) // EOF (nil) or a reset: either way it ends
		require.NotErrorIs(t, err, os.ErrDeadlineExceeded, "the connection stayed open")
		require.Equal(t, payload[:10], got.Bytes(), "exactly the limit, then the close")
		require.NoError(t, revert(ctx))
		rc.requireClean(t)
		ping(t, dial(t, rc.proxy.Listen), 2)
	})

	t.Run("blackhole", func(t *testing.T) {
		rc := newRemoteCase(t, api, echoAddr)
		live := dial(t, rc.proxy.Listen)
		ping(t, live, 1)
		revert, err := rc.rp.Apply(ctx, toxics.Blackhole{Direction: toxics.Upstream})
		require.NoError(t, err)
		ts := serverToxics(t, api, rc.proxy.Name)
		require.Len(t, ts, 1)
		require.Equal(t, "timeout", ts[0].Type)
		require.EqualValues(t, 0, ts[0].Attributes["timeout"])
		_, err = live.Write([]byte{2})
		require.NoError(t, err, "the connection stays open")
		silent(t, live)
		fresh := dial(t, rc.proxy.Listen)
		_, err = fresh.Write([]byte{3})
		require.NoError(t, err, "dials still succeed")
		silent(t, fresh)
		require.NoError(t, revert(ctx))
		rc.requireClean(t)
		// As the RemoteProxy's doc says: Toxiproxy closes the connections
		// that lived through the blackhole when its toxic is removed.
		closed(t, live)
		ping(t, dial(t, rc.proxy.Listen), 4)
	})

	t.Run("down", func(t *testing.T) {
		rc := newRemoteCase(t, api, echoAddr)
		live := dial(t, rc.proxy.Listen)
		ping(t, live, 1)
		revert, err := rc.rp.Apply(ctx, toxics.Down{})
		require.NoError(t, err)
		require.False(t, serverEnabled(t, api, rc.proxy.Name), "the proxy is disabled")
		closed(t, live)
		_, err = net.DialTimeout("tcp", rc.proxy.Listen, ioDeadline)
		require.Error(t, err, "dials are refused")
		require.Empty(t, serverToxics(t, api, rc.proxy.Name), "down adds no toxic")
		require.NoError(t, revert(ctx))
		rc.requireClean(t)
		ping(t, dial(t, rc.proxy.Listen), 2) // on the same address

		// A proxy someone else disabled stays disabled.
		require.NoError(t, rc.proxy.Disable())
		revert, err = rc.rp.Apply(ctx, toxics.Down{})
		require.NoError(t, err)
		require.NoError(t, revert(ctx))
		require.False(t, serverEnabled(t, api, rc.proxy.Name), "the revert enabled a proxy it had not disabled")
		require.NoError(t, rc.proxy.Enable())
	})

	t.Run("refused", func(t *testing.T) {
		rc := newRemoteCase(t, api, echoAddr)
		for _, c := range []struct {
			fault toxics.Fault
			kind  bool     // Supports is false for the kind
			want  []string // in the error, after the target and the fault
		}{
			{toxics.Reset{}, true, []string{"reset(): refused", "RST"}},
			{toxics.Timeout{After: time.Second}, true, []string{"timeout(1s): refused", "restarts its timer"}},
			{toxics.Corrupt{Probability: 0.5}, true, []string{"corrupt(p=0.5): refused", "alters bytes", "seed"}},
			{toxics.Crash{}, true, []string{"crash(): refused", "node fault"}},
			{toxics.Stop{}, true, []string{"stop(): refused", "node fault"}},
			{toxics.Pause{}, true, []string{"pause(): refused", "node fault"}},
			{toxics.Restart{}, true, []string{"restart(): refused", "node fault"}},
			{toxics.Latency{Delay: 1500 * time.Microsecond}, false, []string{"latency.delay = 1.5ms", "whole milliseconds"}},
			{toxics.Latency{Delay: 10 * time.Millisecond, Jitter: 1500 * time.Microsecond}, false, []string{"latency.jitter = 1.5ms", "whole milliseconds"}},
			{toxics.Bandwidth{Rate: 1500}, false, []string{"bandwidth.rate = 1500", "multiple of 1000"}},
			{toxics.Slicer{AverageSize: 10, Delay: 1500}, false, []string{"slicer.delay = 1.5µs", "whole microseconds"}},
			{toxics.SlowClose{Delay: 2500 * time.Microsecond}, false, []string{"slow_close.delay = 2.5ms", "whole milliseconds"}},
			{toxics.DataLimit{Bytes: 0}, false, []string{"data_limit.bytes = 0", "at least 1"}},
			{toxics.Latency{Delay: -time.Second}, false, []string{"latency.delay = -1s: must be positive"}},
			{nil, false, []string{"<nil>: toxics: fault is nil"}},
		} {
			prefix := `harness: remote proxy "dep" (Toxiproxy proxy "` + rc.proxy.Name + `" at ` + api + `): `
			err := rc.rp.ValidateFault(c.fault)
			require.Error(t, err, "%v", c.fault)
			require.True(t, strings.HasPrefix(err.Error(), prefix), "%q does not name the target", err)
			for _, w := range c.want {
				require.Contains(t, err.Error(), w)
			}
			if c.fault != nil {
				require.Equal(t, !c.kind, rc.rp.Supports(c.fault.Kind()), "Supports(%s)", c.fault.Kind())
			}
			if c.kind {
				require.ErrorIs(t, err, errRefused)
			} else if c.fault != nil {
				var fe *toxics.FieldError
				require.ErrorAs(t, err, &fe, "a value out of reach names its field")
			}
			revert, err := rc.rp.Apply(ctx, c.fault)
			require.Error(t, err)
			require.Nil(t, revert)
			require.Contains(t, err.Error(), c.want[0])
		}
		for _, f := range []toxics.Fault{
			toxics.Latency{Delay: time.Millisecond, Jitter: time.Millisecond},
			toxics.Bandwidth{Rate: 0}, toxics.Bandwidth{Rate: 64_000},
			toxics.Slicer{AverageSize: 1, Delay: time.Microsecond},
			toxics.SlowClose{Delay: time.Millisecond},
			toxics.DataLimit{Bytes: 1}, toxics.Blackhole{}, toxics.Down{},
		} {
			require.NoError(t, rc.rp.ValidateFault(f), "%v", f)
		}
		rc.requireClean(t)

		// sim refuses the schedule before anything starts, and says why.
		s := sim.Schedule{Steps: []sim.Step{
			{At: 0, For: time.Second, Target: "dep", Fault: toxics.Latency{Delay: 50 * time.Millisecond}},
			{At: time.Second, For: time.Second, Target: "dep", Fault: toxics.Reset{}},
			{At: 2 * time.Second, For: time.Second, Target: "dep", Fault: toxics.Bandwidth{Rate: 1024}},
		}}
		h, err := sim.Run(ctx, sim.Plan{World: sim.World{Targets: []sim.Target{rc.rp}}, Schedule: s})
		require.Nil(t, h)
		require.Error(t, err)
		require.Contains(t, err.Error(), `step 1 (+1s for 1s dep reset()): target "dep" does not support the link fault reset: harness: remote proxy "dep"`)
		require.Contains(t, err.Error(), "RST")
		require.Contains(t, err.Error(), `step 2 (+2s for 1s dep bandwidth(1024B/s)): target "dep" cannot apply bandwidth(1024B/s): harness: remote proxy "dep"`)
		require.Contains(t, err.Error(), "multiple of 1000")
		require.NotContains(t, err.Error(), "step 0")
		rc.requireClean(t)
	})

	t.Run("several faults", func(t *testing.T) {
		rc := newRemoteCase(t, api, echoAddr)
		_, err := rc.rp.Apply(ctx, toxics.Latency{Delay: time.Millisecond})
		require.NoError(t, err)
		revertHole, err := rc.rp.Apply(ctx, toxics.Blackhole{Direction: toxics.Downstream})
		require.NoError(t, err)
		_, err = rc.rp.Apply(ctx, toxics.Latency{Delay: 2 * time.Millisecond, Direction: toxics.Downstream})
		require.NoError(t, err, "a second latency on a stream that has one")
		_, err = rc.rp.Apply(ctx, toxics.Down{})
		require.NoError(t, err)
		_, err = rc.rp.Apply(ctx, toxics.Down{})
		require.NoError(t, err, "a second down while one holds")
		require.Len(t, serverToxics(t, api, rc.proxy.Name), 4)

		// Someone else's toxic is not ours to remove.
		_, err = rc.proxy.AddToxic("theirs", "latency", "upstream", 1, tpclient.Attributes{"latency": 1})
		require.NoError(t, err)

		require.NoError(t, revertHole(ctx))
		ts := serverToxics(t, api, rc.proxy.Name)
		require.Len(t, ts, 4)
		for _, x := range ts {
			require.NotEqual(t, "timeout", x.Type, "the blackhole's toxic is gone, and only it")
		}
		require.NoError(t, rc.rp.Clear(ctx))
		ts = serverToxics(t, api, rc.proxy.Name)
		require.Len(t, ts, 1)
		require.Equal(t, "theirs", ts[0].Name)
		require.True(t, serverEnabled(t, api, rc.proxy.Name))
		require.NoError(t, rc.proxy.RemoveToxic("theirs"))
	})

	t.Run("context and lost toxics", func(t *testing.T) {
		rc := newRemoteCase(t, api, echoAddr)
		done, cancel := context.WithCancel(ctx)
		cancel()
		_, err := rc.rp.Apply(done, toxics.Latency{Delay: time.Millisecond})
		require.ErrorIs(t, err, context.Canceled)
		rc.requireClean(t)

		revert, err := rc.rp.Apply(ctx, toxics.Latency{Delay: time.Millisecond})
		require.NoError(t, err)
		require.ErrorIs(t, revert(done), context.Canceled, "a revert that cannot start says so")
		require.Len(t, serverToxics(t, api, rc.proxy.Name), 2, "and leaves the fault in place")
		// An operator removed the toxics meanwhile: the revert is still done.
		c := tpclient.NewClient(api)
		for _, x := range serverToxics(t, api, rc.proxy.Name) {
			require.NoError(t, c.RemoveToxic(&tpclient.ToxicOptions{ProxyName: rc.proxy.Name, ToxicName: x.Name}))
		}
		require.NoError(t, revert(ctx))
		rc.requireClean(t)
	})

	t.Run("cleanup reverts", func(t *testing.T) {
		name := "cleanup"
		serverProxy(t, api, name, echoAddr)
		ft := &fakeTB{TB: t}
		rp := NewRemoteProxy(ft, "dep", api, name)
		_, err := rp.Apply(ctx, toxics.Latency{Delay: time.Millisecond})
		require.NoError(t, err)
		_, err = rp.Apply(ctx, toxics.Down{})
		require.NoError(t, err)
		ft.teardown()
		require.Empty(t, serverToxics(t, api, name))
		require.True(t, serverEnabled(t, api, name))
	})

	t.Run("open", func(t *testing.T) {
		serverProxy(t, api, "present", echoAddr)
		_, err := OpenRemoteProxy("db", api, "absent")
		require.ErrorContains(t, err, `harness: remote proxy "db": the Toxiproxy server at `+api+` has no proxy "absent" (it has `)
		require.ErrorContains(t, err, "present")

		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		nobody := ln.Addr().String()
		require.NoError(t, ln.Close())
		_, err = OpenRemoteProxy("db", nobody, "present")
		require.ErrorContains(t, err, `harness: remote proxy "db": read proxy "present" from the Toxiproxy server at `+nobody)

		for _, c := range []struct{ name, api, proxy, want string }{
			{"", api, "present", "the target name is empty"},
			{"db", "", "present", "the Toxiproxy API address is empty"},
			{"db", api, "", "the Toxiproxy proxy name is empty"},
			{"db", api, "a/b", `proxy name "a/b" has characters`},
		} {
			_, err := OpenRemoteProxy(c.name, c.api, c.proxy)
			require.ErrorContains(t, err, c.want)
		}

		ft := &fakeTB{TB: t}
		stop := catch(func() { NewRemoteProxy(ft, "db", api, "absent") })
		require.NotNil(t, stop)
		require.Equal(t, "fatal", stop.kind)
		require.Contains(t, stop.msg, `no proxy "absent"`)
		ft.teardown()

		rp, err := OpenRemoteProxy("db", api, "present")
		require.NoError(t, err)
		require.Equal(t, "db", rp.Name())
		require.Equal(t, serverListen(t, api, "present"), rp.Addr())
	})

	t.Run("sim run", func(t *testing.T) {
		rc := newRemoteCase(t, api, echoAddr)
		testRemoteSimRun(t, ctx, rc)
	})
}

// serverListen reads the proxy's listen address from the server.
func serverListen(t *testing.T, api, proxy string) string {
	t.Helper()
	p, err := tpclient.NewClient(api).Proxy(proxy)
	require.NoError(t, err)
	return p.Listen
}

// testRemoteSimRun runs a short schedule with sim.Run against the remote
// proxy while a workload sends one byte per connection through it.
func testRemoteSimRun(t *testing.T, ctx context.Context, rc *remoteCase) {
	const delay = 100 * time.Millisecond
	s := sim.Schedule{Steps: []sim.Step{
		{At: 0, For: time.Second, Target: "dep", Fault: toxics.Latency{Delay: delay, Direction: toxics.Downstream}},
		{At: 1500 * time.Millisecond, For: time.Second, Target: "dep", Fault: toxics.Down{}},
	}}
	addr := rc.proxy.Listen
	w := sim.Workload{
		Driver:  sim.ClosedLoop{Think: 10 * time.Millisecond},
		Timeout: 5 * time.Second,
		Kinds: []sim.OpKind{{Name: "echo", Do: func(ctx context.Context, _ string) (string, error) {
			d := net.Dialer{}
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return "", err
			}
			defer c.Close()
			if dl, ok := ctx.Deadline(); ok {
				_ = c.SetDeadline(dl)
			}
			if _, err := c.Write([]byte{7}); err != nil {
				return "", err
			}
			b := make([]byte, 1)
			if _, err := io.ReadFull(c, b); err != nil {
				return "", err
			}
			return string(b), nil
		}}},
	}
	h, err := sim.Run(ctx, sim.Plan{
		World:    sim.World{Targets: []sim.Target{rc.rp}, Workload: w},
		Settings: sim.Settings{Cooldown: 500 * time.Millisecond},
		Schedule: s,
	})
	require.NoError(t, err)
	require.Len(t, h.Faults, 2)
	for _, ev := range h.Faults {
		require.True(t, ev.Applied(), "%+v", ev)
		require.Empty(t, ev.RevertErr, "%+v", ev)
		require.Greater(t, ev.End, ev.Start, "%+v reverted", ev)
	}
	lat, down := h.Faults[0], h.Faults[1]
	var slow, failed, after int
	for _, op := range h.Ops {
		switch {
		case op.Start >= lat.Start && op.End <= lat.End && op.Latency() >= delay:
			slow++
		case op.Start >= down.Start && op.End <= down.End && op.Err != "":
			failed++
		case op.Start >= down.End:
			after++
			require.Empty(t, op.Err, "an op after the proxy was enabled again: %+v", op)
		}
	}
	require.Positive(t, slow, "no op paid the latency")
	require.Positive(t, failed, "no op failed while the proxy was down")
	require.Positive(t, after, "no op ran after the schedule")
	rc.requireClean(t)
}
