package properties_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/harness"
	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

// The DNS differential test: the same schedule of DNS faults, on
// harness's real name server (Go's resolver over UDP to 127.0.0.1) and on
// sim's (Go's resolver over an in-memory connection, in virtual time);
// in every stretch of the schedule the same probes must end the same way,
// as Go reports them. A probe's deadline (1 s) is far from every delay the
// schedules hold (at most 200 ms, or 3 s), so no outcome hangs on timing.

const dnsProbeTimeout = time.Second

// dnsProbes runs the probes of one stretch: a GET of the api by name, a
// lookup of a name no dependency has, and one of the api itself.
func dnsProbes(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), r *net.Resolver, apiAddr string) []string {
	client := &http.Client{Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}, Timeout: 10 * time.Second}
	var out []string
	resp, err := client.Get("http://" + apiAddr + "/")
	if err == nil {
		body, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		err = rerr
		if err == nil {
			err = errors.New("body " + string(body)) // the outcome names the body
		}
	}
	out = append(out, "GET api: "+dnsOutcomeOf(err))
	for _, name := range []string{"nobody.shakedown.test", "api.shakedown.test"} {
		ctx, cancel := context.WithTimeout(ctx, dnsProbeTimeout)
		addrs, err := r.LookupHost(ctx, name)
		cancel()
		if err == nil {
			err = fmt.Errorf("addrs %v", addrs)
		}
		out = append(out, "lookup "+name+": "+dnsOutcomeOf(err))
	}
	return out
}

func dnsOutcomeOf(err error) string {
	var de *net.DNSError
	if errors.As(err, &de) {
		return fmt.Sprintf("dns error (not found %v, timeout %v, temporary %v)", de.IsNotFound, de.IsTimeout, de.IsTemporary)
	}
	return err.Error()
}

// stretches returns the schedule's boundaries: every offset where a step
// starts or ends, sorted, each with the steps that hold from it on.
func stretches(s sim.Schedule) (starts []time.Duration, holding [][]sim.Step) {
	for _, st := range s.Steps {
		starts = append(starts, st.At, st.End())
	}
	slices.Sort(starts)
	starts = slices.Compact(starts)
	for _, at := range starts {
		var h []sim.Step
		for _, st := range s.Steps {
			if st.At <= at && at < st.End() {
				h = append(h, st)
			}
		}
		holding = append(holding, h)
	}
	return starts, holding
}

// runDNSSchedule applies each stretch's faults to target, probes, and
// reverts them: the outcomes of every stretch, in order.
func runDNSSchedule(t *testing.T, ctx context.Context, s sim.Schedule, target sim.Target, probe func() []string) []string {
	var out []string
	_, holding := stretches(s)
	for i, h := range holding {
		var reverts []func(context.Context) error
		var names []string
		for _, st := range h {
			revert, err := target.Apply(ctx, st.Fault)
			require.NoError(t, err)
			reverts = append(reverts, revert)
			names = append(names, st.Fault.String())
		}
		for _, p := range probe() {
			out = append(out, fmt.Sprintf("stretch %d %v: %s", i, names, p))
		}
		for _, r := range reverts {
			require.NoError(t, r(ctx))
		}
	}
	return out
}

func dnsSchedules(t *testing.T) []sim.Schedule {
	hand := sim.Schedule{Steps: []sim.Step{
		{At: 0, For: time.Second, Target: sim.DNSTarget, Fault: toxics.DNSDelay{Delay: 100 * time.Millisecond}},
		{At: 500 * time.Millisecond, For: time.Second, Target: sim.DNSTarget, Fault: toxics.DNSServfail{}},
		{At: time.Second, For: time.Second, Target: sim.DNSTarget, Fault: toxics.DNSNXDomain{Hosts: "nobody"}},
		{At: 2 * time.Second, For: time.Second, Target: sim.DNSTarget, Fault: toxics.DNSDrop{Hosts: "api"}},
		{At: 2500 * time.Millisecond, For: time.Second, Target: sim.DNSTarget, Fault: toxics.DNSNXDomain{}},
		{At: 4 * time.Second, For: time.Second, Target: sim.DNSTarget, Fault: toxics.DNSDelay{Delay: 3 * time.Second}},
	}}
	n := sim.NewNetwork(1)
	t.Cleanup(func() { n.Close() })
	g, err := properties.Schedules(properties.Bounds{Targets: properties.Aim([]sim.Target{n.DNS()}), MaxSteps: 4,
		Values: properties.Values{Delay: properties.DurationRange{Min: 50 * time.Millisecond, Max: 200 * time.Millisecond}}})
	require.NoError(t, err)
	out := []sim.Schedule{hand}
	for seed := range 3 {
		out = append(out, g.Example(seed))
	}
	return out
}

func TestDifferentialDNS(t *testing.T) {
	schedules := dnsSchedules(t)
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })

	var simOut [][]string
	synctest.Test(t, func(t *testing.T) {
		n := sim.NewNetwork(1)
		t.Cleanup(func() { n.Close() })
		_, err := n.FakeHTTP("api", hello)
		require.NoError(t, err)
		d := n.DNS()
		dial := func(ctx context.Context, network, address string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, dnsProbeTimeout) // as net.Dialer.Timeout
			defer cancel()
			return n.Dial(ctx, network, address)
		}
		for _, s := range schedules {
			simOut = append(simOut, runDNSSchedule(t, t.Context(), s, d, func() []string {
				return dnsProbes(t.Context(), dial, d.Resolver(), "api.shakedown.test:80")
			}))
		}
	})

	e := harness.New(t, harness.WithSeed(1))
	srv := httptest.NewServer(hello)
	t.Cleanup(srv.Close)
	e.Address("api", srv.Listener.Addr().String())
	d := e.DNS()
	addr, err := d.Address("api")
	require.NoError(t, err)
	dialer := &net.Dialer{Resolver: d.Resolver(), Timeout: dnsProbeTimeout}
	for i, s := range schedules {
		real := runDNSSchedule(t, t.Context(), s, d, func() []string {
			return dnsProbes(t.Context(), dialer.DialContext, d.Resolver(), addr)
		})
		require.Equal(t, simOut[i], real, "schedule %d:\n%s", i, s)
		t.Logf("schedule %d, the same %d outcomes:\n%s\n%s", i, len(real), s, strings.Join(real, "\n"))
	}
	kinds := map[toxics.Kind]bool{}
	for _, s := range schedules {
		for _, st := range s.Steps {
			kinds[st.Fault.Kind()] = true
		}
	}
	for _, k := range toxics.DNSKinds() {
		require.True(t, kinds[k], "no schedule has %s", k)
	}
}
