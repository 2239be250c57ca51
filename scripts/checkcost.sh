#!/usr/bin/env bash
# What a check's verdicts cost: the wall time the fault-free baseline and
# the confirmation of failures add to a Check, beside its other runs, as
# each Check logs it ("shakedown: time: ..."). Goal: at most 25%.
#
#   scripts/checkcost.sh [-n RUNS] [-o DIR]
#
# Measures, RUNS times each (default 3):
#   quickstart   examples/quickstart against a real Redis (a check that holds)
#   sim-pass     properties' TestCheckPassesWithTimeout (simulated, holds)
#   sim-fail     properties' failing child check (simulated, breaks, shrinks)
#   sim-fail-whole   the same with whole confirming runs
#   real-fail    the quickstart's check with no read timeout against a real
#                Redis (TestConfirmCostChild: breaks, hangs until abandoned),
#                its confirming runs ending once the failure is certain
#   real-fail-whole  the same with whole confirming runs (the cost before)
# and prints each run's figures, then the mean added share per check, and
# the load average. Each pair draws the same schedules (-rapid.seed=1).
# Each run's output is kept in DIR (default a new directory under /tmp).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

runs=3 out=""
while getopts "n:o:h" opt; do
	case $opt in
	n) runs=$OPTARG ;;
	o) out=$OPTARG ;;
	*) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
	esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "checkcost: -n $runs: want a positive number of runs" >&2; exit 2; }
out=${out:-$(mktemp -d /tmp/shakedown-checkcost.XXXXXX)}
mkdir -p "$out"

export SHAKEDOWN_POSTGRES_IMAGE=${SHAKEDOWN_POSTGRES_IMAGE:-shakedown.local/postgres:15}
export SHAKEDOWN_REDIS_IMAGE=${SHAKEDOWN_REDIS_IMAGE:-shakedown.local/redis:7}
export SHAKEDOWN_TESTSERVER_IMAGE=${SHAKEDOWN_TESTSERVER_IMAGE:-shakedown.local/testserver:latest}
export TESTCONTAINERS_RYUK_DISABLED=true TESTCONTAINERS_HOST_OVERRIDE=${TESTCONTAINERS_HOST_OVERRIDE:-127.0.0.1}

measure() { # name, then the command
	local name=$1 sum=0 n=0
	shift
	for i in $(seq "$runs"); do
		local log="$out/$name-$i.txt"
		"$@" >"$log" 2>&1 || true
		local line
		line=$(grep -o 'shakedown: time: .*' "$log" | tail -1 || true)
		if [ -z "$line" ]; then
			echo "$name #$i: no time line (see $log)"
			continue
		fi
		local added
		added=$(sed -E 's/.*baseline took [^ ]+ \(([-+0-9.]+)%\), confirming failures [^ ]+ \(([-+0-9.]+)%\) and [0-9]+ control runs beside them [^ ]+ \(([-+0-9.]+)%\).*/\1 \2 \3/' <<<"$line" | awk '{print $1 + $2 + $3}')
		echo "$name #$i: ${line#shakedown: time: }"
		sum=$(awk -v a="$sum" -v b="$added" 'BEGIN{print a + b}')
		n=$((n + 1))
	done
	[ "$n" -gt 0 ] && awk -v s="$sum" -v n="$n" -v name="$name" 'BEGIN{printf "%s: baseline + confirmation + control add %.1f%% on average over %d runs\n", name, s / n, n}' | tee -a "$out/summary.txt"
}

# Each run starts without the failure a run before it saved (a Check
# replays it first, and would find it at once).
quickstart() {
	rm -rf examples/quickstart/testdata/shakedown examples/quickstart/testdata/rapid
	go test -count=1 -v -run '^TestCacheSurvivesFaults$' ./examples/quickstart/
}
sim_fail() { # SHAKEDOWN_TEST_EARLY value
	rm -rf "$out/fragile"
	env SHAKEDOWN_TEST_CHILD=fragile SHAKEDOWN_TEST_EARLY="$1" SHAKEDOWN_TEST_DIR="$out/fragile" \
		go test -count=1 -v -run '^TestCheckChild$' ./properties/ -rapid.nofailfile -rapid.seed=1
}
measure quickstart quickstart
measure sim-pass go test -count=1 -v -run '^TestCheckPassesWithTimeout$' ./properties/
measure sim-fail sim_fail 1
measure sim-fail-whole sim_fail 0
real_fail() { # SHAKEDOWN_TEST_EARLY value
	rm -rf "$out/real-hang"
	env SHAKEDOWN_TEST_CHILD=real-hang SHAKEDOWN_TEST_EARLY="$1" SHAKEDOWN_TEST_DIR="$out/real-hang" \
		go test -count=1 -v -run '^TestConfirmCostChild$' ./properties/ -rapid.nofailfile -rapid.seed=1
}
measure real-fail real_fail 1
measure real-fail-whole real_fail 0
echo "load average: $(uptime | sed 's/.*load average: //')" | tee -a "$out/summary.txt"
echo "logs: $out"
