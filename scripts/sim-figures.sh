#!/usr/bin/env bash
# The figures of simulation on every core (issue 13, item 3), before and
# after side by side: the simulated network's TestNetFigures (bubbles and
# sim.Run schedules per second, one bubble at a time and one per core) and
# the breaker's TestFigures (whole explorations), built at a base revision
# and at the working tree, and run alternately, round by round, each line
# with the load average. Both builds run the working tree's benchmark code
# (sim/net_bench_test.go, properties/breaker/bench_test.go), so they
# measure the same things.
#
#   scripts/sim-figures.sh [base-rev] [rounds]     (default main, 3)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

base=${1:-main}
rounds=${2:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/base"
git archive "$base" | tar -x -C "$tmp/base"
cp sim/net_bench_test.go "$tmp/base/sim/"
cp properties/breaker/bench_test.go "$tmp/base/properties/breaker/"
(cd "$tmp/base" && go test -c -o "$tmp/sim.base" ./sim && go test -c -o "$tmp/breaker.base" ./properties/breaker)
go test -c -o "$tmp/sim.new" ./sim
go test -c -o "$tmp/breaker.new" ./properties/breaker

simtests='TestNetFigures/(bubble_kv|bubble_http|run_schedule)'
brktests='^TestFigures(SixtySeconds)?$/^(explore|parallel)$/^gobreaker$'
for i in $(seq "$rounds"); do
	for build in base new; do
		echo "== round $i, $build ($(git rev-parse --short "$([ $build = base ] && echo "$base" || echo HEAD)")$([ $build = new ] && [ -n "$(git status --porcelain sim properties/breaker)" ] && echo +changes)), load $(cut -d' ' -f1-3 /proc/loadavg)"
		(cd sim && "$tmp/sim.$build" -test.run "$simtests" -test.v -simnet.figures) | grep -E '^    net_bench|^=== RUN   TestNetFigures/' | paste - - | sed -E 's/=== RUN   TestNetFigures\///; s/net_bench_test.go:[0-9]+: //'
		(cd properties/breaker && "$tmp/breaker.$build" -test.run "$brktests" -test.v -breaker.figures) | grep -E 'bench_test.go' | sed -E 's/^ +bench_test.go:[0-9]+: /  /'
	done
done
