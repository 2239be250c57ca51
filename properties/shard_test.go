package properties_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/properties"
	"github.com/shakedown/shakedown/properties/internal/search"
	"github.com/shakedown/shakedown/sim"
)

// explored runs Explore as shard (SHAKEDOWN_SHARD; "" unset) and returns
// the schedule of each iteration it ran, by iteration number.
func explored(t *testing.T, shard string, cfg properties.Config) (map[int]string, *properties.Result) {
	t.Helper()
	if shard != "" {
		t.Setenv("SHAKEDOWN_SHARD", shard)
	}
	out := map[int]string{}
	properties.OnDrawn(t, func(k int, s sim.Schedule, mine bool) {
		if mine {
			out[k] = s.String()
		}
	})
	cfg.Dir = t.TempDir()
	res, err := properties.Explore(t, cfg)
	require.NoError(t, err)
	require.Equal(t, len(out), res.Coverage.Runs, "a run for each iteration of the shard (the baseline is not counted)")
	return out, res
}

// TestShardsSplitTheExploration: three shards run disjoint iterations
// that together are the iterations, and the schedules, of one job
// (SHAKEDOWN_SHARD=1/1), each shard running the baseline and the corpus.
func TestShardsSplitTheExploration(t *testing.T) {
	rapidSeed(t, 20261203)
	cfg := simConfig(newFake(200*time.Millisecond, allKinds...), robust()...)
	cfg.Iterations = 12

	var whole map[int]string
	t.Run("whole", func(t *testing.T) {
		var res *properties.Result
		whole, res = explored(t, "1/1", cfg)
		require.Equal(t, 12, res.Iterations)
	})
	require.Len(t, whole, 12)
	again := map[int]string{}
	for i := 1; i <= 3; i++ {
		t.Run(fmt.Sprintf("shard%d", i), func(t *testing.T) {
			got, res := explored(t, fmt.Sprintf("%d/3", i), cfg)
			require.Equal(t, 4, res.Iterations, "a third of the iterations")
			require.NotNil(t, res.Baseline, "every shard runs the baseline")
			for k, s := range got {
				require.Equal(t, i-1, (k-1)%3, "iteration %d is shard %d's", k, (k-1)%3+1)
				_, dup := again[k]
				require.False(t, dup, "iteration %d ran in two shards", k)
				again[k] = s
			}
		})
	}
	require.Equal(t, whole, again, "the shards' schedules, iteration by iteration, are the whole job's")

	// Unsharded, the same seed draws the same first schedule: the guide
	// differs only once runs have recorded in it.
	plain, _ := explored(t, "", cfg)
	require.Equal(t, whole[1], plain[1])
}

// TestShardRunsTheCorpus: every shard replays the corpus before its part.
func TestShardRunsTheCorpus(t *testing.T) {
	rapidSeed(t, 7)
	t.Setenv("SHAKEDOWN_SHARD", "2/2")
	cfg := simConfig(newFake(200*time.Millisecond, allKinds...), robust()...)
	cfg.Iterations = 4
	cfg.Dir = t.TempDir()
	writeCorpus(t, cfg.Dir, "a.json", longBlackhole)
	res, err := properties.Explore(t, cfg)
	require.NoError(t, err)
	require.Equal(t, 2, res.Iterations)
	require.Equal(t, 3, res.Coverage.Runs, "the corpus schedule and the shard's two")
}

func TestShardAndExploreErrors(t *testing.T) {
	rapidSeed(t, 1)
	for _, c := range []struct{ env, value, want string }{
		{"SHAKEDOWN_SHARD", "3", `SHAKEDOWN_SHARD="3" is not i/n`},
		{"SHAKEDOWN_SHARD", "a/4", `SHAKEDOWN_SHARD="a/4" is not i/n`},
		{"SHAKEDOWN_SHARD", "0/4", `SHAKEDOWN_SHARD="0/4": the shard must be between 1 and 4 (counted from 1)`},
		{"SHAKEDOWN_SHARD", "5/4", `SHAKEDOWN_SHARD="5/4": the shard must be between 1 and 4`},
		{"SHAKEDOWN_SHARD", "1/0", `SHAKEDOWN_SHARD="1/0": the number of shards must be at least 1`},
		{"SHAKEDOWN_EXPLORE", "0", `SHAKEDOWN_EXPLORE="0": a budget of schedules must be positive`},
		{"SHAKEDOWN_EXPLORE", "soon", `SHAKEDOWN_EXPLORE="soon" is neither a number of schedules (500) nor a positive duration (20m)`},
		{"SHAKEDOWN_EXPLORE", "-5m", `SHAKEDOWN_EXPLORE="-5m" is neither`},
		{"SHAKEDOWN_EXPLORE", "100000", `SHAKEDOWN_EXPLORE="100000" asks for more schedules than rapid's -rapid.checks`},
	} {
		t.Run(c.env+"="+c.value, func(t *testing.T) {
			t.Setenv(c.env, c.value)
			f := newFake(200*time.Millisecond, allKinds...)
			cfg := simConfig(f, robust()...)
			cfg.Dir = t.TempDir()
			_, err := properties.Explore(t, cfg)
			require.ErrorContains(t, err, c.want)
			require.Zero(t, f.resets.Load(), "no run")
		})
	}
	t.Run("shards without a seed", func(t *testing.T) {
		rapidSeed(t, 0)
		t.Setenv("SHAKEDOWN_SHARD", "1/2")
		cfg := simConfig(newFake(200*time.Millisecond, allKinds...), robust()...)
		cfg.Dir = t.TempDir()
		_, err := properties.Explore(t, cfg)
		require.ErrorContains(t, err, `SHAKEDOWN_SHARD="1/2": the shards must draw from one seed`)
		require.ErrorContains(t, err, "RAPID_SEED")
	})
}

