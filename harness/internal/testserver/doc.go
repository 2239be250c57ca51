// Command testserver is the program inside shakedown.local/testserver, a tiny
// image (FROM scratch, one static binary) that harness tests run as a generic
// container. It needs nothing from a registry and starts in milliseconds.
//
// It serves two things:
//
//   - TCP on :7000 (-echo): every byte a client sends comes back.
//   - HTTP on :8080 (-http): GET /healthz answers 200 "ok"; GET
//     /dial?addr=host:port tries a TCP dial to addr with a 1 s timeout and
//     answers 200 "ok", or 502 with the dial error. A test uses it to ask one
//     container whether it can reach another over a Docker network.
//
// It prints "testserver ready" once both listeners are open, and stops
// cleanly on SIGTERM or SIGINT (as PID 1 in a container it must handle them
// itself).
//
// Run it by hand with
//
//	go run ./harness/internal/testserver -echo 127.0.0.1:7000 -http 127.0.0.1:8080
//
// and build its image with harness/images/build.sh testserver.
package main
