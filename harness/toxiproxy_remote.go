package harness

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	tpclient "github.com/Shopify/toxiproxy/v2/client"

	"github.com/shakedown/shakedown/toxics"
)

// RemoteProxy is a proxy of a Toxiproxy server that is already running,
// such as the one in front of a staging database, driven through the
// server's HTTP API with Toxiproxy's own Go client. It is a target of a
// schedule like a [Link] (Name, Supports, Apply), so the schedules a
// check found against an [Env] run unchanged against the deployed system:
//
//	db := harness.NewRemoteProxy(t, "db", "toxiproxy.staging:8474", "postgres")
//	h, err := sim.Run(ctx, sim.Plan{World: sim.World{Targets: []sim.Target{db}, Workload: w}, Schedule: s})
//
// Apply adds Toxiproxy toxics to the proxy, named
// "shakedown-<pid>.<n>.<fault>-<type>-<stream>", one per direction of the
// fault (Upstream is Toxiproxy's "upstream" stream, client to service;
// Downstream its "downstream"; Both adds one to each), with toxicity 1.
// The revert removes exactly those toxics; nothing else on the server is
// touched. Each fault acts as its type in package toxics says, as on a
// Link, except where noted:
//
//   - [toxics.Latency]: a latency toxic. Delay and Jitter must be whole
//     milliseconds. The jitter is drawn by the server from its own
//     unseeded source, so a replay draws other delays.
//   - [toxics.Bandwidth]: a bandwidth toxic; Rate must be a multiple of
//     1000 bytes per second (Toxiproxy's unit is KB/s). Rate 0 holds the
//     data back, and the revert delivers it.
//   - [toxics.Slicer]: a slicer toxic; Delay must be whole microseconds.
//     Slice sizes are drawn by the server, unseeded.
//   - [toxics.SlowClose]: a slow_close toxic; Delay in whole milliseconds.
//   - [toxics.DataLimit]: a limit_data toxic; Bytes must be at least 1
//     (Toxiproxy closes only when the next chunk arrives, where a limit of
//     0 closes at once).
//   - [toxics.Blackhole]: a timeout toxic with timeout 0, which drops the
//     data and leaves connections open. Unlike on a Link, the revert also
//     closes every connection that was open while it held, idle ones
//     included (Toxiproxy's timeout toxic closes its stream when removed);
//     connections opened afterwards carry data.
//   - [toxics.Down]: the proxy is disabled (its listener closes, so dials
//     are refused, and live connections are closed) and enabled again on
//     revert, on the same address. A proxy that was already disabled is
//     left as it was.
//
// Refused, because Toxiproxy cannot carry them out as their types say:
// [toxics.Reset] (Toxiproxy cannot abort live connections with an RST),
// [toxics.Timeout] (Toxiproxy's timeout restarts with every chunk and its
// removal closes connections), [toxics.Corrupt] (no toxic alters bytes)
// and every node fault (a proxy cannot reach the service behind it).
// Supports is false for those kinds, and [RemoteProxy.ValidateFault] says
// why for them and for values out of Toxiproxy's reach; sim's
// Schedule.Validate, and so sim.Run, report that before anything starts.
//
// As with any Toxiproxy proxy, a connection a toxic closes is closed
// outright, not half-closed, so a client that had sent data the server
// had not read yet may read a reset instead of EOF.
//
// Every call is one HTTP request or a few (a Both fault adds two toxics;
// Down reads the proxy first). Toxiproxy's client takes no context: Apply
// and revert check ctx before each request, and each request is bounded
// by the client's own 30 s timeout. Toxiproxy waits for every live
// connection to take a toxic in or out before it answers, so a client
// that has stopped reading can hold an Apply, and removing a toxic while
// data flows can take seconds.
type RemoteProxy struct {
	name, api, proxy, addr string
	client                 *tpclient.Client
	prefix                 string // of the names of this RemoteProxy's toxics

	// mu serialises the requests of Apply and revert, and guards the rest.
	mu      sync.Mutex
	applied []*remoteFault // active, in the order they were applied
	next    uint64
	downs   int  // active Down faults
	enable  bool // the first Down disabled the proxy: the last revert enables it
}

// remoteFault is one successful Apply.
type remoteFault struct {
	fault    toxics.LinkFault
	toxics   []string // names of its toxics still on the server
	reverted bool
}

// remoteIDs tells the RemoteProxies of one process apart in toxic names.
var remoteIDs atomic.Uint64

