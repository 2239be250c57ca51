package properties

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/shakedown/shakedown/properties/internal/search"
	"github.com/shakedown/shakedown/sim"
)

// This file holds how a Check's exploration is split across CI jobs
// (SHAKEDOWN_SHARD) and how long a nightly one explores
// (SHAKEDOWN_EXPLORE); see the package documentation.

// Environment variables of CI runs (names only: Check reads them).
const (
	envShard   = "SHAKEDOWN_SHARD"
	envExplore = "SHAKEDOWN_EXPLORE"
)

// part is the part of the exploration this process runs: a shard of the
// iterations, and a budget of time.
type part struct {
	// index (0-based) and count of the shard; count 0: not sharded.
	index, count int
	// skipped counts the iterations drawn for other shards.
	skipped int
	// budget bounds the time of the search (SHAKEDOWN_EXPLORE=20m),
	// from start; 0: none.
	budget time.Duration
	start  time.Time
}

// drawnHook, when set (by the package's tests), sees every iteration's
// number and schedule, and whether this shard runs it.
var drawnHook func(k int, s sim.Schedule, mine bool)

// parsePart reads SHAKEDOWN_SHARD and SHAKEDOWN_EXPLORE (empty is unset,
// as a CI expression that chose nothing leaves them) and returns cfg with
// the iterations SHAKEDOWN_EXPLORE asks for. A bad value is an error
// naming the variable and the value.
func parsePart(cfg Config) (Config, *part, error) {
	p := &part{start: time.Now()}
	if v := os.Getenv(envShard); v != "" {
		i, n, err := parseShard(v)
		if err != nil {
			return cfg, nil, err
		}
		if seed := rapidSeed(); n > 1 && seed == "0" {
			return cfg, nil, fmt.Errorf("properties: %s=%q: the shards must draw from one seed, or their schedules overlap: set RAPID_SEED (or -rapid.seed) to the same nonzero number in every shard", envShard, v)
		}
		p.index, p.count = i-1, n
	}
	v := os.Getenv(envExplore)
	if v == "" {
		return cfg, p, nil
	}
	checks, hasChecks := search.RapidChecks()
	if n, err := strconv.Atoi(v); err == nil {
		if n < 1 {
			return cfg, nil, fmt.Errorf("properties: %s=%q: a budget of schedules must be positive", envExplore, v)
		}
		if hasChecks && n > checks {
			return cfg, nil, fmt.Errorf("properties: %s=%q asks for more schedules than rapid's -rapid.checks (%d) lets it draw: set RAPID_CHECKS=%d (or -rapid.checks) too", envExplore, v, checks, n)
		}
		cfg.Iterations = n
		return cfg, p, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return cfg, nil, fmt.Errorf("properties: %s=%q is neither a number of schedules (500) nor a positive duration (20m)", envExplore, v)
	}
	p.budget = d
	// Until the time is spent, or rapid's bound: RAPID_CHECKS raises it.
	cfg.Iterations = max(checks, 1)
	return cfg, p, nil
}

// parseShard reads "i/n", 1 <= i <= n.
func parseShard(v string) (i, n int, err error) {
	a, b, ok := strings.Cut(v, "/")
	if ok {
		i, err = strconv.Atoi(a)
		if err == nil {
			n, err = strconv.Atoi(b)
		}
	}
	switch {
	case !ok || err != nil:
		return 0, 0, fmt.Errorf("properties: %s=%q is not i/n (shard i of n, counted from 1: 1/4 to 4/4)", envShard, v)
	case n < 1:
		return 0, 0, fmt.Errorf("properties: %s=%q: the number of shards must be at least 1", envShard, v)
	case i < 1 || i > n:
		return 0, 0, fmt.Errorf("properties: %s=%q: the shard must be between 1 and %d (counted from 1)", envShard, v, n)
	}
	return i, n, nil
}

// rapidSeed is rapid's -rapid.seed (RAPID_SEED) as a string, "0" when
// unset (rapid draws one at random then).
func rapidSeed() string {
	if f := flag.Lookup("rapid.seed"); f != nil {
		return f.Value.String()
	}
	return "0"
}

// mine reports whether the iteration numbered k (from 1, counted over
// all shards) belongs to this shard. The search notes another shard's
// schedule in the guide without running it, as the shard that runs it
// does when it holds, so every shard decodes the draws that follow alike.
func (x *explorer) mine(k int, s sim.Schedule) bool {
	p := x.part
	mine := p == nil || p.count == 0 || (k-1)%p.count == p.index
	if drawnHook != nil {
		drawnHook(k, s, mine)
	}
	return mine
}

// note records in the guide what a run of the search that did not fail
// for good contributes: the pairs it applied, or, when sharded, the
// pairs its schedule drew (which every shard knows without the run).
// flaky is a run that broke but did not reproduce, which only a sharded
// exploration records.
func (x *explorer) note(s sim.Schedule, it *Iteration, flaky bool) {
	switch {
	case x.part != nil && x.part.count > 0:
		x.guide.recordDrawn(s)
	case !flaky:
		x.guide.record(it.History)
	}
}

// spent reports whether SHAKEDOWN_EXPLORE's time is spent, saying so in
// x.stopped.
func (x *explorer) spent() bool {
	p := x.part
	if p == nil || p.budget == 0 || time.Since(p.start) < p.budget {
		return false
	}
	x.stopped = fmt.Sprintf("%s=%v: the time is spent", envExplore, p.budget)
	return true
}

// recordDrawn notes the pairs of s's steps as applied.
func (c *guide) recordDrawn(s sim.Schedule) {
	for _, st := range s.Steps {
		if st.Fault == nil {
			continue
		}
		if i, ok := c.byKey[pairKey{st.Target, st.Fault.Kind()}]; ok {
			c.applied[i] = true
		}
	}
	c.update()
}

// sharded reports whether SHAKEDOWN_SHARD splits the exploration in more
// than one part: a shard's own runs may then have no evidence for an
// invariant that another shard's have, so Check logs what has none and
// leaves the verdict to the merged summary (cmd/shakedown summary).
func sharded() bool {
	_, n, err := parseShard(os.Getenv(envShard))
	return err == nil && n > 1
}
