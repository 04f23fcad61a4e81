#!/usr/bin/env bash
# Runs the side-by-side benchmarks (ginsession, scs, gin-contrib/sessions,
# bare gin and a raw gomemcache Get) and the memory store's scale
# measurements, and writes under benchmarks/results/:
#
#   bench.txt      raw output of go test -bench (-count 6 -benchmem)
#   benchstat.txt  benchstat summaries: per benchmark, then libraries side by side
#   scale.txt      TestScale: bytes per session at 1M sessions, Get latency during a sweep
#   table.md       markdown table of medians and overheads (cmd/benchtable)
#
# The Go test binary starts and stops its own memcached (/usr/bin/memcached)
# on a free loopback port; this script starts nothing else.
#
# Environment:
#   COUNT=6         runs of each benchmark
#   BENCHTIME=1s    go test -benchtime
#   BENCH=.         go test -bench regexp
#   SCALE=1         0 skips TestScale (about 15 s and 2 GB of memory)
#   README=         a README whose <!-- bench:start --> … <!-- bench:end --> region
#                   to rewrite with the table, e.g. README=../README.md
set -euo pipefail
cd "$(dirname "$0")"

BENCHSTAT=golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
COUNT=${COUNT:-6}
BENCHTIME=${BENCHTIME:-1s}
BENCH=${BENCH:-.}
SCALE=${SCALE:-1}
README=${README:-}

if [ ! -x /usr/bin/memcached ]; then
	echo "run.sh: /usr/bin/memcached is missing (apt-get install memcached, or make memcached)" >&2
	exit 1
fi

mkdir -p results
cmd="go test -run '^\$' -bench $BENCH -benchmem -count $COUNT"
[ "$BENCHTIME" = 1s ] || cmd="$cmd -benchtime $BENCHTIME"

echo "== $cmd" >&2
# CI=true turns a memcached that fails to start into a failure, not a skip.
CI=true go test -run '^$' -bench "$BENCH" -benchmem -count "$COUNT" -benchtime "$BENCHTIME" -timeout 60m |
	tee results/bench.txt

echo "== benchstat" >&2
{
	go run "$BENCHSTAT" results/bench.txt
	echo
	echo "# Libraries side by side (vs base: bare gin)"
	echo
	go run "$BENCHSTAT" -col /lib results/bench.txt
} >results/benchstat.txt

scale_flag=()
if [ "$SCALE" != 0 ]; then
	echo "== GINSESSION_SCALE=1 go test -run '^TestScale\$' -v" >&2
	GINSESSION_SCALE=1 go test -run '^TestScale$' -count 1 -v -timeout 10m | tee results/scale.txt
	scale_flag=(-scale results/scale.txt)
fi

readme_flag=()
[ -z "$README" ] || readme_flag=(-readme "$README")
go run ./cmd/benchtable -in results/bench.txt -out results/table.md -command "$cmd" "${scale_flag[@]}" "${readme_flag[@]}"
echo "== wrote results/bench.txt, results/benchstat.txt${scale_flag:+, results/scale.txt} and results/table.md" >&2
