#!/usr/bin/env bash
# Counts false alarms and misses of shakedown's own verdicts, idle and with
# the CPUs loaded, as a shared CI runner would be.
#
#   scripts/falsealarms.sh [-n RUNS] [-m idle|loaded|harsh|both] [-w WHAT]... [-o DIR]
#
# WHAT is one of
#   check       the main job (make check): the resilient checkout variant
#               must hold (a failure is a false alarm), and the naive one and
#               the slow-recovery one (resilient but for a breaker open for a
#               minute) must be caught (a pass is a miss)
#   quickstart  examples/quickstart: a resilient client, so any failure is a
#               false alarm
#   suite       the README's test command (make test): any failing test is a
#               false alarm
# (default: check and quickstart). Each run's output is kept in DIR (default
# a new directory under /tmp), and the last lines printed are the counts.
# Each run starts without what the examples' earlier runs saved
# (examples/*/testdata/shakedown and testdata/rapid, which a Check replays
# first), so that a catch is the exploration's own.
#
# "loaded" starts, beside each run, what made false alarms on shared runners
# (a load average of 5 to 12 on 2 cores): a Go build with the race detector,
# over and over from a cold cache, a race test of the sim package in a loop,
# and two container suites in loops (the harness's Postgres and Redis tests
# and its container tests, with the race detector: containers started,
# faulted and removed beside the run's own). "harsh" adds two busy processes
# per core to that (a load of 10 to 16 here). "both" is idle, then loaded.
# The load average is printed with each run. Everything it starts is stopped
# on exit. A run that is not "ok" keeps what it saved (its
# reports and histories, each run's machine and dependencies' CPU waits
# among them) in DIR/<mode>-<what>-<run>.testdata.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

runs=10 mode=both out="" whats=()
while getopts "n:m:w:o:h" opt; do
	case $opt in
	n) runs=$OPTARG ;;
	m) mode=$OPTARG ;;
	w) whats+=("$OPTARG") ;;
	o) out=$OPTARG ;;
	*) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
	esac
done
[ ${#whats[@]} -gt 0 ] || whats=(check quickstart)
case $mode in idle | loaded | harsh) modes=("$mode") ;; both) modes=(idle loaded) ;; *) echo "falsealarms: -m $mode: want idle, loaded, harsh or both" >&2; exit 2 ;; esac
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "falsealarms: -n $runs: want a positive number of runs" >&2; exit 2; }
for w in "${whats[@]}"; do
	case $w in check | quickstart | suite) ;; *) echo "falsealarms: -w $w: want check, quickstart or suite" >&2; exit 2 ;; esac
done
out=${out:-$(mktemp -d /tmp/shakedown-falsealarms.XXXXXX)}
mkdir -p "$out"

# The images and the local image variables, once (make images is a no-op
# when built). When the three images the variables name are there already,
# nothing is built, not even by make check (-o images): on a shared machine,
# whoever built them owns them.
check=(make -s check)
if docker image inspect "${SHAKEDOWN_POSTGRES_IMAGE:-shakedown.local/postgres:15}" "${SHAKEDOWN_REDIS_IMAGE:-shakedown.local/redis:7}" \
	"${SHAKEDOWN_TESTSERVER_IMAGE:-shakedown.local/testserver:latest}" >/dev/null 2>&1; then
	check=(make -s -o images check)
else
	eval "$(make -s images 2>/dev/null | grep '^export ' || true)"
fi
export SHAKEDOWN_POSTGRES_IMAGE=${SHAKEDOWN_POSTGRES_IMAGE:-shakedown.local/postgres:15}
export SHAKEDOWN_REDIS_IMAGE=${SHAKEDOWN_REDIS_IMAGE:-shakedown.local/redis:7}
export SHAKEDOWN_TESTSERVER_IMAGE=${SHAKEDOWN_TESTSERVER_IMAGE:-shakedown.local/testserver:latest}
export TESTCONTAINERS_RYUK_DISABLED=true TESTCONTAINERS_HOST_OVERRIDE=${TESTCONTAINERS_HOST_OVERRIDE:-127.0.0.1}

