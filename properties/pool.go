package properties

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shakedown/shakedown/sim"
)

// Pool samplers record the same values under the sampler's name, so one
// set of invariants fits every client:
//
//	<name>.in_use        connections checked out now
//	<name>.idle          idle connections now
//	<name>.open          open connections now
//	<name>.wait_count    acquires that had to wait (cumulative)
//	<name>.wait_seconds  time those acquires waited (cumulative)
//	<name>.dials         connections opened (cumulative), where known
//
// A client reports the values it has; [PoolReleased], [AcquireWait] and
// [ReconnectStorm] read the ones they need, and have no evidence without.

// PoolReleased holds when, once the run is quiet (at the last sample taken
// after the last op ended), at most Max connections of the pool are still
// checked out: no leaked or stuck connections.
type PoolReleased struct {
	// Pool is the pool sampler's name; the invariant reads <Pool>.in_use.
	Pool string
	// Max is the most connections allowed in use at the end (default 0).
	Max int
}

func (p PoolReleased) Name() string {
	return fmt.Sprintf("%s: at most %d connections in use once quiet", p.Pool, p.Max)
}

func (p PoolReleased) validate() error {
	return invalid(p.Name(), required("Pool", p.Pool, "name the pool sampler"), nonNegative("Max", p.Max))
}

func (p PoolReleased) samples() []string { return []string{p.Pool + ".in_use"} }

func (p PoolReleased) Check(h *sim.History) error {
	if err := p.validate(); err != nil {
		return err
	}
	// Every op, the framework's misses too: an op cut off at the end of
	// the run held its connection until it returned.
	var quiet time.Duration
	for _, op := range h.Ops {
		quiet = max(quiet, op.End)
	}
	ss := series(h, p.Pool+".in_use")
	if len(ss) == 0 || ss[len(ss)-1].At < quiet {
		return &NoEvidence{Invariant: p.Name(), Reason: fmt.Sprintf("no %s.in_use sample after the last op ended at %v", p.Pool, quiet)}
	}
	last := ss[len(ss)-1]
	if last.Value <= float64(p.Max) {
		return nil
	}
	return Violations{{
		Invariant: p.Name(), Window: "once the run was quiet", At: last.At,
		Got: fmt.Sprintf("%g in use", last.Value), Want: fmt.Sprintf("<= %d", p.Max), Excess: fmt.Sprintf("%g connections", last.Value-float64(p.Max)),
	}}
}

// AcquireWait holds when, between any two consecutive samples, the
// acquires that waited for a connection waited at most Max on average:
// the pool is not exhausted. It reads <Pool>.wait_count and
// <Pool>.wait_seconds.
type AcquireWait struct {
	Pool string
	Max  time.Duration
}

func (a AcquireWait) Name() string {
	return fmt.Sprintf("%s: acquire waits <= %v", a.Pool, a.Max)
}

func (a AcquireWait) validate() error {
	return invalid(a.Name(), required("Pool", a.Pool, "name the pool sampler"), nonNegative("Max", a.Max))
}

func (a AcquireWait) samples() []string {
	return []string{a.Pool + ".wait_count", a.Pool + ".wait_seconds"}
}

func (a AcquireWait) Check(h *sim.History) error {
	if err := a.validate(); err != nil {
		return err
	}
	counts, secs := series(h, a.Pool+".wait_count"), series(h, a.Pool+".wait_seconds")
	if len(counts) < 2 || len(secs) != len(counts) {
		return &NoEvidence{Invariant: a.Name(), Reason: fmt.Sprintf("%d %s.wait_count and %d %s.wait_seconds samples (need two or more of each, taken together)",
			len(counts), a.Pool, len(secs), a.Pool)}
	}
	var vs Violations
	for i := 1; i < len(counts); i++ {
		n := counts[i].Value - counts[i-1].Value
		w := secs[i].Value - secs[i-1].Value
		if n <= 0 {
			continue
		}
		mean := time.Duration(w / n * float64(time.Second))
		if mean > a.Max {
			vs = append(vs, Violation{
				Invariant: a.Name(), Window: fmt.Sprintf("between samples at %v and %v", counts[i-1].At, counts[i].At), At: counts[i-1].At,
				Got: fmt.Sprintf("%g acquires waited %v on average", n, mean), Want: fmt.Sprintf("<= %v", a.Max), Excess: (mean - a.Max).String(),
			})
		}
	}
	if len(vs) > 0 {
		return vs
	}
	return nil
}

