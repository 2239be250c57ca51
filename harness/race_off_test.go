//go:build !race

package harness

// raceDetector reports whether the test binary was built with -race.
const raceDetector = false