loaders=()
# loader CMD runs CMD over and over in a process group of its own, so that
# load_stop stops it with everything it started (go test's test binary
# among them).
loader() {
	# Their temporary files (go's work directories, the tests' own) go
	# under the loaders' directory, which load_stop removes: a loader
	# killed mid-build leaves nothing in /tmp.
	setsid env TMPDIR="$loaders_dir/tmp" GOTMPDIR="$loaders_dir/tmp" bash -c "while :; do $1; done" >/dev/null 2>&1 &
	loaders+=($!)
}
load_start() {
	local cache
	cache=$(mktemp -d /tmp/shakedown-load.XXXXXX)
	loaders_dir=$cache
	mkdir "$cache/tmp"
	# A cold race build of the whole module, again and again.
	loader "GOCACHE=$cache/gocache go build -race -o /dev/null ./... || true; rm -rf $cache/gocache"
	# The race detector on a test suite, in a loop.
	loader "GOCACHE=$cache/testcache go test -race -count=1 ./sim/ || true"
	# Two container suites beside: other containers starting, faulted and
	# going.
	loader "GOCACHE=$cache/testcache go test -race -count=1 -run 'TestPostgres\$|TestRedis\$' ./harness/ || true"
	loader "GOCACHE=$cache/testcache2 go test -race -count=1 -run 'TestContainer' ./harness/ || true"
	[ "$1" = harsh ] || return 0
	for _ in $(seq $((2 * $(nproc)))); do
		loader ":"
	done
}
load_stop() {
	local p c pid
	for p in "${loaders[@]}"; do
		kill -- "-$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	for p in "${loaders[@]}"; do # until every process of each group is gone
		for _ in $(seq 50); do pgrep -g "$p" >/dev/null || break; sleep 0.1; done
		pkill -9 -g "$p" 2>/dev/null || true
	done
	loaders=()
	# What the killed loaders' tests had started (the next Env would reap
	# it too): containers labelled with a process that is gone.
	for c in $(docker ps -aq --filter label=shakedown.pid 2>/dev/null); do
		pid=$(docker inspect -f '{{index .Config.Labels "shakedown.pid"}}' "$c" 2>/dev/null) || continue
		kill -0 "$pid" 2>/dev/null || docker rm -f "$c" >/dev/null 2>&1 || true
	done
	[ -n "${loaders_dir:-}" ] && rm -rf "$loaders_dir"
	loaders_dir=""
}
trap load_stop EXIT

# verdict WHAT LOG STATUS prints "ok", "FALSE ALARM: ..." or "MISS: ...".
verdict() {
	local what=$1 log=$2 status=$3 failed
	failed=$(grep -E '^\s*--- FAIL: ' "$log" | sed -E 's/^\s*--- FAIL: ([^ ]+).*/\1/' | sort -u | tr '\n' ' ' || true)
	case $what in
	check)
		if grep -qE -- '--- FAIL: TestResilience/resilient\b' "$log"; then echo "FALSE ALARM: resilient variant broke"
		elif grep -qE -- '--- FAIL: TestResilience/naive\b' "$log"; then echo "MISS: naive variant not caught"
		elif grep -qE -- '--- FAIL: TestResilience/slow_recovery\b' "$log"; then echo "MISS: slow-recovery variant not caught"
		elif [ "$status" != 0 ]; then echo "ERROR: exit $status ($failed)"
		else echo ok; fi ;;
	*)
		if [ "$status" = 0 ]; then echo ok
		elif [ -n "$failed" ]; then echo "FALSE ALARM: $failed"
		else echo "ERROR: exit $status"; fi ;;
	esac
}

declare -A total alarms misses
printf '%-7s %-10s %3s %8s %6s  %s\n' mode what run seconds load verdict
for m in "${modes[@]}"; do
	[ "$m" != idle ] && load_start "$m" && sleep 20 # let the load build up
	for w in "${whats[@]}"; do
		for i in $(seq "$runs"); do
			log=$out/$m-$w-$i.log
			case $w in
			check) cmd=("${check[@]}") ;;
			quickstart) cmd=(go test -count=1 -v -run '^TestCacheSurvivesFaults$' ./examples/quickstart/) ;;
			suite) cmd=(make -s test) ;;
			esac
			rm -rf examples/*/testdata/shakedown examples/*/testdata/rapid
			start=$SECONDS
			set +e
			"${cmd[@]}" >"$log" 2>&1
			status=$?
			set -e
			v=$(verdict "$w" "$log" "$status")
			if [ "$v" != ok ]; then
				for d in examples/*/testdata/shakedown; do
					[ -d "$d" ] && mkdir -p "$out/$m-$w-$i.testdata" && cp -r "$d" "$out/$m-$w-$i.testdata/$(basename "$(dirname "$(dirname "$d")")")"
				done
			fi
			load=$(cut -d' ' -f1 /proc/loadavg)
			caught="" # the main job: after how many schedules each buggy variant was caught
			[ "$w" = check ] && caught=$(grep -oE 'the (naive|slow-recovery) variant is caught, as expected, after [0-9]+ schedule\(s\); [^;.]*(; shrunk in [^,]* over [0-9]+ runs, (1-minimal|not shown 1-minimal|not 1-minimal|not shrunk))?' "$log" |
				sed -E 's/.*the ([a-z-]+) variant is caught, as expected, after ([0-9]+) schedule\(s\); /\1 caught after \2 schedules; /; s/; shrunk in [^,]* over [0-9]+ runs, /, /' | paste -sd'|' - |
				sed -E 's/\|/, /g; s/^(.+)$/  (\1)/' || true)
			printf '%-7s %-10s %3d %8d %6s  %s%s\n' "$m" "$w" "$i" $((SECONDS - start)) "$load" "$v" "$caught"
			k=$m/$w
			total[$k]=$((${total[$k]:-0} + 1))
			case $v in FALSE*) alarms[$k]=$((${alarms[$k]:-0} + 1)) ;; MISS*) misses[$k]=$((${misses[$k]:-0} + 1)) ;; esac
		done
	done
	[ "$m" != idle ] && load_stop
done
echo
echo "logs: $out"
for k in "${!total[@]}"; do
	printf '%-20s runs %3d  false alarms %3d  misses %3d\n' "$k" "${total[$k]}" "${alarms[$k]:-0}" "${misses[$k]:-0}"
done | sort
