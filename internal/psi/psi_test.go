package psi

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseSome(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     time.Duration
	}{
		{"some and full", "some avg10=1.50 avg60=0.20 avg300=0.05 total=17839583\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", 17839583 * time.Microsecond},
		{"some only (older kernels)", "some avg10=0.00 avg60=0.00 avg300=0.00 total=42\n", 42 * time.Microsecond},
		{"full first", "full avg10=0.00 total=7\nsome avg10=0.00 total=9\n", 9 * time.Microsecond},
		{"no some line", "full avg10=0.00 total=7\n", -1},
		{"no total", "some avg10=0.00\n", -1},
		{"total not a number", "some total=x\n", -1},
		{"empty", "", -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, ParseSome([]byte(c.in)))
		})
	}
}

func TestReadSome(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "cpu.pressure")
	require.NoError(t, os.WriteFile(f, []byte("some avg10=0.00 avg60=0.00 avg300=0.00 total=1500\n"), 0o644))
	d, ok := ReadSome(f)
	require.True(t, ok)
	require.Equal(t, 1500*time.Microsecond, d)
	_, ok = ReadSome(filepath.Join(dir, "missing"))
	require.False(t, ok, "a file that is not there")
	require.NoError(t, os.WriteFile(f, []byte("full total=3\n"), 0o644))
	_, ok = ReadSome(f)
	require.False(t, ok, "no some line")
}

func TestParseUsage(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     time.Duration
	}{
		{"cgroup v2 cpu.stat", "usage_usec 654496000\nuser_usec 481884000\nsystem_usec 172612000\n", 654496 * time.Millisecond},
		{"not first", "nr_periods 0\nusage_usec 12\n", 12 * time.Microsecond},
		{"no usage line", "user_usec 5\n", -1},
		{"not a number", "usage_usec many\n", -1},
		{"a prefix is not the name", "usage_usecs 5\n", -1},
		{"empty", "", -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, ParseUsage([]byte(c.in)))
		})
	}
	f := filepath.Join(t.TempDir(), "cpu.stat")
	require.NoError(t, os.WriteFile(f, []byte("usage_usec 2000\n"), 0o644))
	d, ok := ReadUsage(f)
	require.True(t, ok)
	require.Equal(t, 2*time.Millisecond, d)
	_, ok = ReadUsage(f + ".missing")
	require.False(t, ok)
}
