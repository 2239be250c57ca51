package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/toxics"
)

// dnsOutcome names what a client saw of a lookup, as Go reports it: "ok",
// or the flags of the *net.DNSError in err.
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

const (
	dnsNotFound  = "dns error (not found true, timeout false, temporary false)"
	dnsTimeout   = "dns error (not found false, timeout true, temporary true)"
	dnsTemporary = "dns error (not found false, timeout false, temporary true)"
)

func TestDNSAnswers(t *testing.T) {
	e := New(t, WithSeed(1))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	t.Cleanup(srv.Close)
	api := e.Address("API", srv.Listener.Addr().String())
	d := e.DNS()
	require.Same(t, d, e.DNS(), "one name server per Env")
	ctx := ctxFor(t, time.Minute)
	r := e.Resolver()

	require.Equal(t, "api.shakedown.test", d.Host("API"))
	addrs, err := r.LookupHost(ctx, "api.shakedown.test")
	require.NoError(t, err)
	require.Equal(t, []string{"127.0.0.1"}, addrs)
	_, srvs, err := r.LookupSRV(ctx, "", "", "api.shakedown.test")
	require.NoError(t, err)
	require.Len(t, srvs, 1)
	_, port, _ := net.SplitHostPort(api.Addr())
	require.Equal(t, port, strconv.Itoa(int(srvs[0].Port)), "the SRV record gives the Link's port")

	_, err = r.LookupHost(ctx, "nobody.shakedown.test")
	require.Equal(t, dnsNotFound, dnsOutcome(err))
	_, err = r.LookupHost(ctx, "example.com")
	require.Error(t, err, "outside the zone: refused")

	addr, err := d.Address("API")
	require.NoError(t, err)
	require.Equal(t, "api.shakedown.test:"+port, addr)
	client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr + "/")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, "hello", string(body))

	_, err = d.Apply(ctx, toxics.Latency{Delay: time.Second})
	require.ErrorContains(t, err, "not a DNS fault")
	require.False(t, d.Supports(toxics.KindLatency))
	require.True(t, d.Supports(toxics.KindDNSDrop))
	// The name is the name server's now.
	require.ErrorContains(t, e.claim(DNSTarget), "already used")
}

// dnsCase is a DNS fault and what a client with a 500 ms deadline sees of
// it, as Go's resolver reports it.
var dnsCases = []struct {
	fault toxics.Fault
	want  string
}{
	{toxics.DNSDelay{Delay: 50 * time.Millisecond}, "ok"},
	{toxics.DNSDelay{Delay: 3 * time.Second}, dnsTimeout},
	{toxics.DNSServfail{}, dnsTemporary},
	{toxics.DNSNXDomain{}, dnsNotFound},
	{toxics.DNSDrop{}, dnsTimeout},
	{toxics.DNSDrop{Hosts: "other"}, "ok"},
	{toxics.DNSNXDomain{Hosts: "other api cache"}, dnsNotFound},
}

// TestDNSFaultsHTTP: net/http through the Env's resolver sees each fault
// as Go's resolver reports it, and nothing once it is reverted.
func TestDNSFaultsHTTP(t *testing.T) {
	e := New(t, WithSeed(1))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	t.Cleanup(srv.Close)
	e.Address("api", srv.Listener.Addr().String())
	d := e.DNS()
	addr, err := d.Address("api")
	require.NoError(t, err)
	get := func() error {
		// The dial (resolution included) gives up before the request:
		// with no dial timeout, a dropped query shows as the request's
		// own timeout, not as a DNS error.
		dialer := &net.Dialer{Resolver: d.Resolver(), Timeout: 500 * time.Millisecond}
		client := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext, DisableKeepAlives: true}, Timeout: 5 * time.Second}
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return err
	}
	ctx := ctxFor(t, time.Minute)
	dnsCasesThrough(t, ctx, d, get)
	t.Run("reset clears", func(t *testing.T) {
		_, err := d.Apply(ctx, toxics.DNSNXDomain{})
		require.NoError(t, err)
		require.Equal(t, dnsNotFound, dnsOutcome(get()))
		require.NoError(t, e.Reset(ctx))
		require.Equal(t, "ok", dnsOutcome(get()))
	})
}

// TestDNSFaultsRedis: go-redis dialing by name through the Env's resolver
// sees each fault as its dial's *net.DNSError.
func TestDNSFaultsRedis(t *testing.T) {
	e := New(t)
	r := e.Redis("cache")
	d := e.DNS()
	addr, err := d.Address("cache")
	require.NoError(t, err)
	ctx := ctxFor(t, time.Minute)
	ping := func() error {
		o := r.Options()
		o.Addr, o.Dialer = addr, d.DialContext
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout = 500*time.Millisecond, 500*time.Millisecond, 500*time.Millisecond
		o.MaxRetries, o.PoolSize, o.DisableIdentity = -1, 1, true
		o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
		c := goredis.NewClient(o)
		defer c.Close()
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second) // the dial gives up first
		defer cancel()
		return c.Ping(ctx).Err()
	}
	require.NoError(t, ping())
	dnsCasesThrough(t, ctx, d, ping)
}

// dnsCasesThrough applies each of dnsCases in turn and requires probe, a
// client's request by name, to end as the case says while it holds, and
// to succeed after its revert.
func dnsCasesThrough(t *testing.T, ctx context.Context, d *DNS, probe func() error) {
	t.Helper()
	for _, c := range dnsCases {
		t.Run(c.fault.String(), func(t *testing.T) {
			revert, err := d.Apply(ctx, c.fault)
			require.NoError(t, err)
			got := dnsOutcome(probe())
			require.NoError(t, revert(ctx))
			require.Equal(t, c.want, got)
			require.Equal(t, "ok", dnsOutcome(probe()), "after the revert")
		})
	}
}
