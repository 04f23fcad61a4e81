#!/usr/bin/env bash
# Runs the side-by-side benchmarks (ginsession, scs, gin-contrib/sessions,
# bare gin, a raw gomemcache Get and a raw go-redis GET) on memory,
# memcached and Redis, and the memory store's scale measurements, and
# writes under benchmarks/results/:
#
#   bench.txt      raw output of go test -bench -benchmem, COUNT (6) interleaved passes
#   benchstat.txt  benchstat summaries: per benchmark, then libraries side by side
#   scale.txt      TestScale: bytes per session at 1M sessions, Get latency during a sweep
#   table.md       markdown table of medians, overheads and store commands (cmd/benchtable)
#   limiter.txt    the BenchmarkLimiter lines of bench.txt (Limiter beside x/time/rate)
#   load.txt       the machine's load (uptime) before, between and after, and the durations
#
# The Go test binary starts and stops its own memcached (/usr/bin/memcached)
# and redis-server (/usr/bin/redis-server, with a command-counting proxy in
# front of it), each on a free loopback port; this script starts nothing else.
#
# Environment:
#   COUNT=6         runs of each benchmark, as that many passes over all of them
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
if [ ! -x /usr/bin/redis-server ]; then
	echo "run.sh: /usr/bin/redis-server is missing (apt-get install redis-server, or make redis)" >&2
	exit 1
fi

mkdir -p results
start=$(date +%s)
load() { echo "$1: $(uptime)"; }
load start >results/load.txt
cmd="go test -run '^\$' -bench $BENCH -benchmem -count 1"
[ "$BENCHTIME" = 1s ] || cmd="$cmd -benchtime $BENCHTIME"

# The runs are interleaved: COUNT passes over every case, each with
# -count 1, rather than one go test -count COUNT, which runs a case's
# COUNT runs back to back. On a shared machine whose load changes from
# minute to minute, a busy minute then slows one run of every library
# instead of all the runs of one library.
# CI=true turns a memcached or redis-server that fails to start into a
# failure, not a skip.
: >results/bench.txt
for pass in $(seq 1 "$COUNT"); do
	echo "== pass $pass of $COUNT: $cmd" >&2
	CI=true go test -run '^$' -bench "$BENCH" -benchmem -count 1 -benchtime "$BENCHTIME" -timeout 60m |
		tee -a results/bench.txt
	load "after pass $pass" >>results/load.txt
done
grep -E '^(goos|goarch|pkg|cpu|BenchmarkLimiter)' results/bench.txt >results/limiter.txt || true
bench_end=$(date +%s)
load "after the benchmarks ($((bench_end - start)) s)" >>results/load.txt

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
	load "after TestScale" >>results/load.txt
fi

readme_flag=()
[ -z "$README" ] || readme_flag=(-readme "$README")
go run ./cmd/benchtable -in results/bench.txt -out results/table.md -command "$cmd" -passes "$COUNT" "${scale_flag[@]}" "${readme_flag[@]}"
end=$(date +%s)
echo "run.sh took $((end - start)) s" >>results/load.txt
echo "== wrote results/bench.txt, results/benchstat.txt${scale_flag:+, results/scale.txt}, results/table.md and results/load.txt ($((end - start)) s)" >&2
