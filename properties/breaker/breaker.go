package breaker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/toxics"
)

// State is a circuit breaker's state as the breaker reports it.
type State uint8

const (
	// Unknown: the breaker does not say.
	Unknown State = iota
	// Closed lets every call through.
	Closed
	// HalfOpen lets a few probes through to see whether the
	// dependency is back.
	HalfOpen
	// Open turns every call away at once.
	Open
)

func (s State) String() string {
	switch s {
	case Unknown:
		return "unknown"
	case Closed:
		return "closed"
	case HalfOpen:
		return "half-open"
	case Open:
		return "open"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Breaker is a circuit breaker under verification, with whatever the
// service puts around it (a timeout, retries, a fallback), as the service
// calls through it.
type Breaker interface {
	// Execute runs call if the breaker lets it through and returns its
	// error, or returns an error without calling it. call must get a
	// context derived from ctx: it is how the verifier counts the calls
	// that reach the dependency, and how a timeout stops them.
	Execute(ctx context.Context, call func(context.Context) error) error
	// State is the state the breaker reports now, or Unknown. The
	// verifier calls it before and after every Execute, never during one.
	State() State
}

// Func makes a [Breaker] of an execute function and a state
// function, for breakers other than those with an adapter here. state may
// be nil: the breaker is then judged on what it does alone.
func Func(execute func(ctx context.Context, call func(context.Context) error) error, state func() State) Breaker {
	return funcBreaker{execute: execute, state: state}
}

type funcBreaker struct {
	execute func(context.Context, func(context.Context) error) error
	state   func() State
}

func (b funcBreaker) Execute(ctx context.Context, call func(context.Context) error) error {
	if b.execute == nil {
		return errors.New("breaker: Func: the execute function is nil")
	}
	return b.execute(ctx, call)
}

func (b funcBreaker) State() State {
	if b.state == nil {
		return Unknown
	}
	return b.state()
}

// Spec is what a circuit breaker is expected to do, stated as
// data: the classic breaker. Closed, it lets calls through and counts
// consecutive failed calls; the FailureThreshold-th opens it. Open, it
// turns every call away at once, and none reaches the dependency. OpenFor
// later it is half-open: it lets up to HalfOpenProbes probes through;
// SuccessesToClose consecutive successful probes close it, and a failed
// probe opens it again. Every call through it, retries included, ends
// within CallTimeout.
//
// A call fails when the dependency answers with an error or does not
// answer before the caller gives up. A call that the breaker let through
// before it changed state (a slow call that ends after the breaker
// opened) may count in the new state or not: gobreaker ignores such
// results, failsafe-go counts them.
type Spec struct {
	// FailureThreshold is the number of consecutive failed calls that
	// opens a closed breaker. Required.
	FailureThreshold int
	// OpenFor is how long the breaker stays open before it lets a probe
	// through (failsafe-go's Delay, gobreaker's Timeout). Required.
	OpenFor time.Duration
	// HalfOpenProbes is the most calls a half-open breaker lets through
	// to the dependency, in total per half-open spell (default 1).
	HalfOpenProbes int
	// ProbesInFlight makes HalfOpenProbes bound the probes in flight at
	// once rather than in total: failsafe-go counts this way.
	ProbesInFlight bool
	// SuccessesToClose is the number of consecutive successful probes
	// that closes a half-open breaker (default 1).
	SuccessesToClose int
	// CallTimeout is the longest a call through the breaker may take,
	// retries included. Required.
	CallTimeout time.Duration
	// FailFast is the longest a call the breaker turns away may take
	// (default 0: at once, as in virtual time it is).
	FailFast time.Duration
	// Slack is how late (or early) a breaker may change state or give up
	// a call, for breakers that jitter their delays (default 0: exactly
	// on time, as in virtual time they are).
	Slack time.Duration
}

func (s Spec) withDefaults() Spec {
	if s.HalfOpenProbes == 0 {
		s.HalfOpenProbes = 1
	}
	if s.SuccessesToClose == 0 {
		s.SuccessesToClose = 1
	}
	return s
}

// Validate reports every problem with s (after defaults), each naming
// the field and the value.
func (s Spec) Validate() error {
	s = s.withDefaults()
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("breaker: Spec."+format, args...))
	}
	if s.FailureThreshold < 1 {
		bad("FailureThreshold = %d: must be at least 1", s.FailureThreshold)
	}
	if s.OpenFor <= 0 {
		bad("OpenFor = %v: must be positive", s.OpenFor)
	}
	if s.HalfOpenProbes < 1 {
		bad("HalfOpenProbes = %d: must be at least 1 (0 means 1)", s.HalfOpenProbes)
	}
	if s.SuccessesToClose < 1 {
		bad("SuccessesToClose = %d: must be at least 1 (0 means 1)", s.SuccessesToClose)
	}
	if !s.ProbesInFlight && s.HalfOpenProbes >= 1 && s.SuccessesToClose > s.HalfOpenProbes {
		bad("SuccessesToClose = %d exceeds HalfOpenProbes = %d: such a breaker never closes (set ProbesInFlight if probes are bounded at once, not in total)",
			s.SuccessesToClose, s.HalfOpenProbes)
	}
	if s.CallTimeout <= 0 {
		bad("CallTimeout = %v: must be positive", s.CallTimeout)
	}
	if s.FailFast < 0 {
		bad("FailFast = %v: must not be negative", s.FailFast)
	}
	if s.Slack < 0 {
		bad("Slack = %v: must not be negative", s.Slack)
	}
	return errors.Join(errs...)
}