// NewRemoteProxy returns the proxy named proxy on the Toxiproxy server
// whose HTTP API is at api ("host:port", or a URL such as
// "http://toxiproxy.staging:8474") as the target name of schedules. It
// fails the test with t.Fatalf if the server does not answer or has no
// such proxy. t.Cleanup reverts every fault still applied.
func NewRemoteProxy(t testing.TB, name, api, proxy string) *RemoteProxy {
	t.Helper()
	r, err := OpenRemoteProxy(name, api, proxy)
	if err != nil {
		t.Fatalf("%v", err)
		return nil
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), teardownTimeout)
		defer cancel()
		if err := r.Clear(ctx); err != nil {
			t.Errorf("%v", err)
		}
	})
	return r
}

// OpenRemoteProxy is [NewRemoteProxy] without a testing.TB: it returns an
// error instead of failing a test, and the caller reverts what it applied
// (see [RemoteProxy.Clear]).
func OpenRemoteProxy(name, api, proxy string) (*RemoteProxy, error) {
	switch {
	case name == "":
		return nil, errors.New("harness: OpenRemoteProxy: the target name is empty")
	case api == "":
		return nil, fmt.Errorf("harness: remote proxy %q: the Toxiproxy API address is empty (such as \"127.0.0.1:8474\")", name)
	case proxy == "":
		return nil, fmt.Errorf("harness: remote proxy %q: the Toxiproxy proxy name is empty", name)
	case url.PathEscape(proxy) != proxy:
		return nil, fmt.Errorf("harness: remote proxy %q: proxy name %q has characters the API's paths cannot carry", name, proxy)
	}
	c := tpclient.NewClient(api)
	c.UserAgent = "shakedown"
	p, err := c.Proxy(proxy)
	if err != nil {
		if isToxiproxyNotFound(err) {
			return nil, fmt.Errorf("harness: remote proxy %q: the Toxiproxy server at %s has no proxy %q%s", name, api, proxy, proxyList(c))
		}
		return nil, fmt.Errorf("harness: remote proxy %q: read proxy %q from the Toxiproxy server at %s: %w", name, proxy, api, err)
	}
	return &RemoteProxy{
		name:   name,
		api:    api,
		proxy:  proxy,
		addr:   p.Listen,
		client: c,
		prefix: fmt.Sprintf("shakedown-%d.%d.", os.Getpid(), remoteIDs.Add(1)),
	}, nil
}

// proxyList names the server's proxies for an error message, or says
// nothing if it cannot.
func proxyList(c *tpclient.Client) string {
	ps, err := c.Proxies()
	if err != nil {
		return ""
	}
	names := make([]string, 0, len(ps))
	for n := range ps {
		names = append(names, n)
	}
	slices.Sort(names)
	return fmt.Sprintf(" (it has %s)", strings.Join(names, ", "))
}

