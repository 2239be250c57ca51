package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shakedown/shakedown/toxics"
)

// Environment variables read by [New].
const (
	// EnvSeed holds the seed of the run when [WithSeed] is not given.
	EnvSeed = "SHAKEDOWN_SEED"
	// EnvBackend selects the backend ("auto", "docker" or "process") when
	// [WithBackend] is not given.
	EnvBackend = "SHAKEDOWN_BACKEND"
	// EnvRequireDocker, when "1", turns the skip for a missing Docker
	// engine into a test failure. CI sets it.
	EnvRequireDocker = "SHAKEDOWN_REQUIRE_DOCKER"
	// EnvPostgresImage and EnvRedisImage select the images of
	// [Env.Postgres] and [Env.Redis] when [WithImage] is not given.
	EnvPostgresImage = "SHAKEDOWN_POSTGRES_IMAGE"
	EnvRedisImage    = "SHAKEDOWN_REDIS_IMAGE"
)

// teardownTimeout bounds each step of an Env's teardown.
const teardownTimeout = time.Minute

// Dependency is anything an [Env] fronts with a [Link]: a container, a
// local process or an existing address. It satisfies the Target interface
// of package sim (Name, Supports, Apply) without importing it.
type Dependency interface {
	// Name is the dependency's name in schedules, logs and, for
	// containers, on the Env's Docker network.
	Name() string
	// Supports reports whether Apply accepts faults of kind k.
	Supports(k toxics.Kind) bool
	// Apply starts fault f: link faults go to the Link, node faults to
	// the container or process. The returned revert ends the fault.
	Apply(ctx context.Context, f toxics.Fault) (revert func(context.Context) error, err error)
	// Addr is the proxied address clients use: 127.0.0.1:port of the
	// Link, the same for the dependency's whole life.
	Addr() string
	// DirectAddr is the dependency's own address, bypassing the Link. It
	// changes when a container restarts.
	DirectAddr() string
	// Link is the fault-injecting proxy in front of the dependency.
	Link() *Link
	// Ready returns nil once the dependency answers a protocol-level
	// check (for Postgres a query, for Redis a PING) on its direct
	// address, or the last error when ctx ends first.
	Ready(ctx context.Context) error
}

// member is what the Env keeps of each dependency.
type member interface {
	Dependency
	// heal clears link faults and brings a faulted node back.
	heal(ctx context.Context) error
}

// Env is the real world of one test: the dependencies it starts, the
// Links in front of them, the Docker network they share, the seed and
// the logger. Create it with [New]; everything it creates is torn down by
// t.Cleanup, in reverse order of creation.
//
// The methods that start a dependency (Postgres, Redis, Container,
// Address) stop the test with t.Fatalf when they fail, and must be called
// from the test's goroutine. Apply, Reset, Partition and the node-fault
// methods may be called from any goroutine.
type Env struct {
	t       testing.TB
	seed    int64
	runID   string
	log     logger
	testLog *testLog // nil with WithLogger
	backend Backend  // as asked; resolved per dependency
	started time.Time

	mu       sync.Mutex
	members  []member
	byName   map[string]member
	closers  []closer
	closed   bool
	docker   *dockerRuntime // nil until the first container
	dockerOK *backendProbe
	procs    *processRuntime // nil until the first local process
	part     *partition      // current partition, if any
	dns      *DNS            // the name server, once started (dns.go)
	partSeq  int
}

type closer struct {
	what string
	fn   func(context.Context) error
}

// New returns the Env of one test. It starts nothing yet: each dependency
// starts when it is asked for. The Env logs its seed and run ID, and
// registers its teardown with t.Cleanup: Links are closed, containers and
// processes removed, networks deleted, whether the test passes, fails or
// panics. A later run removes what a killed run left behind (see [Reap]).
//
// Bad options or a bad SHAKEDOWN_SEED / SHAKEDOWN_BACKEND stop the test
// with t.Fatalf.
func New(t testing.TB, opts ...EnvOption) *Env {
	t.Helper()
	var cfg envConfig
	for _, o := range opts {
		if o != nil {
			o.applyEnv(&cfg)
		}
	}
	e := &Env{t: t, byName: map[string]member{}, started: time.Now(), dockerOK: &backendProbe{}}
	switch {
	case cfg.seed != nil:
		e.seed = *cfg.seed
	case os.Getenv(EnvSeed) != "":
		s, err := strconv.ParseInt(os.Getenv(EnvSeed), 10, 64)
		if err != nil {
			t.Fatalf("harness: %s=%q is not an integer seed: %v", EnvSeed, os.Getenv(EnvSeed), err)
		}
		e.seed = s
	default:
		e.seed = randomSeed()
	}
	switch {
	case cfg.backend != nil:
		e.backend = *cfg.backend
	case os.Getenv(EnvBackend) != "":
		b, err := ParseBackend(os.Getenv(EnvBackend))
		if err != nil {
			t.Fatalf("harness: %s: %v", EnvBackend, err)
		}
		e.backend = b
	}
	if e.backend < Auto || e.backend > Process {
		t.Fatalf("harness: WithBackend(%d): not one of Auto, Docker, Process", int(e.backend))
	}
	e.runID = newRunID()
	l := cfg.logger
	if l == nil {
		h := newTestHandler(t)
		e.testLog = h.out
		l = slog.New(h)
	}
	e.log = logger{l.With("run", e.runID)}
	t.Cleanup(e.close)
	t.Logf("harness: seed=%d run=%s (replay with %s=%d)", e.seed, e.runID, EnvSeed, e.seed)
	return e
}

