package properties

import "testing"

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
