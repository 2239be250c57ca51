package sim

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/toxics"
)

var detSchedules = flag.Int("det.schedules", 100, "schedules TestDeterminism runs twice each")

// detSchedule draws a schedule of one to three faults on "api" from seed:
// every link and node fault kind, with jitter, corruption and slicer
// sizes that draw from the network's seed.
func detSchedule(seed uint64) Schedule {
	r := rand.New(rand.NewPCG(seed, 0x64657465)) // "dete"
	ms := func(lo, hi int) time.Duration { return time.Duration(lo+r.IntN(hi-lo+1)) * time.Millisecond }
	faults := []func() toxics.Fault{
		func() toxics.Fault { return toxics.Latency{Delay: ms(20, 80), Jitter: ms(0, 20)} },
		func() toxics.Fault {
			return toxics.Latency{Delay: ms(10, 40), Jitter: ms(1, 10), Direction: toxics.Downstream}
		},
		func() toxics.Fault { return toxics.Bandwidth{Rate: int64(r.IntN(3) * 2000)} },
		func() toxics.Fault {
			return toxics.Slicer{AverageSize: 2 + r.IntN(8), SizeVariation: r.IntN(2), Delay: ms(1, 5)}
		},
		func() toxics.Fault { return toxics.SlowClose{Delay: ms(1, 50)} },
		func() toxics.Fault { return toxics.Corrupt{Probability: 0.01 + r.Float64()/4} },
		func() toxics.Fault { return toxics.DataLimit{Bytes: int64(r.IntN(400))} },
		func() toxics.Fault { return toxics.Timeout{After: ms(0, 100)} },
		func() toxics.Fault { return toxics.Blackhole{} },
		func() toxics.Fault { return toxics.Reset{} },
		func() toxics.Fault { return toxics.Down{} },
		func() toxics.Fault { return toxics.Pause{} },
		func() toxics.Fault { return toxics.Crash{} },
		func() toxics.Fault { return toxics.Restart{} },
		func() toxics.Fault {
			return toxics.Loss{Probability: 0.05 + r.Float64()/5, EnterBad: 0.1, BadProbability: 0.5, LeaveBad: 0.5}
		},
		func() toxics.Fault {
			return toxics.Targeted{Fault: toxics.Blackhole{}, Conns: toxics.Conns{Share: 0.5, Opened: toxics.Opened(r.IntN(3))}}
		},
		func() toxics.Fault { return toxics.ConnLimit{Max: r.IntN(3), Hold: r.IntN(2) == 0} },
		func() toxics.Fault { return toxics.ConnectHang{Accepted: r.IntN(2) == 0} },
	}
	var s Schedule
	at := time.Duration(0)
	for range 1 + r.IntN(3) {
		at += ms(0, 150)
		f := faults[r.IntN(len(faults))]()
		st := Step{At: at, For: ms(50, 300), Target: "api", Fault: f}
		if f.Kind() == toxics.KindRestart {
			st.For = 0
		}
		if f.Kind().IsNode() {
			// One node fault at a time: keep it clear of the others.
			for _, o := range s.Steps {
				if o.Fault.Kind().IsNode() && o.End() >= at {
					st.Fault = toxics.Latency{Delay: ms(5, 30), Jitter: ms(1, 5)}
				}
			}
		}
		s.Steps = append(s.Steps, st)
	}
	if s.Validate([]Target{&stubTarget{name: "api", nodes: true}}) != nil {
		// Two faults that cannot hold at once: one after the other.
		at = 0
		for i := range s.Steps {
			s.Steps[i].At = at
			at = s.Steps[i].End() + time.Millisecond
		}
	}
	return s
}

// detRun runs s with seed in a bubble of its own: an HTTP service whose
// answers count the requests it served (so the order in which requests
// reach it shows in every output), a client with a pool of keep-alive
// connections, and a concurrent workload (four workers, or an open loop
// with many ops in flight).
func detRun(t *testing.T, s Schedule, seed int64, open bool) *History {
	var h *History
	synctest.Test(t, func(t *testing.T) {
		n := NewNetwork(seed)
		t.Cleanup(func() { n.Close() })
		var served atomic.Int64
		api, err := n.FakeHTTP("api", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s #%d %s", r.URL.Path, served.Add(1), strings.Repeat("x", 64))
		}))
		require.NoError(t, err)
		tr := &http.Transport{DialContext: n.Dial, MaxIdleConnsPerHost: 2}
		t.Cleanup(tr.CloseIdleConnections)
		client := &http.Client{Transport: tr}
		do := func(ctx context.Context, in string) (string, error) {
			req, err := http.NewRequestWithContext(ctx, "GET", api.URL()+"/"+in, nil)
			if err != nil {
				return "", err
			}
			resp, err := client.Do(req)
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			return string(b), err
		}
		var driver Driver = ClosedLoop{Workers: 4, Think: 5 * time.Millisecond}
		if open {
			driver = OpenLoop{Rate: 400, MaxInFlight: 64}
		}
		input := func(r *rand.Rand) string { return fmt.Sprint(r.IntN(1000)) }
		h, err = Run(t.Context(), Plan{
			World: World{
				Targets: n.Targets(),
				Workload: Workload{Driver: driver, Timeout: 100 * time.Millisecond, Kinds: []OpKind{
					{Name: "get", Weight: 3, Input: input, Do: do},
					{Name: "put", Input: input, Do: do},
				}},
			},
			Settings: Settings{Cooldown: 200 * time.Millisecond, Drain: time.Second},
			Schedule: s,
			Seed:     seed,
		})
		require.NoError(t, err)
	})
	return h
}

// TestDeterminism runs each of 100 schedules twice with the same seed and
// a concurrent workload, and wants the same history both times, op for
// op.
func TestDeterminism(t *testing.T) {
	if testing.Short() {
		*detSchedules = min(*detSchedules, 20)
	}
	same := 0
	var first []string
	for i := range *detSchedules {
		s := detSchedule(uint64(i))
		if testing.Verbose() {
			t.Logf("schedule %d: %s", i, s)
		}
		seed := int64(1000 + i)
		open := i%2 == 1
		a, b := detRun(t, s, seed, open), detRun(t, s, seed, open)
		require.NotEmpty(t, a.Ops)
		d := Diff(a, b)
		if d == "" {
			same++
			continue
		}
		if len(first) < 3 {
			first = append(first, fmt.Sprintf("schedule %d (seed %d, open loop %v):\n%s\nfirst difference: %s", i, seed, open, s, d))
		}
	}
	t.Logf("%d of %d schedules gave the same history twice", same, *detSchedules)
	if same != *detSchedules {
		t.Errorf("%d of %d schedules gave different histories when run twice; the first:\n%s",
			*detSchedules-same, *detSchedules, strings.Join(first, "\n\n"))
	}
}