// Seed is the seed of the run; every random choice of the Env and its
// Links derives from it.
func (e *Env) Seed() int64 { return e.seed }

// RunID identifies this Env's containers, networks and processes (label
// shakedown.run). It is unique per Env, not derived from the seed, so two
// test binaries with the same seed never share resources.
func (e *Env) RunID() string { return e.runID }

// Logger is the Env's logger (see [WithLogger]). By default it writes to
// the test log, one line per record at Info level and above, each
// attributed to the file and line of the call that caused it: for the
// Env's own records the test's call of env.Postgres or db.Crash (or sim's
// Runner applying a fault), for a record logged through Logger the line
// that logged it.
func (e *Env) Logger() *slog.Logger { return e.log.l }

// Dependency returns the dependency called name.
func (e *Env) Dependency(name string) (Dependency, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m, ok := e.byName[name]
	if !ok || m == nil {
		return nil, fmt.Errorf("harness: no dependency %q in this env (have %v)", name, e.namesLocked())
	}
	return m, nil
}

// Dependencies returns every dependency in the order they were created.
func (e *Env) Dependencies() []Dependency {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Dependency, len(e.members))
	for i, m := range e.members {
		out[i] = m
	}
	return out
}

func (e *Env) namesLocked() []string {
	names := make([]string, len(e.members))
	for i, m := range e.members {
		names[i] = m.Name()
	}
	return names
}

// Reset returns the Env to a healthy state: it heals a partition, clears
// every link fault and DNS fault, unpauses paused nodes and starts stopped or crashed
// ones, then waits until those are ready. Nodes that were not faulted are
// not touched, so a Reset after link faults only costs a few microseconds
// per Link and makes no container or process calls. It is what runs
// between property iterations.
func (e *Env) Reset(ctx context.Context) error {
	ctx = withCallSite(ctx) // for what the heals log on their goroutines
	e.mu.Lock()
	members := slices.Clone(e.members)
	if e.dns != nil {
		e.dns.heal()
	}
	e.mu.Unlock()
	var errs []error
	if err := e.healPartition(ctx); err != nil {
		errs = append(errs, err)
	}
	// Heal concurrently: starting two crashed containers should cost the
	// time of the slower one, not of both.
	res := make([]error, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Go(func() { res[i] = m.heal(ctx) })
	}
	wg.Wait()
	errs = append(errs, res...)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("harness: reset: %w", err)
	}
	return nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// claim reserves name for a new dependency.
func (e *Env) claim(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("harness: dependency name %q: want 1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit (it is a network alias too)", name)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fmt.Errorf("harness: dependency %q: env already torn down", name)
	}
	if _, dup := e.byName[name]; dup {
		return fmt.Errorf("harness: dependency name %q is already used in this env", name)
	}
	e.byName[name] = nil
	return nil
}

func (e *Env) release(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if m, ok := e.byName[name]; ok && m == nil {
		delete(e.byName, name)
	}
}

func (e *Env) add(m member) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.members = append(e.members, m)
	e.byName[m.Name()] = m
}

// onClose registers fn to run at teardown, before everything registered
// earlier.
func (e *Env) onClose(what string, fn func(context.Context) error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closers = append(e.closers, closer{what, fn})
}

// close tears everything down in reverse order. Errors are reported with
// t.Errorf: a leak is a failure of its own.
func (e *Env) close() {
	e.mu.Lock()
	e.closed = true
	closers := e.closers
	e.closers = nil
	e.mu.Unlock()
	for i := len(closers) - 1; i >= 0; i-- {
		c := closers[i]
		ctx, cancel := context.WithTimeout(context.Background(), teardownTimeout)
		if err := c.fn(ctx); err != nil {
			e.t.Errorf("harness: teardown of %s: %v", c.what, err)
		}
		cancel()
	}
	e.checkLeftovers()
	if e.testLog != nil {
		e.testLog.stop()
	}
}

// checkLeftovers lists, by label and run record, what of this Env still
// exists after its teardown, and fails the test if anything does.
func (e *Env) checkLeftovers() {
	e.mu.Lock()
	used := e.docker != nil || e.procs != nil
	e.mu.Unlock()
	if !used {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), teardownTimeout)
	defer cancel()
	left, err := Leftovers(ctx, e.runID)
	if err != nil {
		e.log.Warn("listing leftovers failed", "err", err)
	}
	if len(left) > 0 {
		e.t.Errorf("harness: teardown of run %s left %s", e.runID, strings.Join(left, "; "))
	}
}

// fatalf reports a failed start of a dependency.
func (e *Env) fatalf(format string, args ...any) {
	e.t.Helper()
	e.t.Fatalf(format, args...)
}

func randomSeed() int64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return time.Now().UnixNano()
	}
	var s int64
	for _, x := range b {
		s = s<<8 | int64(x)
	}
	if s < 0 {
		s = -(s + 1)
	}
	return s
}

// newRunID returns 12 random hex digits: unique per Env, independent of
// the seed.
func newRunID() string { return randomHex(6) }

// randomHex returns 2n random hex digits from crypto/rand. Identifiers and
// passwords come from here, not from the seed: they must differ between
// runs that share a seed, and they never influence what a test observes.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand does not fail on Linux; fall back to the clock.
		return strconv.FormatInt(time.Now().UnixNano(), 16)
	}
	return hex.EncodeToString(b)
}
