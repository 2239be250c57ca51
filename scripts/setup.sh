#!/usr/bin/env bash
# Prepares a machine for shakedown's tests and main job: the Go toolchain on
# PATH, the Debian packages the build and the process backend need, and a
# Docker daemon that answers. `make setup` runs it, and `make images`,
# `make test` and `make check` depend on it, so the README's two commands
# work on a fresh machine. It installs only what is missing, and only as
# root with apt-get; elsewhere it says what to install.
set -euo pipefail

step() { printf '\n==== [%4ds] setup: %s\n' "$SECONDS" "$*"; }
fail() {
	printf '\nsetup: %s\n' "$*" >&2
	exit 1
}
export DEBIAN_FRONTEND=noninteractive

if [ "${SHAKEDOWN_SETUP:-}" = skip ]; then
	echo "setup: skipped (SHAKEDOWN_SETUP=skip): the machine is prepared otherwise"
	exit 0
fi

step "toolchain"
if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
	export PATH=/usr/local/go/bin:$PATH
fi
command -v go >/dev/null || fail "go is not installed (expected in PATH or /usr/local/go/bin)"
go version

step "Debian packages"
# redis-server and postgresql-15 serve the harness's process backend, whose
# tests run in CI too (the container backend uses the images built below).
missing=()
for pair in debootstrap:debootstrap make:make flock:util-linux tar:tar docker:docker.io gcc:gcc \
	redis-server:redis-server /usr/lib/postgresql/15/bin/postgres:postgresql-15; do
	bin=${pair%%:*}
	if [[ $bin == /* ]]; then [ -x "$bin" ] && continue; else command -v "$bin" >/dev/null && continue; fi
	missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
		fail "missing Debian packages: ${missing[*]} (install them, or run this as root on Debian)"
	fi
	echo "installing: ${missing[*]}"
	# Packages must not start their services here: the tests start their own.
	policy=/usr/sbin/policy-rc.d
	had_policy=false
	[ -e "$policy" ] && had_policy=true
	$had_policy || { printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"; }
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	$had_policy || rm -f "$policy"
else
	echo "all present (debootstrap, make, flock, tar, docker, gcc, redis-server, postgresql-15)"
fi

step "Docker daemon"
if ! docker info >/dev/null 2>&1; then
	echo "the daemon does not answer; starting it"
	if command -v service >/dev/null && service docker start; then
		:
	elif command -v dockerd >/dev/null; then
		nohup dockerd >/tmp/dockerd.log 2>&1 &
	fi
	for _ in $(seq 1 60); do
		docker info >/dev/null 2>&1 && break
		sleep 1
	done
	docker info >/dev/null 2>&1 ||
		fail "the Docker daemon did not answer within 60 s (see /tmp/dockerd.log if dockerd was started here)"
fi
docker version --format 'client {{.Client.Version}}, server {{.Server.Version}}'

