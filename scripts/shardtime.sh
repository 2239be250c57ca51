#!/usr/bin/env bash
# Measures the wall time of the example checks run whole (SHAKEDOWN_SHARD=1/1)
# and in N shards (SHAKEDOWN_SHARD=i/N), one shard after another on this
# machine, and the projected wall time of the N shards run in parallel (the
# slowest shard's).
#
#   scripts/shardtime.sh [-n SHARDS] [-s RAPID_SEED] [-o DIR] [WHAT...]
#
# WHAT is check (examples/checkout TestResilience, make check's test) or
# quickstart (examples/quickstart); default both. Every shard draws from one
# seed (RAPID_SEED, default 20261203), as in CI. The test binary is built
# once, so the times are the checks' own. Each run starts without what the
# examples' earlier runs saved (testdata/shakedown and testdata/rapid). The
# load average is printed with each run; every run's output is kept in DIR
# (default a new directory under /tmp).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

shards=4 seed=20261203 out=""
while getopts "n:s:o:h" opt; do
	case $opt in
	n) shards=$OPTARG ;;
	s) seed=$OPTARG ;;
	o) out=$OPTARG ;;
	*) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[[ $shards =~ ^[1-9][0-9]*$ ]] || { echo "shardtime: -n $shards: want a positive number of shards" >&2; exit 2; }
[[ $seed =~ ^[1-9][0-9]*$ ]] || { echo "shardtime: -s $seed: want a positive seed" >&2; exit 2; }
whats=("$@")
[ ${#whats[@]} -gt 0 ] || whats=(check quickstart)
out=${out:-$(mktemp -d /tmp/shakedown-shardtime.XXXXXX)}
mkdir -p "$out"

export SHAKEDOWN_POSTGRES_IMAGE=${SHAKEDOWN_POSTGRES_IMAGE:-shakedown.local/postgres:15}
export SHAKEDOWN_REDIS_IMAGE=${SHAKEDOWN_REDIS_IMAGE:-shakedown.local/redis:7}
export SHAKEDOWN_TESTSERVER_IMAGE=${SHAKEDOWN_TESTSERVER_IMAGE:-shakedown.local/testserver:latest}
export TESTCONTAINERS_RYUK_DISABLED=true TESTCONTAINERS_HOST_OVERRIDE=${TESTCONTAINERS_HOST_OVERRIDE:-127.0.0.1}
export RAPID_SEED=$seed

# runone WHAT PKG RUN SHARD: one run, its wall time in seconds on stdout.
runone() {
	local what=$1 pkg=$2 run=$3 shard=$4 start end rc=0
	rm -rf "$pkg"/testdata/shakedown "$pkg"/testdata/rapid
	start=$(date +%s.%N)
	(cd "$pkg" && SHAKEDOWN_SHARD=$shard "$out/$what.test" -test.run "$run" -test.count=1 -test.timeout 45m -test.v) \
		>"$out/$what-${shard/\//of}.log" 2>&1 || rc=$?
	end=$(date +%s.%N)
	echo "shardtime: $what shard $shard: $(echo "$end - $start" | bc) s, exit $rc, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
	echo "$end - $start" | bc
}

for what in "${whats[@]}"; do
	case $what in
	check) pkg=examples/checkout run='^TestResilience$' ;;
	quickstart) pkg=examples/quickstart run='^TestCacheSurvivesFaults$' ;;
	*) echo "shardtime: $what: want check or quickstart" >&2; exit 2 ;;
	esac
	go test -c -o "$out/$what.test" "./$pkg"
	whole=$(runone "$what" "$pkg" "$run" 1/1)
	sum=0 slowest=0
	for i in $(seq 1 "$shards"); do
		t=$(runone "$what" "$pkg" "$run" "$i/$shards")
		sum=$(echo "$sum + $t" | bc)
		if [ "$(echo "$t > $slowest" | bc)" = 1 ]; then slowest=$t; fi
	done
	rm -rf "$pkg"/testdata/shakedown "$pkg"/testdata/rapid
	printf 'shardtime: %s: whole %.1f s; %d shards one after another %.1f s in all, slowest %.1f s (the projected wall time of the shards in parallel), whole / slowest = %.2f\n' \
		"$what" "$whole" "$shards" "$sum" "$slowest" "$(echo "$whole / $slowest" | bc -l)"
done
echo "shardtime: logs in $out"
