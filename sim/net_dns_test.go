package sim_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/sim"
	"github.com/shakedown/shakedown/toxics"
)

func dnsOutcome(err error) string {
	if err == nil {
		return "ok"
	}
	var de *net.DNSError
	if !errors.As(err, &de) {
		return "not a DNS error: " + err.Error()
	}
	return fmt.Sprintf("dns error (not found %v, timeout %v, temporary %v)", de.IsNotFound, de.IsTimeout, de.IsTemporary)
}

// TestDNSSim: the simulated name server answers for the endpoints, and a
// net/http client dialing by name through Network.Dial sees each DNS fault
// as a *net.DNSError, in virtual time.
func TestDNSSim(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := sim.NewNetwork(1)
		t.Cleanup(func() { n.Close() })
		_, err := n.FakeHTTP("API", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
		require.NoError(t, err)
		_, err = n.Listen("db:5432")
		require.NoError(t, err)
		d := n.DNS()
		require.Same(t, d, n.DNS())
		r := d.Resolver()
		ctx := t.Context()

		addrs, err := r.LookupHost(ctx, d.Host("API"))
		require.NoError(t, err)
		require.Equal(t, []string{"127.0.0.1"}, addrs)
		_, srvs, err := r.LookupSRV(ctx, "", "", "db.shakedown.test")
		require.NoError(t, err)
		require.Len(t, srvs, 1)
		require.Equal(t, uint16(5432), srvs[0].Port)
		_, err = r.LookupHost(ctx, "nobody.shakedown.test")
		require.Equal(t, "dns error (not found true, timeout false, temporary false)", dnsOutcome(err))

		dial := func(ctx context.Context, network, address string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond) // as net.Dialer.Timeout
			defer cancel()
			return n.Dial(ctx, network, address)
		}
		client := &http.Client{Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}, Timeout: 5 * time.Second}
		get := func() (time.Duration, error) {
			start := time.Now()
			resp, err := client.Get("http://api.shakedown.test:80/")
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			return time.Since(start), err
		}
		for _, c := range []struct {
			fault toxics.Fault
			want  string
			took  time.Duration // in virtual time: exact
		}{
			{toxics.DNSDelay{Delay: 50 * time.Millisecond}, "ok", 50 * time.Millisecond},
			{toxics.DNSDelay{Delay: 3 * time.Second}, "dns error (not found false, timeout true, temporary true)", 500 * time.Millisecond},
			{toxics.DNSServfail{}, "dns error (not found false, timeout false, temporary true)", 0},
			{toxics.DNSNXDomain{}, "dns error (not found true, timeout false, temporary false)", 0},
			{toxics.DNSDrop{}, "dns error (not found false, timeout true, temporary true)", 500 * time.Millisecond},
			{toxics.DNSDrop{Hosts: "db"}, "ok", 0},
		} {
			revert, err := d.Apply(ctx, c.fault)
			require.NoError(t, err)
			took, err := get()
			require.NoError(t, revert(ctx))
			require.Equal(t, c.want, dnsOutcome(err), c.fault.String())
			require.Equal(t, c.took, took, c.fault.String())
			_, err = get()
			require.NoError(t, err, "after reverting %v", c.fault)
		}
		_, err = d.Apply(ctx, toxics.Latency{Delay: time.Second})
		require.ErrorContains(t, err, "not a DNS fault")
		_, err = d.Apply(ctx, toxics.DNSDelay{})
		require.ErrorContains(t, err, "dns_delay.delay")
		require.Equal(t, strconv.Quote(sim.DNSTarget), strconv.Quote(d.Name()))
	})
}

// A client of the simulated network dials a dependency by name; a DNS
// fault on the name server fails the dial as a real resolver would.
func ExampleNetwork_DNS() {
	ctx := context.Background()
	n := sim.NewNetwork(1)
	defer n.Close()
	if _, err := n.FakeHTTP("api", http.NotFoundHandler()); err != nil {
		panic(err)
	}
	d := n.DNS()
	revert, err := d.Apply(ctx, toxics.DNSNXDomain{Hosts: "api"})
	if err != nil {
		panic(err)
	}
	_, err = n.Dial(ctx, "tcp", "api.shakedown.test:80")
	var de *net.DNSError
	fmt.Println("not found:", errors.As(err, &de) && de.IsNotFound, "name:", de.Name)
	revert(ctx)
	c, err := n.Dial(ctx, "tcp", "api.shakedown.test:80")
	fmt.Println(err)
	c.Close()
	// Output:
	// not found: true name: api.shakedown.test
	// <nil>
}
