// Package quickstart is the first property of the README's walkthrough: a
// Redis client with timeouts, checked against generated schedules of link
// and node faults on a real Redis server.
//
// Run it with
//
//	make images && go test -v -run TestCacheSurvivesFaults ./examples/quickstart/
//
// and change the client's timeouts (or the invariants' bounds) to watch
// shakedown find, shrink and report a schedule that breaks them.
package quickstart
