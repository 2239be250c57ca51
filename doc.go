// Package shakedown is a Go framework for failure-simulation testing: an
// ordinary go test suite that breaks a service's dependencies on purpose
// and checks that the service behaves while they are broken and after they
// heal.
//
// The only way to know that a set of timeouts, retries, pool sizes and
// circuit breakers really holds is to run it against the failures before
// production does. shakedown does that in four moves:
//
//  1. Real dependencies. Postgres, Redis, any container or local process
//     starts per test, each behind an embedded Toxiproxy on 127.0.0.1, and
//     everything is torn down by t.Cleanup.
//  2. Generated fault schedules. rapid draws schedules of latency,
//     partitions, resets, bandwidth limits, crashes, pauses and restarts;
//     when one breaks the service, rapid shrinks it to the smallest schedule
//     that still does, and the failure prints it as JSON with the one
//     command that replays it.
//  3. Invariants over a recorded history. Every operation of the workload
//     and every fault's start and end lands on one timeline; invariants read
//     it: bounded latency, no pool exhaustion, fast failure while a breaker
//     is open, recovery after the faults heal, no lost writes.
//  4. Virtual time. The same schedules run against in-memory fakes under
//     testing/synctest, thousands per second, to explore breaker settings;
//     a schedule found there replays against the real dependencies.
//
// # Packages
//
// This package holds no code; the work is in its subpackages:
//
//   - [github.com/shakedown/shakedown/toxics]: the fault vocabulary. Link
//     faults (Latency, Bandwidth, Slicer, SlowClose, Corrupt, DataLimit,
//     Timeout, Blackhole, Reset, Down) and node faults (Pause, Restart,
//     Stop, Crash) as typed values that validate themselves and read and
//     write JSON. No I/O.
//   - [github.com/shakedown/shakedown/harness]: the real world. An Env per
//     test starts dependencies as containers (testcontainers-go), local
//     processes or existing addresses, puts a Toxiproxy link in front of
//     each, and applies toxics faults to links and nodes.
//   - [github.com/shakedown/shakedown/sim]: time and history. Schedule and
//     Step, the runner that applies a schedule to targets on a clock,
//     workload drivers, the recorded History and its report, and the
//     in-memory network used in virtual time.
//   - [github.com/shakedown/shakedown/properties]: the questions. rapid
//     generators of schedules that shrink well, invariants over a History,
//     and the property check that ties them together, real or simulated.
//   - [github.com/shakedown/shakedown/examples/checkout]: a small service
//     under test, in a naive and a resilient variant, and the suite that
//     tells them apart.
//
// Imports point one way, and TestImportRules in this package enforces it
// with go list -deps:
//
//	toxics      imports nothing of shakedown's
//	sim         imports toxics
//	properties  imports sim and toxics
//	harness     imports toxics (it satisfies sim's Target interface
//	            without importing sim)
//	examples    may import all of them
//
// Only harness imports testcontainers-go and Toxiproxy, so a suite that only
// simulates never compiles a Docker client.
//
// # Running the suite
//
// make test builds the local images and runs go test -race -count=1 ./...
// with them. The images come from Debian packages (harness/images/build.sh),
// so no container registry is needed; SHAKEDOWN_POSTGRES_IMAGE and
// SHAKEDOWN_REDIS_IMAGE select others, such as the official postgres and
// redis images. Tests that need Docker skip without it, unless
// SHAKEDOWN_REQUIRE_DOCKER=1 (as in CI) makes that a failure.
package shakedown