// TestExploreBudget: SHAKEDOWN_EXPLORE as a number of schedules replaces
// the iterations; as a time, the search stops when it is spent.
func TestExploreBudget(t *testing.T) {
	cfg := simConfig(newFake(200*time.Millisecond, allKinds...), robust()...)
	cfg.Iterations = 2
	cfg.Dir = t.TempDir()
	t.Setenv("SHAKEDOWN_EXPLORE", "5")
	res, err := properties.Explore(t, cfg)
	require.NoError(t, err)
	require.Equal(t, 5, res.Iterations)

	t.Setenv("SHAKEDOWN_EXPLORE", "1ns")
	res, err = properties.Explore(t, cfg)
	require.NoError(t, err)
	require.Zero(t, res.Iterations)
	require.Equal(t, "SHAKEDOWN_EXPLORE=1ns: the time is spent", res.Stopped)
}

// TestNightlyWritesTheCorpus: a nightly exploration that finds a failure
// writes its schedule into the corpus folder, named by its signature; a
// rerun that finds it again (now from the corpus) writes no second file,
// and the file replays as the failure.
func TestNightlyWritesTheCorpus(t *testing.T) {
	t.Setenv("SHAKEDOWN_EXPLORE", "10")
	cfg := simConfig(newFake(0, allKinds...), properties.MaxLatency{Max: time.Second})
	cfg.Dir = t.TempDir()
	for run := range 2 {
		res, err := properties.Explore(t, cfg)
		require.NoError(t, err)
		require.NotNil(t, res.Failure)
		properties.Summarize(t, cfg, res) // as Check does
		s, err := search.ReadSummary(filepath.Join(cfg.Dir, "summary.json"))
		require.NoError(t, err)
		files, err := filepath.Glob(filepath.Join(cfg.Dir, "corpus", "*.json"))
		require.NoError(t, err)
		require.Len(t, files, 1, "run %d", run)
		require.Regexp(t, `^found-[0-9a-f]{12}\.json$`, filepath.Base(files[0]))
		if run == 0 {
			require.Equal(t, []string{filepath.Join("corpus", filepath.Base(files[0]))}, s.CorpusAdded)
			require.Equal(t, "report.html", s.Findings[0].Report)
			saved, _, _, err := search.LoadSchedule(files[0])
			require.NoError(t, err)
			require.Equal(t, res.Failure.Schedule, saved)
		} else {
			require.Empty(t, s.CorpusAdded, "the corpus holds it already")
			require.Zero(t, res.Iterations, "found by the corpus, before exploring")
		}
	}
}

// TestShardWithoutIterations: a shard that the iterations do not reach
// (4 shards of 3 iterations) runs the baseline, passes, and writes a
// summary that says which shard it was; its invariants without evidence
// are for the merged summary to judge.
func TestShardWithoutIterations(t *testing.T) {
	rapidSeed(t, 3)
	t.Setenv("SHAKEDOWN_SHARD", "4/4")
	cfg := simConfig(newFake(200*time.Millisecond, allKinds...), robust()...)
	cfg.Iterations = 3
	cfg.Dir = t.TempDir()
	properties.Check(t, cfg) // fails t if the shard's lack of runs were an error
	s, err := search.ReadSummary(filepath.Join(cfg.Dir, "summary.json"))
	require.NoError(t, err)
	require.Equal(t, "4/4", s.Shard)
	require.Equal(t, "held", s.Verdict)
	require.Zero(t, s.Coverage.Schedules)
	for _, inv := range s.Invariants {
		require.Equal(t, "unjudged", inv.Verdict, inv.Name)
	}
}