// String is the spec in words, one line.
func (s Spec) String() string {
	s = s.withDefaults()
	probes := fmt.Sprintf("at most %d probe%s per half-open spell", s.HalfOpenProbes, plural(s.HalfOpenProbes))
	if s.ProbesInFlight {
		probes = fmt.Sprintf("at most %d probe%s in flight", s.HalfOpenProbes, plural(s.HalfOpenProbes))
	}
	str := fmt.Sprintf("opens after %d consecutive failure%s, stays open %v, %s, closes after %d success%s, calls end within %v",
		s.FailureThreshold, plural(s.FailureThreshold), s.OpenFor, probes, s.SuccessesToClose, pluralEs(s.SuccessesToClose), s.CallTimeout)
	if s.FailFast > 0 {
		str += fmt.Sprintf(", turned-away calls within %v", s.FailFast)
	}
	if s.Slack > 0 {
		str += fmt.Sprintf(" (slack %v)", s.Slack)
	}
	return str
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func pluralEs(n int) string {
	if n == 1 {
		return ""
	}
	return "es"
}

// TargetName is the name of the fake dependency in breaker schedules,
// unless Config.Bounds names another.
const TargetName = "dep"

// Kinds are the outages the fake dependency of a breaker check
// takes, mildest first, and what a call sees under each:
//
//   - latency: the answer comes Delay later (twice Delay for Both
//     directions), or when the fault ends, if sooner;
//   - blackhole: a call made while it holds, or in flight when it begins,
//     is never answered (the caller's timeout ends it);
//   - reset: calls fail with ECONNRESET; calls in flight when it begins
//     fail then;
//   - down: calls are refused (ECONNREFUSED); calls in flight when it
//     begins fail with an unexpected EOF;
//   - pause: nothing answers until the fault ends, then every call waiting
//     is answered;
//   - restart: calls in flight fail with an unexpected EOF; later calls
//     are answered;
//   - stop: as down;
//   - crash: calls are refused; calls in flight fail with ECONNRESET.
//
// Outside outages, the dependency answers every call after
// Config.Latency.
func Kinds() []toxics.Kind {
	return []toxics.Kind{toxics.KindLatency, toxics.KindBlackhole, toxics.KindReset, toxics.KindDown,
		toxics.KindPause, toxics.KindRestart, toxics.KindStop, toxics.KindCrash}
}

// maxCalls bounds the calls of one run, so that a typo in a rate
// does not eat the machine's memory.
const maxCalls = 1_000_000

// DefaultIterations is the number of schedules a breaker check
// explores when Config.Iterations is zero.
const DefaultIterations = 500

// Config is what a breaker check explores: a breaker, what it is
// expected to do, and the load and outages it meets. Only New and Spec are
// required.
type Config struct {
	// New builds the breaker under test as the service builds it. It is
	// called once per run, inside the run's testing/synctest bubble, so
	// the breaker reads the virtual clock. Runs go side by side on every
	// core, so New may be called from several goroutines at once. Required.
	New func() Breaker
	// Spec is what the breaker is expected to do. Required.
	Spec Spec
	// Rate is the calls per second made through the breaker around the
	// moments its behaviour can change, whatever the breaker does
	// (default 100); away from them the gaps grow with the distance, to
	// at most half of OpenFor (see workload.go).
	Rate float64
	// Latency is how long the healthy dependency takes to answer
	// (default 1ms).
	Latency time.Duration
	// Bounds bound the drawn outages. Bounds.Targets defaults to the
	// dependency, TargetName, with the kinds latency, blackhole, reset
	// and down; it must name one target, with kinds among Kinds.
	// Horizon defaults to three times OpenFor plus CallTimeout (at least
	// 1s), Resolution to 10ms, MaxSteps to 4.
	Bounds properties.Bounds
	// Cooldown is how long a run goes on after the last outage ends
	// (default: the time the spec gives the breaker to close again, plus
	// half a second).
	Cooldown time.Duration
	// Iterations is the number of schedules explored before shrinking
	// (default DefaultIterations; SHAKEDOWN_ITERATIONS overrides
	// it).
	Iterations int
	// ShrinkTime bounds rapid's shrinking of a counterexample: it has
	// the first half of ShrinkTime (default 10s; its -rapid.shrinktime
	// bounds it too). Then properties.Minimize takes the schedule to a
	// 1-minimal one (steps removed, merged, made milder), bounded by a
	// number of runs (2000) and the test's deadline, not by time, so
	// that its result does not depend on the machine's speed. A run
	// takes about a millisecond (50ms for a 60s configuration).
	ShrinkTime time.Duration
	// Dir is where Check writes a failing schedule and its report
	// (default testdata/shakedown/<test name>).
	Dir string

	every time.Duration // the period, once normalized
}

// normalize validates c and fills in its defaults.
func (c Config) normalize() (Config, error) {
	var errs []error
	if c.New == nil {
		errs = append(errs, errors.New("breaker: Config.New is nil: give the function that builds the breaker under test"))
	}
	if err := c.Spec.Validate(); err != nil {
		errs = append(errs, err)
	}
	c.Spec = c.Spec.withDefaults()
	if c.Rate == 0 {
		c.Rate = 100
	}
	if !(c.Rate > 0 && c.Rate <= 1e6) || math.IsNaN(c.Rate) {
		errs = append(errs, fmt.Errorf("breaker: Config.Rate = %v: must be in (0, 1e6] calls per second", c.Rate))
	}
	if c.Latency == 0 {
		c.Latency = time.Millisecond
	}
	if c.Rate > 0 && c.Rate <= 1e6 {
		c.every = time.Duration(nextPrime(int64(math.Round(1e9 / c.Rate))))
	}
	if c.Latency < 0 {
		errs = append(errs, fmt.Errorf("breaker: Config.Latency = %v: must be positive", c.Latency))
	}
	if c.Cooldown < 0 {
		errs = append(errs, fmt.Errorf("breaker: Config.Cooldown = %v: must not be negative", c.Cooldown))
	}
	if c.Iterations < 0 {
		errs = append(errs, fmt.Errorf("breaker: Config.Iterations = %d: must not be negative", c.Iterations))
	}
	if c.Iterations == 0 {
		c.Iterations = DefaultIterations
	}
	if c.ShrinkTime < 0 {
		errs = append(errs, fmt.Errorf("breaker: Config.ShrinkTime = %v: must not be negative", c.ShrinkTime))
	}
	if c.ShrinkTime == 0 {
		c.ShrinkTime = 10 * time.Second
	}
	b := &c.Bounds
	if len(b.Targets) == 0 {
		b.Targets = []properties.TargetKinds{{Name: TargetName, Kinds: []toxics.Kind{toxics.KindLatency, toxics.KindBlackhole, toxics.KindReset, toxics.KindDown}}}
	}
	if len(b.Targets) != 1 {
		errs = append(errs, fmt.Errorf("breaker: Config.Bounds.Targets names %d targets: a breaker check has one, the dependency", len(b.Targets)))
	} else {
		for _, k := range b.Targets[0].Kinds {
			if !slices.Contains(Kinds(), k) {
				errs = append(errs, fmt.Errorf("breaker: Config.Bounds.Targets[0] (%q): kind %q is not one the fake dependency takes (%v)", b.Targets[0].Name, k, Kinds()))
			}
		}
	}
	if b.Resolution == 0 {
		b.Resolution = 10 * time.Millisecond
	}
	if b.MaxSteps == 0 {
		b.MaxSteps = 4
	}
	if b.Horizon == 0 && b.Resolution > 0 && c.Spec.OpenFor > 0 {
		h := max(time.Second, 3*c.Spec.OpenFor+c.Spec.CallTimeout)
		b.Horizon = (h + b.Resolution - 1) / b.Resolution * b.Resolution
	}
	if err := b.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Cooldown == 0 {
		c.Cooldown = c.recoveryBound() + 500*time.Millisecond
	}
	if c.every > 0 && b.Horizon > 0 {
		if n := (b.Horizon + c.Cooldown) / c.every; n > maxCalls {
			errs = append(errs, fmt.Errorf("breaker: Config: a run would make %d calls (Rate %g/s over Bounds.Horizon %v + Cooldown %v); at most %d: lower the rate or shorten the runs",
				n, c.Rate, b.Horizon, c.Cooldown, maxCalls))
		}
	}
	return c, errors.Join(errs...)
}

// period is the time between two calls: close to 1/Rate, but a prime
// number of nanoseconds, so that no call starts at the same instant as a
// fault's edge, a timeout or another call's end (all round numbers), where
// the order of two events would be a matter of scheduling.
func (c Config) period() time.Duration { return c.every }

func nextPrime(n int64) int64 {
	if n <= 2 {
		return 2
	}
	if n%2 == 0 {
		n++
	}
	for ; ; n += 2 {
		prime := true
		for d := int64(3); d*d <= n; d += 2 {
			if n%d == 0 {
				prime = false
				break
			}
		}
		if prime {
			return n
		}
	}
}

// recoveryBound is how long after the last outage ends the spec gives
// the breaker to be closed again: calls in flight end (CallTimeout), a
// last failure may open it (OpenFor), then SuccessesToClose probes, one
// per call, each answered after Latency.
func (c Config) recoveryBound() time.Duration {
	s := c.Spec
	return s.CallTimeout + s.OpenFor + 2*s.Slack + time.Duration(s.SuccessesToClose)*c.period() + c.Latency
}
