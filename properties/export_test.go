package properties

import (
	"testing"

	"github.com/shakedown/shakedown/sim"
)

// CheckTB and ExploreTB let the package's external tests run Check and
// Explore on a testing.TB of their own, which records what they report
// instead of failing the test.
func CheckTB(t testing.TB, cfg Config) {
	t.Helper()
	check(t, cfg)
}

func ExploreTB(t testing.TB, cfg Config) (*Result, error) {
	t.Helper()
	return explore(t, cfg, false)
}

func ReplayTB(t testing.TB, cfg Config, path string) {
	t.Helper()
	replay(t, cfg, path)
}

// Summarize writes the summary of res as Check does.
func Summarize(t testing.TB, cfg Config, res *Result) {
	t.Helper()
	summarize(t, cfg, res)
}

// Neighbours are the schedules one move milder than s within b.
func Neighbours(b Bounds, s sim.Schedule) []sim.Schedule { return neighbours(b, s) }

// EarlyEnds counts the confirming runs of res that ended early.
func EarlyEnds(res *Result) int { return res.early }

// RunsAhead counts the shrink candidates of res run ahead, side by side.
func RunsAhead(res *Result) int { return res.ahead }

// SetEndEarly turns the early end of confirming runs on or off until the
// test ends.
func SetEndEarly(t testing.TB, on bool) {
	was := endEarly
	endEarly = on
	t.Cleanup(func() { endEarly = was })
}

// SetControlInSimulation runs the control beside a confirmed failure in
// simulated checks too (real runs always have it) until the test ends.
func SetControlInSimulation(t testing.TB, on bool) {
	was := controlInSimulation
	controlInSimulation = on
	t.Cleanup(func() { controlInSimulation = was })
}

// SetMachineInSimulation gives every simulated run the machine record
// that m returns for its history, as a real run has, until the test ends.
func SetMachineInSimulation(t testing.TB, m func(h *sim.History) *sim.Machine) {
	was := machineInSimulation
	machineInSimulation = m
	t.Cleanup(func() { machineInSimulation = was })
}

// ControlRuns counts the control runs of res.
func ControlRuns(res *Result) int { return res.cost.Controls }

// SetAside lists why each failure res set aside as the machine's was.
func SetAside(res *Result) []string {
	var out []string
	for _, s := range res.slower {
		out = append(out, s.reason)
	}
	return out
}

// CostLine is Check's time line for res.
func CostLine(res *Result) string { return res.cost.String(res.Elapsed) }

// Unrun is how many candidates of the 1-minimal pass were left unrun.
func Unrun(r *Result) int { return r.unrun }

// SetMinimizeRuns bounds the runs of the 1-minimal pass until the test
// ends.
func SetMinimizeRuns(t testing.TB, n int) {
	was := minimizeRuns
	minimizeRuns = n
	t.Cleanup(func() { minimizeRuns = was })
}