// ReconnectStorm holds when the pool opens at most Max connections in any
// stretch of Per within a window: the client reuses and bounds its
// connections, and reconnects at a measured pace instead of stampeding a
// dependency that struggles or just came back. It reads <Pool>.dials (see
// [sim.Dials], pgxcheck.Pool, redischeck.Pool).
//
//	properties.ReconnectStorm{Pool: "db", Max: 8, Window: sim.During}                  // at most 8 connections opened during each fault
//	properties.ReconnectStorm{Pool: "db", Max: 8, Per: time.Second, Window: sim.After} // no stampede after the heal
//
// A pool of 8 that waits for its connections under a slow dependency holds
// the first; a client that opens a connection for every call it gave up on
// breaks it. A window's dials are counted from the last sample at or before
// its start.
type ReconnectStorm struct {
	// Pool is the pool sampler's name.
	Pool string
	// Max is the most dials allowed in any stretch of Per.
	Max float64
	// Per is the stretch (default: the whole window).
	Per time.Duration
	// Window is the part of the run judged (default sim.Overall); in the
	// During window each fault is judged on its own.
	Window sim.Phase
}

func (r ReconnectStorm) Name() string {
	per := ""
	if r.Per > 0 {
		per = fmt.Sprintf(" per %v", r.Per)
	}
	return fmt.Sprintf("%s: at most %g dials%s %s", r.Pool, r.Max, per, phaseText(r.Window))
}

func (r ReconnectStorm) validate() error {
	return invalid(r.Name(), required("Pool", r.Pool, "name the pool sampler"), nonNegative("Max", r.Max), nonNegative("Per", r.Per), phaseOK(r.Window))
}

func (r ReconnectStorm) samples() []string { return []string{r.Pool + ".dials"} }

func (r ReconnectStorm) Check(h *sim.History) error {
	if err := r.validate(); err != nil {
		return err
	}
	sps, why := spans(h, r.Window, nil)
	if why != "" {
		return &NoEvidence{Invariant: r.Name(), Reason: why}
	}
	all := series(h, r.Pool+".dials")
	var vs Violations
	seen := false
	for _, sp := range sps {
		ss := bracket(all, sp.from, windowEnd(r.Window, sp))
		if len(ss) < 2 {
			continue
		}
		seen = true
		per := r.Per
		if per == 0 {
			per = ss[len(ss)-1].At - ss[0].At
		}
		var worst Violation
		var worstN float64
		lo := 0
		for hi := 1; hi < len(ss); hi++ {
			for ss[hi].At-ss[lo].At > per && lo < hi-1 {
				lo++
			}
			if n := ss[hi].Value - ss[lo].Value; n > r.Max && n > worstN {
				worstN = n
				worst = Violation{
					Invariant: r.Name(), Window: fmt.Sprintf("%s: between %v and %v", sp.label, ss[lo].At, ss[hi].At), At: ss[lo].At,
					Got: fmt.Sprintf("%g dials", n), Want: fmt.Sprintf("<= %g", r.Max), Excess: fmt.Sprintf("%g dials", n-r.Max),
				}
			}
		}
		if worstN > 0 {
			vs = append(vs, worst)
		}
	}
	if !seen {
		return &NoEvidence{Invariant: r.Name(), Reason: fmt.Sprintf("no window held two %s.dials samples (have %d in the run)", r.Pool, len(all))}
	}
	if len(vs) > 0 {
		return vs
	}
	return nil
}

// NoGoroutineLeak holds when the service's goroutines at the end of the
// run (the quiet reading) are at most Slack above the fewest read before
// the first fault took effect (the first reading can catch the first ops
// in flight). It judges the samples its [NoGoroutineLeak.Sampler] records,
// which counts the service's goroutines alone, not the framework's: add
// that sampler to the World.
//
//	leak := properties.NoGoroutineLeak{Packages: []string{"example.com/checkout"}}
//	// World:      Samplers: []sim.Sampler{leak.Sampler(), ...}
//	// Invariants: []properties.Invariant{leak, ...}
//
// Which goroutines are the service's is read from their stacks, as goleak
// does. With Packages, a goroutine counts when one of its frames, or the
// function that created it, is in one of those packages: a service's own
// background loops, and a workload's call still stuck in its code. Without
// Packages, every goroutine counts except the framework's (the runtime's
// and testing's, net/http/httptest's, Toxiproxy's and testcontainers',
// rapid's, porcupine's, and shakedown's own): a goroutine belongs to the
// innermost frame that is not of the standard library, or, running the
// standard library alone, to the goroutine that created it (when that one
// is gone: to nobody, as the keep-alive loops of an http.Transport's idle
// connections). A library's connection goroutines count when its package
// is listed; leaked connections are better judged with [PoolReleased] and
// [sim.Dials]. Goroutines of other tests running in parallel count too:
// list Packages to tell them apart.
//
// A count of one's own works as well: name its samples in Counter (such as
// a sim.Counter of a service's worker count). sim.Goroutines() counts the
// whole process, the framework's goroutines included, and is no evidence
// of a leak. Give the run a Settle or a cooldown for connections that close
// after the last op.
type NoGoroutineLeak struct {
	// Slack is how many more goroutines the end may have than the start.
	Slack int
	// Packages are the import path prefixes of the service's code (see
	// above); empty means every package but the framework's.
	Packages []string
	// Counter names the samples judged (default "service_goroutines",
	// which Sampler records).
	Counter string
}

