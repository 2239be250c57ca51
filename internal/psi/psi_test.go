package psi

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		name, in string
		parse    func([]byte) time.Duration
		want     time.Duration
	}{
		{"some and full", "some avg10=1.50 avg60=0.20 avg300=0.05 total=17839583\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", ParseSome, 17839583 * time.Microsecond},
		{"some only (older kernels)", "some avg10=0.00 avg60=0.00 avg300=0.00 total=42\n", ParseSome, 42 * time.Microsecond},
		{"full first", "full avg10=0.00 total=7\nsome avg10=0.00 total=9\n", ParseSome, 9 * time.Microsecond},
		{"no some line", "full avg10=0.00 total=7\n", ParseSome, -1},
		{"no total", "some avg10=0.00\n", ParseSome, -1},
		{"total not a number", "some total=x\n", ParseSome, -1},
		{"pressure empty", "", ParseSome, -1},
		{"cgroup v2 cpu.stat", "usage_usec 654496000\nuser_usec 481884000\nsystem_usec 172612000\n", ParseUsage, 654496 * time.Millisecond},
		{"usage not first", "nr_periods 0\nusage_usec 12\n", ParseUsage, 12 * time.Microsecond},
		{"no usage line", "user_usec 5\n", ParseUsage, -1},
		{"usage not a number", "usage_usec many\n", ParseUsage, -1},
		{"a prefix is not the name", "usage_usecs 5\n", ParseUsage, -1},
		{"cpu.stat empty", "", ParseUsage, -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, c.parse([]byte(c.in)))
		})
	}
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	pressure, stat := filepath.Join(dir, "cpu.pressure"), filepath.Join(dir, "cpu.stat")
	require.NoError(t, os.WriteFile(pressure, []byte("some avg10=0.00 avg60=0.00 avg300=0.00 total=1500\n"), 0o644))
	require.NoError(t, os.WriteFile(stat, []byte("usage_usec 2000\n"), 0o644))
	d, ok := ReadSome(pressure)
	require.True(t, ok)
	require.Equal(t, 1500*time.Microsecond, d)
	d, ok = ReadUsage(stat)
	require.True(t, ok)
	require.Equal(t, 2*time.Millisecond, d)

	_, ok = ReadSome(filepath.Join(dir, "missing"))
	require.False(t, ok, "a file that is not there")
	_, ok = ReadUsage(filepath.Join(dir, "missing"))
	require.False(t, ok, "a file that is not there")
	require.NoError(t, os.WriteFile(pressure, []byte("full total=3\n"), 0o644))
	_, ok = ReadSome(pressure)
	require.False(t, ok, "no some line")
}
