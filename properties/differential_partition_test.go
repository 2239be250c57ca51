package properties_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/harness"
	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// The partition differential: one schedule of partitions between three
// servers a, b and c, each of which calls the others by name, runs against
// real containers on Docker networks (harness's Env.Network, the
// testserver image: GET /dial?addr=b:7000 on a opens a TCP connection from
// a to b) and against sim's network (Partitions, and DialFrom for the
// calls between servers). The schedule is walked event by event, on both
// sides the same way: each fault applied or reverted in the schedule's
// order, then every server asked to dial every other. After each event the
// outcomes must be the same on both sides: "ok", or "cut" (the name of a
// server across the cut does not resolve: a DNS not-found error). Anything
// else is an outcome of its own, and differs.

// partServers are the servers the partitions cut apart.
var partServers = []string{"a", "b", "c"}

// partSchedule cuts a from b and c, heals; cuts c from a and b, heals;
// then cuts a and b apart with c in no group (c reaches both).
var partSchedule = sim.Schedule{Steps: []sim.Step{
	{At: 0, For: time.Second, Target: sim.NetworkTarget, Fault: toxics.Partition{Groups: [][]string{{"a"}, {"b", "c"}}}},
	{At: 2 * time.Second, For: time.Second, Target: sim.NetworkTarget, Fault: toxics.Partition{Groups: [][]string{{"a", "b"}, {"c"}}}},
	{At: 4 * time.Second, For: time.Second, Target: sim.NetworkTarget, Fault: toxics.Partition{Groups: [][]string{{"a"}, {"b"}}}},
}}

// partEvent is one edge of the schedule: step i applied, or reverted.
type partEvent struct {
	at     time.Duration
	step   int
	revert bool
}

func (e partEvent) String() string {
	if e.revert {
		return fmt.Sprintf("%v: step %d healed", e.at, e.step)
	}
	return fmt.Sprintf("%v: step %d applied", e.at, e.step)
}

// partEvents are s's edges in time order (a revert before an apply at the
// same instant, as one partition holds at a time).
func partEvents(s sim.Schedule) []partEvent {
	var evs []partEvent
	for i, st := range s.Steps {
		evs = append(evs, partEvent{st.At, i, false}, partEvent{st.End(), i, true})
	}
	slices.SortStableFunc(evs, func(x, y partEvent) int {
		if c := cmp.Compare(x.at, y.at); c != 0 {
			return c
		}
		if x.revert != y.revert {
			if x.revert {
				return -1
			}
			return 1
		}
		return 0
	})
	return evs
}

// partWalk applies s's events in order on target, and after each (and
// before the first) records dial(from, to) for every ordered pair of
// servers: one line per phase, "a>b ok a>c cut ...".
func partWalk(ctx context.Context, t *testing.T, s sim.Schedule, target sim.Target, dial func(ctx context.Context, from, to string) string) []string {
	t.Helper()
	phase := func(name string) string {
		var outs []string
		for _, from := range partServers {
			for _, to := range partServers {
				if from != to {
					outs = append(outs, from+">"+to+" "+dial(ctx, from, to))
				}
			}
		}
		return name + ": " + strings.Join(outs, " ")
	}
	phases := []string{phase("before")}
	reverts := map[int]func(context.Context) error{}
	for _, ev := range partEvents(s) {
		if ev.revert {
			require.NoError(t, reverts[ev.step](ctx), "%s", ev)
		} else {
			revert, err := target.Apply(ctx, s.Steps[ev.step].Fault)
			require.NoError(t, err, "%s", ev)
			reverts[ev.step] = revert
		}
		phases = append(phases, phase(ev.String()))
	}
	return phases
}

// partOutcome names the outcome of a dial that ended with err: "ok",
// "cut" for a name that does not resolve, the error itself otherwise.
func partOutcome(err error) string {
	var dns *net.DNSError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &dns) && dns.IsNotFound:
		return "cut"
	}
	return "error(" + err.Error() + ")"
}

func TestDifferentialPartition(t *testing.T) {
	// The simulated side, in a bubble: three echo servers, dials between
	// them through DialFrom.
	var simulated []string
	synctest.Test(t, func(t *testing.T) {
		n := sim.NewNetwork(1)
		defer func() { require.NoError(t, n.Close()) }()
		for _, name := range partServers {
			_, err := n.FakeTCP(name, func(c net.Conn) { io.Copy(c, c) })
			require.NoError(t, err)
		}
		simulated = partWalk(t.Context(), t, partSchedule, n.Partitions(), func(ctx context.Context, from, to string) string {
			c, err := n.DialFrom(from)(ctx, "tcp", to+":7000")
			if err == nil {
				c.Close()
			}
			return partOutcome(err)
		})
	})

	// The real side: three testserver containers on the Env's Docker
	// network (without Docker the test is skipped with the reason, or
	// fails under SHAKEDOWN_REQUIRE_DOCKER=1).
	e := harness.New(t)
	image := cmp.Or(os.Getenv("SHAKEDOWN_TESTSERVER_IMAGE"), "shakedown.local/testserver:latest")
	ctrs := map[string]*harness.Container{}
	for _, name := range partServers {
		ctrs[name] = e.Container(name, harness.ContainerSpec{Image: image, Port: "8080", Ready: partHealthz})
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	nw := e.Network()
	require.Equal(t, partServers, nw.Members())
	got := partWalk(ctx, t, partSchedule, nw, func(ctx context.Context, from, to string) string {
		return partRealDial(ctx, t, ctrs[from].Addr(), to+":7000")
	})

	require.Equal(t, simulated, got, "the same partitions, simulated (expected) and real (actual)")
	// The schedule cuts something: a walk where every dial works would
	// match a network that ignores partitions.
	require.Contains(t, strings.Join(got, "\n"), "cut")
	t.Logf("outcomes, the same on both sides:\n%s", strings.Join(got, "\n"))
}

// partHealthz is the testserver's readiness: GET /healthz answers ok.
func partHealthz(ctx context.Context, addr string) error {
	code, _, err := partGet(ctx, "http://"+addr+"/healthz")
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("healthz: status %d", code)
	}
	return err
}

// partRealDial asks the testserver at addr (through its Link) to open a
// TCP connection to target, and names the outcome as partOutcome does: the
// server answers 200, or 502 with the dial's error.
func partRealDial(ctx context.Context, t *testing.T, addr, target string) string {
	t.Helper()
	code, body, err := partGet(ctx, "http://"+addr+"/dial?addr="+target)
	require.NoError(t, err, "the test reaches every server through its Link, partition or not")
	switch {
	case code == http.StatusOK:
		return "ok"
	case code == http.StatusBadGateway && strings.Contains(body, "no such host"):
		return "cut"
	}
	return fmt.Sprintf("error(%d %s)", code, strings.TrimSpace(body))
}

func partGet(ctx context.Context, url string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}
