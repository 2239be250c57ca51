package breaker

import "testing"

// ExploreOn is Explore with at most workers bubbles at once.
func ExploreOn(t *testing.T, cfg Config, workers int) (*Result, error) {
	return explore(t, cfg, false, workers)
}
