package sim

import (
	"bytes"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseStall(t *testing.T) {
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
			require.Equal(t, c.want, parseStall([]byte(c.in)))
		})
	}
}

func TestMachineString(t *testing.T) {
	require.Equal(t, "CPU pressure 63%, load 9.1", (&Machine{CPUPressure: 0.63, Load1: 9.1, Waited: -1}).String())
	require.Equal(t, "CPU pressure 0%", (&Machine{Load1: -1, Waited: -1}).String())
	require.Equal(t, "CPU pressure 90%, load 12.0, the test process waited for a CPU 140% of the run, 2 heartbeats late by over 50ms (longest 230ms at 2.1s)",
		(&Machine{CPUPressure: 0.9, Load1: 12, Waited: 1.4, Lapses: []Lapse{
			{From: 500 * time.Millisecond, To: 560 * time.Millisecond, CPU: 0.1},
			{From: 2100 * time.Millisecond, To: 2330 * time.Millisecond, CPU: 0.05},
		}}).String())
	require.Equal(t, "machine load unknown", (*Machine)(nil).String())
}

// A real run says how starved of CPU the machine was, where the kernel
// says; a simulated one never does.
func TestRunMachine(t *testing.T) {
	h, err := Run(t.Context(), Plan{Settings: Settings{Cooldown: 50 * time.Millisecond}})
	require.NoError(t, err)
	if _, err := os.ReadFile("/proc/pressure/cpu"); err != nil {
		require.Nil(t, h.Machine, "no pressure stall information here (%v), yet the run reports some", err)
	} else {
		require.NotNil(t, h.Machine, "the kernel has /proc/pressure/cpu, yet the run reports no machine load")
		require.GreaterOrEqual(t, h.Machine.CPUPressure, 0.0)
		require.LessOrEqual(t, h.Machine.CPUPressure, 1.0)
		require.GreaterOrEqual(t, h.Machine.Load1, 0.0)
		if _, err := os.ReadFile("/proc/self/schedstat"); err == nil {
			require.GreaterOrEqual(t, h.Machine.Waited, 0.0, "schedstat is here, yet the run says nothing of the process's waits")
		}
	}
	synctest.Test(t, func(t *testing.T) {
		h, err := Run(t.Context(), Plan{Settings: Settings{Cooldown: 50 * time.Millisecond}})
		require.NoError(t, err)
		require.Nil(t, h.Machine, "virtual time has no machine")
	})
}

// The report's header says how starved of CPU the machine was, when the
// run says.
func TestReportMachine(t *testing.T) {
	h := sampleHistory()
	var buf bytes.Buffer
	require.NoError(t, WriteReport(&buf, h, ReportOptions{}))
	require.NotContains(t, buf.String(), "the machine:")
	h.Machine = &Machine{CPUPressure: 0.63, Load1: 9.1, Waited: -1}
	buf.Reset()
	require.NoError(t, WriteReport(&buf, h, ReportOptions{}))
	require.Contains(t, buf.String(), "the machine: <b>CPU pressure 63%, load 9.1</b>")
}