func isToxiproxyNotFound(err error) bool {
	var ae *tpclient.ApiError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// Name returns the target name schedules use.
func (r *RemoteProxy) Name() string { return r.name }

// Addr returns the address the proxy listened on when it was opened, as
// the server reported it.
func (r *RemoteProxy) Addr() string { return r.addr }

// remoteKinds are the kinds a RemoteProxy applies.
var remoteKinds = []toxics.Kind{toxics.KindLatency, toxics.KindBandwidth, toxics.KindSlicer,
	toxics.KindSlowClose, toxics.KindDataLimit, toxics.KindBlackhole, toxics.KindDown}

// Supports reports whether Apply takes faults of kind k: latency,
// bandwidth, slicer, slow_close, data_limit, blackhole and down.
func (r *RemoteProxy) Supports(k toxics.Kind) bool { return slices.Contains(remoteKinds, k) }

// ValidateFault returns nil if Apply can carry f out, and otherwise an
// error naming the fault and why not: f is nil or invalid, Toxiproxy
// cannot do what its kind means, or one of its values is finer than
// Toxiproxy's units (a *[toxics.FieldError] in the chain names the field).
func (r *RemoteProxy) ValidateFault(f toxics.Fault) error {
	if _, err := toxicsFor(f); err != nil {
		return r.errorf("%s: %w", faultName(f), err)
	}
	return nil
}

func faultName(f toxics.Fault) string {
	if f == nil {
		return "<nil>"
	}
	return f.String()
}

func (r *RemoteProxy) errorf(format string, args ...any) error {
	return fmt.Errorf("harness: remote proxy %q (Toxiproxy proxy %q at %s): "+format, append([]any{r.name, r.proxy, r.api}, args...)...)
}

// remoteToxic is one Toxiproxy toxic of a fault.
type remoteToxic struct {
	typ, stream string
	attrs       tpclient.Attributes
}

// errRefused marks the kinds a deployed Toxiproxy cannot carry out.
var errRefused = errors.New("refused")

// toxicsFor returns the toxics that carry f out, none for Down, or why
// there are none.
func toxicsFor(f toxics.Fault) ([]remoteToxic, error) {
	if err := toxics.Validate(f); err != nil {
		return nil, err
	}
	var typ string
	var attrs tpclient.Attributes
	switch f := f.(type) {
	case toxics.Latency:
		if err := firstFieldErr(whole(f.Kind(), "delay", f.Delay, time.Millisecond), whole(f.Kind(), "jitter", f.Jitter, time.Millisecond)); err != nil {
			return nil, err
		}
		typ, attrs = "latency", tpclient.Attributes{"latency": f.Delay.Milliseconds(), "jitter": f.Jitter.Milliseconds()}
	case toxics.Bandwidth:
		if f.Rate%1000 != 0 {
			return nil, &toxics.FieldError{Kind: f.Kind(), Field: "rate", Value: f.Rate,
				Reason: "Toxiproxy takes whole KB/s: the rate must be a multiple of 1000 bytes per second"}
		}
		typ, attrs = "bandwidth", tpclient.Attributes{"rate": f.Rate / 1000}
	case toxics.Slicer:
		if err := whole(f.Kind(), "delay", f.Delay, time.Microsecond); err != nil {
			return nil, err
		}
		typ, attrs = "slicer", tpclient.Attributes{"average_size": f.AverageSize, "size_variation": f.SizeVariation, "delay": f.Delay.Microseconds()}
	case toxics.SlowClose:
		if err := whole(f.Kind(), "delay", f.Delay, time.Millisecond); err != nil {
			return nil, err
		}
		typ, attrs = "slow_close", tpclient.Attributes{"delay": f.Delay.Milliseconds()}
	case toxics.DataLimit:
		if f.Bytes < 1 {
			return nil, &toxics.FieldError{Kind: f.Kind(), Field: "bytes", Value: f.Bytes,
				Reason: "must be at least 1 on a Toxiproxy server, whose limit_data closes only when the next chunk arrives, where a limit of 0 closes at once"}
		}
		typ, attrs = "limit_data", tpclient.Attributes{"bytes": f.Bytes}
	case toxics.Blackhole:
		typ, attrs = "timeout", tpclient.Attributes{"timeout": 0}
	case toxics.Down:
		return nil, nil
	case toxics.Reset:
		return nil, fmt.Errorf("%w: Toxiproxy cannot abort live connections with an RST (its reset_peer toxic resets only connections opened after it, once data arrives, and disabling the proxy closes live ones with a FIN: that is the down fault)", errRefused)
	case toxics.Timeout:
		return nil, fmt.Errorf("%w: Toxiproxy's timeout toxic restarts its timer with every chunk (steady traffic never trips it) and closes its connections when removed, where this fault closes each connection After it began and leaves it open if reverted first", errRefused)
	case toxics.Corrupt:
		return nil, fmt.Errorf("%w: Toxiproxy has no toxic that alters bytes, and a corruption must draw from the run's seed", errRefused)
	case toxics.NodeFault:
		return nil, fmt.Errorf("%w: %s is a node fault, and a Toxiproxy proxy reaches only the connections through it, not the service behind it", errRefused, f.Kind())
	default:
		return nil, fmt.Errorf("%w: %s is not a fault kind a remote proxy knows", errRefused, f.Kind())
	}
	var out []remoteToxic
	for _, d := range []toxics.Direction{toxics.Upstream, toxics.Downstream} {
		if toxics.DirectionOf(f).Has(d) {
			out = append(out, remoteToxic{typ: typ, stream: d.String(), attrs: attrs})
		}
	}
	return out, nil
}

// whole checks that d is a whole number of unit.
func whole(k toxics.Kind, field string, d, unit time.Duration) error {
	if d%unit == 0 {
		return nil
	}
	name := map[time.Duration]string{time.Millisecond: "milliseconds", time.Microsecond: "microseconds"}[unit]
	return &toxics.FieldError{Kind: k, Field: field, Value: d, Reason: "Toxiproxy takes whole " + name}
}

func firstFieldErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Apply starts f on the proxy, for its live connections and new ones,
// and returns the revert that removes exactly what it added; the revert
// is idempotent. A fault ValidateFault refuses, or a failed request,
// returns an error and leaves the server as it was (a toxic added before
// a later request failed is removed again).
func (r *RemoteProxy) Apply(ctx context.Context, f toxics.Fault) (revert func(context.Context) error, err error) {
	if ctx == nil {
		ctx = context.Background()
	}
	ts, err := toxicsFor(f)
	if err != nil {
		return nil, r.errorf("apply %s: %w", faultName(f), err)
	}
	lf := f.(toxics.LinkFault) // toxicsFor refuses node faults
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, r.errorf("apply %s: %w", f, err)
	}
	a := &remoteFault{fault: lf}
	id := r.next
	r.next++
	if _, ok := f.(toxics.Down); ok {
		err = r.down(ctx)
	} else {
		err = r.addToxics(ctx, a, id, ts)
	}
	if err != nil {
		return nil, r.errorf("apply %s: %w", f, err)
	}
	r.applied = append(r.applied, a)
	return func(ctx context.Context) error { return r.revert(ctx, a) }, nil
}

