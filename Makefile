# shakedown's build, test and CI entry points (GNU make, Go, Docker).
#
#   make setup    install what is missing and start Docker (scripts/setup.sh)
#   make images   setup, then build the local container images (harness/images/build.sh)
#   make test     images, then the whole test suite: $(GO_TEST)
#   make check    images, then the checkout example's resilience check
#   make lint     gofmt, go vet (Linux and macOS), staticcheck, actionlint
#   make fuzz     every fuzz target of every package, FUZZTIME (50000x) each
#
# The images come from Debian packages, so no registry is needed. To use other
# images, set SHAKEDOWN_POSTGRES_IMAGE / SHAKEDOWN_REDIS_IMAGE /
# SHAKEDOWN_TESTSERVER_IMAGE and choose what `make images` builds with IMAGES,
# e.g. `make test IMAGES=testserver` with the official postgres and redis.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c

# The test line, shared by `make test`, README and CI.
# Packages run one at a time (-p 1): the real-time suites measure latency
# against bounds of a few hundred milliseconds, and two of them sharing two
# cores with the race detector on make every bound a coin toss.
GO_TEST := go test -race -count=1 -p 1 -timeout 60m ./...

# What `make images` builds: build.sh's arguments (debian = postgres + redis).
IMAGES ?= debian testserver

SHAKEDOWN_POSTGRES_IMAGE ?= shakedown.local/postgres:15
SHAKEDOWN_REDIS_IMAGE ?= shakedown.local/redis:7
SHAKEDOWN_TESTSERVER_IMAGE ?= shakedown.local/testserver:latest
export SHAKEDOWN_POSTGRES_IMAGE SHAKEDOWN_REDIS_IMAGE SHAKEDOWN_TESTSERVER_IMAGE

# Ryuk, testcontainers' reaper, is an image from a registry; shakedown reaps
# what it starts by label instead.
export TESTCONTAINERS_RYUK_DISABLED := true
# Inside a container (as CI is) testcontainers would look for published ports
# on the default gateway; they are published on loopback.
export TESTCONTAINERS_HOST_OVERRIDE ?= 127.0.0.1

STATICCHECK := go run honnef.co/go/tools/cmd/staticcheck@v0.8.2
ACTIONLINT := go run github.com/rhysd/actionlint/cmd/actionlint@v1.7.12

# The main job: the checkout example's resilience check, with its report.
CHECK := go test -count=1 -v -timeout 45m -run '^TestResilience$$' ./examples/checkout/

# go test -fuzz takes one target of one package at a time; the targets are
# found with go test -list, so a new Fuzz function is run without a change here.
# The budget is a count of inputs, not a duration: up to Go 1.26, a duration
# races the fuzzing coordinator's own deadline (go.dev/issue/75804), and a
# target that found nothing can fail with "context deadline exceeded" and no
# input written, more often on a loaded machine.
FUZZTIME ?= 50000x

.PHONY: setup images test check lint fuzz

setup:
	scripts/setup.sh

images: setup
	harness/images/build.sh $(IMAGES)

test: images
	$(GO_TEST)

check: images
	$(CHECK)

# lint vets for macOS too, where many users run their tests: everything
# builds there (without Linux's Pdeathsig); only Linux runs the suite.
lint:
	@unformatted=$$(gofmt -l .); \
	if [ -n "$$unformatted" ]; then echo "gofmt -l: not formatted:"; echo "$$unformatted"; exit 1; fi
	go vet ./...
	GOOS=darwin go vet ./...
	$(STATICCHECK) ./...
	$(ACTIONLINT) .github/workflows/ci.yml .github/workflows/resilience.yml

fuzz:
	@for pkg in $$(go list ./...); do \
		for target in $$(go test -list '^Fuzz' "$$pkg" | grep '^Fuzz' || true); do \
			echo "== $$pkg $$target ($(FUZZTIME))"; \
			go test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) "$$pkg"; \
		done; \
	done
