package properties

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/shakedown/shakedown/properties/internal/search"
	"github.com/shakedown/shakedown/sim"
)

// corpusEntry is one schedule of a test's regression corpus.
type corpusEntry struct {
	path     string
	schedule sim.Schedule
}

// loadCorpus reads a test's regression corpus: the schedule file Check
// wrote for its last failure (schedule.json in dir, default
// testdata/shakedown/<test name>) and every *.json in dir's corpus
// folder, in name order. A file that does not parse, a schedule without
// steps, or one that aims at a target the bounds lack (by default every
// target of the World) or gives it a fault it does not take, is an
// error, before any run.
func loadCorpus(test, dir string, b Bounds) ([]corpusEntry, error) {
	if dir == "" {
		dir = filepath.Join("testdata", "shakedown", search.SafeName(test))
	}
	paths, err := filepath.Glob(filepath.Join(dir, "corpus", "*.json"))
	if err != nil {
		return nil, fmt.Errorf("properties: corpus: %w", err)
	}
	slices.Sort(paths)
	if saved := filepath.Join(dir, "schedule.json"); fileExists(saved) {
		paths = append([]string{saved}, paths...)
	}
	m := newMinimizer(b, nil)
	var out []corpusEntry
	for _, p := range paths {
		s, _, _, err := search.LoadSchedule(p)
		if err != nil {
			return nil, fmt.Errorf("properties: corpus: %w", err)
		}
		if len(s.Steps) == 0 {
			return nil, fmt.Errorf("properties: corpus: %s has no steps", p)
		}
		if err := s.Validate(m.boundTargets()); err != nil {
			return nil, fmt.Errorf("properties: corpus: %s aims at what the World (Bounds.Targets) lacks: %w", p, err)
		}
		out = append(out, corpusEntry{path: p, schedule: s})
	}
	return out, nil
}

// replayCorpus runs each corpus schedule once, after the baseline and
// before the exploration, as Go's fuzzing replays testdata/fuzz. A
// schedule that breaks an invariant, and breaks it again every time it
// is rerun, is the exploration's failure, shrunk as others are; it
// reports whether one was. A schedule that holds counts in the coverage.
func (x *explorer) replayCorpus(corpus []corpusEntry) bool {
	held := 0
	defer func() {
		if len(corpus) > 0 {
			x.t.Logf("shakedown: corpus: %d of %d schedules held", held, len(corpus))
		}
	}()
	for i, e := range corpus {
		if !x.fits(e.schedule.Horizon(), 5) {
			x.stopped = "the test's deadline cut the corpus short"
			return false
		}
		it := x.run(e.schedule, fmt.Sprintf("corpus %d/%d (%s)", i+1, len(corpus), e.path), nil)
		if it == nil {
			return false // fatal; recorded
		}
		if !broke(it) {
			held++
			continue
		}
		x.t.Logf("shakedown: corpus schedule %s broke again:\n%s", e.path, it.Findings)
		x.confirm(it, x.reproduce, "reproducing", broke)
		if why := x.explained(it, fmt.Sprintf("corpus %d/%d", i+1, len(corpus))); why != "" {
			x.setAside(it, why)
			continue
		}
		if !it.confirmed() {
			x.flakies = append(x.flakies, it)
			continue
		}
		x.first, x.last = it, it
		x.cache[scheduleKey(it.Schedule)] = it
		x.shrinkStart = time.Now()
		return true
	}
	return false
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
