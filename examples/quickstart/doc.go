// Package quickstart is the first property of the README's walkthrough: a
// Redis client with timeouts, checked against generated schedules of link
// and node faults on a real Redis server.
//
// Run it with
//
//	make images && SHAKEDOWN_REDIS_IMAGE=shakedown.local/redis:7 go test -v -run TestCacheSurvivesFaults ./examples/quickstart/
//
// (leave the variable out where a registry is reachable: the official
// redis:7-alpine image is used then)
//
// and change the client's timeouts (or the invariants' bounds) to watch
// shakedown find, shrink and report a schedule that breaks them.
package quickstart