func (g NoGoroutineLeak) counter() string {
	if g.Counter == "" {
		return "service_goroutines"
	}
	return g.Counter
}

func (g NoGoroutineLeak) Name() string {
	return fmt.Sprintf("%s back to the start count + %d", g.counter(), g.Slack)
}

func (g NoGoroutineLeak) validate() error {
	return invalid(g.Name(), nonNegative("Slack", g.Slack), kindsOK("Packages", g.Packages))
}

func (g NoGoroutineLeak) samples() []string { return []string{g.counter()} }

// Sampler returns the sampler of the goroutines the invariant judges,
// recorded under Counter's name: the service's, told apart by their
// stacks. Each reading takes one runtime.Stack of every goroutine (a
// stop of the world that lasts microseconds per goroutine).
func (g NoGoroutineLeak) Sampler() sim.Sampler {
	c := &goroutineCounter{packages: slices.Clone(g.Packages), class: map[string]frameClass{}}
	return sim.SamplerFunc(g.counter(), func(context.Context) (map[string]float64, error) {
		return map[string]float64{"": float64(c.count())}, nil
	})
}

func (g NoGoroutineLeak) Check(h *sim.History) error {
	if err := g.validate(); err != nil {
		return err
	}
	ss := series(h, g.counter())
	if len(ss) < 2 {
		return &NoEvidence{Invariant: g.Name(), Reason: fmt.Sprintf("%d %q samples (add the invariant's Sampler() to the World's Samplers)", len(ss), g.counter())}
	}
	// The baseline is the fewest goroutines read before the first fault
	// took effect: the first reading can catch the first ops in flight.
	first, last := ss[0], ss[len(ss)-1]
	calm := time.Duration(math.MaxInt64)
	if fs := applied(h); len(fs) > 0 {
		calm = fs[0].Start
	}
	for _, s := range ss[1 : len(ss)-1] {
		if s.At <= calm && s.Value < first.Value {
			first = s
		}
	}
	if last.Value <= first.Value+float64(g.Slack) {
		return nil
	}
	return Violations{{
		Invariant: g.Name(), Window: "at the end of the run", At: last.At,
		Got:  fmt.Sprintf("%g goroutines (at %v: %g)", last.Value, first.At, first.Value),
		Want: fmt.Sprintf("<= %g", first.Value+float64(g.Slack)), Excess: fmt.Sprintf("%g goroutines", last.Value-first.Value-float64(g.Slack)),
	}}
}

// frameClass says whose a function is.
type frameClass uint8

const (
	neutral   frameClass = iota // the standard library: look further
	framework                   // never the service's
	service                     // the service's
)

// frameworkPackages are the import path prefixes of the code that runs a
// check: their goroutines are never the service's. testing and httptest
// are of the standard library, but their goroutines are the test's.
var frameworkPackages = []string{
	"github.com/shakedown/shakedown/sim", "github.com/shakedown/shakedown/harness",
	"github.com/shakedown/shakedown/properties", "github.com/shakedown/shakedown/toxics",
	"github.com/Shopify/toxiproxy", "github.com/testcontainers/testcontainers-go",
	"github.com/docker/", "github.com/moby/", "github.com/containerd/", "go.opentelemetry.io/",
	"pgregory.net/rapid", "github.com/anishathalye/porcupine", "go.uber.org/goleak",
	"testing", "net/http/httptest",
}