// addToxics adds ts for a, removing those it added if one fails.
func (r *RemoteProxy) addToxics(ctx context.Context, a *remoteFault, id uint64, ts []remoteToxic) error {
	p := r.client.NewProxy()
	p.Name = r.proxy
	for _, t := range ts {
		name := fmt.Sprintf("%s%d-%s-%s", r.prefix, id, t.typ, t.stream)
		err := ctx.Err()
		if err == nil {
			_, err = p.AddToxic(name, t.typ, t.stream, 1, t.attrs)
		}
		if err != nil {
			err = fmt.Errorf("add toxic %q: %w", name, err)
			if rerr := r.removeToxics(context.WithoutCancel(ctx), a); rerr != nil {
				err = errors.Join(err, fmt.Errorf("take back what was added: %w", rerr))
			}
			return err
		}
		a.toxics = append(a.toxics, name)
	}
	return nil
}

// removeToxics removes a's toxics that are still on the server; a toxic
// already gone counts as removed.
func (r *RemoteProxy) removeToxics(ctx context.Context, a *remoteFault) error {
	p := r.client.NewProxy()
	p.Name = r.proxy
	for len(a.toxics) > 0 {
		name := a.toxics[len(a.toxics)-1]
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := p.RemoveToxic(name); err != nil && !isToxiproxyNotFound(err) {
			return fmt.Errorf("remove toxic %q: %w", name, err)
		}
		a.toxics = a.toxics[:len(a.toxics)-1]
	}
	return nil
}

// down disables the proxy unless a Down fault already holds or someone
// else disabled it.
func (r *RemoteProxy) down(ctx context.Context) error {
	if r.downs > 0 {
		r.downs++
		return nil
	}
	p, err := r.client.Proxy(r.proxy)
	if err != nil {
		return fmt.Errorf("read the proxy: %w", err)
	}
	wasEnabled := p.Enabled
	if wasEnabled {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := p.Disable(); err != nil {
			return fmt.Errorf("disable the proxy: %w", err)
		}
	}
	r.enable = wasEnabled
	r.downs++
	return nil
}

// up enables the proxy again once the last Down fault is reverted, if the
// first one disabled it.
func (r *RemoteProxy) up(ctx context.Context) error {
	if r.downs > 1 || !r.enable {
		r.downs--
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := r.client.Proxy(r.proxy)
	if err != nil {
		return fmt.Errorf("read the proxy: %w", err)
	}
	if !p.Enabled {
		if err := p.Enable(); err != nil {
			return fmt.Errorf("enable the proxy: %w", err)
		}
	}
	r.downs--
	r.enable = false
	return nil
}

// revert undoes a. If a request fails, the fault stays applied (minus the
// toxics already removed) and revert may be called again.
func (r *RemoteProxy) revert(ctx context.Context, a *remoteFault) error {
	if ctx == nil {
		ctx = context.Background()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if a.reverted {
		return nil
	}
	var err error
	if _, ok := a.fault.(toxics.Down); ok {
		err = r.up(ctx)
	} else {
		err = r.removeToxics(ctx, a)
	}
	if err != nil {
		return r.errorf("revert %s: %w", a.fault, err)
	}
	a.reverted = true
	if i := slices.Index(r.applied, a); i >= 0 {
		r.applied = slices.Delete(r.applied, i, i+1)
	}
	return nil
}

// Clear reverts every fault still applied, newest first, and returns
// every error it met.
func (r *RemoteProxy) Clear(ctx context.Context) error {
	r.mu.Lock()
	as := slices.Clone(r.applied)
	r.mu.Unlock()
	var errs []error
	for i := len(as) - 1; i >= 0; i-- {
		if err := r.revert(ctx, as[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
