package properties_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shakedown/shakedown/properties"
)

// FuzzLoadSchedule feeds LoadSchedule, the SHAKEDOWN_REPLAY entry point,
// whatever a schedule file may hold: it must never panic, and what it
// accepts must save and load back to the same schedule and seed.
func FuzzLoadSchedule(f *testing.F) {
	for _, seed := range []string{
		`{"test":"TestX","seed":42,"schedule":{"steps":[{"at":"1s","for":"2s","target":"db","fault":{"kind":"blackhole"}}]},"broken":["x"]}`,
		`{"steps":[{"at":"0s","for":"100ms","target":"cache","fault":{"kind":"latency","delay":"50ms"}}]}`,
		`{"steps":[]}`,
		`{"seed":1,"schedule":{"steps":[{"at":"1000h","for":"1s","target":"db","fault":{"kind":"down"}}]}}`,
		`{"schedule":{"steps":[]}} trailing`,
		`{"seed":null}`,
		`[]`,
		``,
	} {
		f.Add([]byte(seed))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "in.json")
		require.NoError(t, os.WriteFile(path, data, 0o644))
		s, seed, hasSeed, err := properties.LoadSchedule(path)
		if err != nil {
			return
		}
		again := filepath.Join(dir, "again.json")
		_, err = properties.SaveSchedule(again, "TestFuzz", &properties.Iteration{Schedule: s, Seed: seed})
		require.NoError(t, err)
		s2, seed2, hasSeed2, err := properties.LoadSchedule(again)
		require.NoError(t, err, "a schedule LoadSchedule accepted must load again once saved")
		require.True(t, hasSeed2)
		require.Equal(t, seed, seed2)
		require.Equal(t, s.String(), s2.String())
		if !hasSeed {
			require.Zero(t, seed)
		}
	})
}