// inPackage reports whether function fn (as a stack prints it:
// "net/http.(*conn).serve") is in the package with import path prefix p.
func inPackage(fn, p string) bool {
	if !strings.HasPrefix(fn, p) {
		return false
	}
	if strings.HasSuffix(p, "/") || len(fn) == len(p) {
		return true
	}
	c := fn[len(p)]
	return c == '.' || c == '/'
}

// goroutineCounter counts the service's goroutines from the stacks of all.
// The class of each function name is cached: the same few hundred names
// come back at every reading.
type goroutineCounter struct {
	packages []string

	mu    sync.Mutex // guards buf and class: a sampler may be read from two runs at once
	buf   []byte
	class map[string]frameClass
}

func (c *goroutineCounter) classify(name []byte) frameClass {
	if k, ok := c.class[string(name)]; ok { // no allocation for a name seen before
		return k
	}
	fn := string(name)
	k := neutral
	switch {
	case len(c.packages) > 0:
		if slices.ContainsFunc(c.packages, func(p string) bool { return inPackage(fn, p) }) {
			k = service
		}
	case slices.ContainsFunc(frameworkPackages, func(p string) bool { return inPackage(fn, p) }):
		k = framework
	default:
		// The standard library's paths have no dot in their first
		// element; package main is the program's own.
		first, _, _ := strings.Cut(fn, "/")
		if !strings.Contains(fn, "/") {
			first, _, _ = strings.Cut(fn, ".")
		}
		if strings.Contains(first, ".") || first == "main" {
			k = service
		}
	}
	c.class[fn] = k
	return k
}

// stack is what count needs of one goroutine.
type stack struct {
	owner  frameClass // of its frames and creator; neutral: ask the parent
	parent uint64
}

func (c *goroutineCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.buf == nil {
		c.buf = make([]byte, 64<<10)
	}
	for {
		n := runtime.Stack(c.buf, true)
		if n < len(c.buf) {
			return c.countIn(c.buf[:n])
		}
		c.buf = make([]byte, 2*len(c.buf))
	}
}

// countIn counts the service's goroutines in a dump of runtime.Stack(all).
func (c *goroutineCounter) countIn(dump []byte) int {
	byID := map[uint64]*stack{}
	var order []uint64
	var cur *stack
	decided := false // cur's owner is known from an earlier frame
	for len(dump) > 0 {
		line := dump
		if i := bytes.IndexByte(dump, '\n'); i >= 0 {
			line, dump = dump[:i], dump[i+1:]
		} else {
			dump = nil
		}
		switch {
		case len(line) == 0 || line[0] == '\t':
			continue // a blank line between goroutines, a file line
		case bytes.HasPrefix(line, []byte("goroutine ")):
			id, _ := strconv.ParseUint(string(fieldAt(line, len("goroutine "))), 10, 64)
			cur, decided = &stack{}, false
			byID[id] = cur
			order = append(order, id)
			continue
		case cur == nil:
			continue
		}
		fn := line
		if rest, ok := bytes.CutPrefix(line, []byte("created by ")); ok {
			fn = rest
			if i := bytes.Index(rest, []byte(" in goroutine ")); i >= 0 {
				fn = rest[:i]
				cur.parent, _ = strconv.ParseUint(string(fieldAt(rest, i+len(" in goroutine "))), 10, 64)
			}
		} else if i := bytes.LastIndexByte(line, '('); i > 0 {
			fn = line[:i]
		} else {
			continue // "...additional frames elided..."
		}
		k := c.classify(fn)
		switch {
		case k == neutral || (decided && len(c.packages) == 0):
		case len(c.packages) > 0: // any frame of the service's packages
			cur.owner, decided = service, true
		default: // the innermost frame that is not the standard library's
			cur.owner, decided = k, true
		}
	}
	n := 0
	for _, id := range order {
		if c.owner(byID, id, 0) == service {
			n++
		}
	}
	return n
}

// owner resolves a goroutine running the standard library alone through
// its parents, when they are still there.
func (c *goroutineCounter) owner(byID map[uint64]*stack, id uint64, depth int) frameClass {
	s := byID[id]
	if s == nil || depth > 64 {
		return neutral
	}
	if s.owner != neutral || len(c.packages) > 0 || s.parent == 0 || s.parent == id {
		return s.owner
	}
	return c.owner(byID, s.parent, depth+1)
}

// fieldAt returns the run of digits of b from i.
func fieldAt(b []byte, i int) []byte {
	if i > len(b) {
		return nil
	}
	j := i
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	return b[i:j]
}
