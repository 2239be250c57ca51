#!/usr/bin/env bash
# What the determinism self-check costs: runs the simulated tests of
# package properties (every run of Check and Explore in a synctest bubble)
# N times with SHAKEDOWN_SELFCHECK=0 and N times with =1, alternating, and
# prints each time and the means. With it on, every simulated run runs
# twice, so the tests' simulated part should take about twice as long.
#
#   scripts/selfcheck-cost.sh [N]     (default 5)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

n=${1:-5}
tests='^(TestExploreCatchesMissingTimeout|TestCheckFailsAndReplays|TestCheckPassesWithTimeout|TestExploreIterations|TestExploreErrors|TestCheckSimulatedRedis|TestExploreSimulatedRedisCrashLosesWrites)$'
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/properties.test" ./properties
cd properties # the test binary expects the package directory, as go test runs it
declare -A sum=([0]=0 [1]=0)
for i in $(seq "$n"); do
	for mode in 0 1; do
		start=$(date +%s%N)
		SHAKEDOWN_SELFCHECK=$mode "$tmp/properties.test" -test.run "$tests" -test.count=1 -rapid.nofailfile >"$tmp/out" 2>&1 ||
			{ cat "$tmp/out"; echo "run $i with SHAKEDOWN_SELFCHECK=$mode failed" >&2; exit 1; }
		ms=$((($(date +%s%N) - start) / 1000000))
		sum[$mode]=$((sum[$mode] + ms))
		echo "run $i SHAKEDOWN_SELFCHECK=$mode: ${ms} ms (load $(cut -d' ' -f1 /proc/loadavg))"
	done
done
off=$((sum[0] / n)) on=$((sum[1] / n))
echo "mean: off ${off} ms, on ${on} ms: the self-check adds $((on - off)) ms ($(((on - off) * 100 / (off > 0 ? off : 1)))%)"
