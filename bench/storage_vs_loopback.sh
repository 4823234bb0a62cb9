#!/usr/bin/env bash
# Object storage against loopback TCP (BenchmarkVsLoopback), interleaved: ROUNDS rounds, each
# running every variant once with the scaler binary's malloc settings (internal/malloctune) and
# once with glibc's defaults (any glibc.malloc.* tunable turns malloctune off); prints the ratio
# echo/storage of every run and the median per variant. Each run also shows the CPU time per op of
# all processes involved (on a loaded machine it moves less than the wall clock).
#
#   bash bench/storage_vs_loopback.sh [ROUNDS] [BENCH-REGEXP]    # defaults: 3 'VsLoopback/64MiB'
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
bench=${2:-VsLoopback/64MiB}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go test -c -o "$dir/storage.test" ./storage
for ((i = 1; i <= rounds; i++)); do
  for malloc in malloctune glibc-defaults; do
    tunables=""
    [ "$malloc" = glibc-defaults ] && tunables=glibc.malloc.tcache_count=7 # the default value
    GLIBC_TUNABLES=$tunables "$dir/storage.test" -test.run '^$' -test.bench "$bench" -test.benchtime 10x |
      awk -v m="$malloc" '/^Benchmark/ {
        for (f = 3; f < NF; f++) {
          if ($(f+1) == "ratio") r = $f; if ($(f+1) == "storage-MB/s") s = $f; if ($(f+1) == "echo-MB/s") e = $f
          if ($(f+1) == "storage-cpu-ms/op") sc = $f; if ($(f+1) == "echo-cpu-ms/op") ec = $f }
        name = $1; sub(/-[0-9]+$/, "", name)
        printf "%-16s %-40s storage %5.0f MB/s %5.1f cpu-ms  echo %5.0f MB/s %5.1f cpu-ms  ratio %.2f\n", m, name, s, sc, e, ec, r }'
  done
done | tee "$dir/runs"
echo "medians of the ratio echo/storage (target >= 0.5):"
awk '{ key = $1 " " $2; v[key] = v[key] " " $NF } END { for (k in v) print k, v[k] }' "$dir/runs" | sort |
  while read -r malloc name values; do
    median=$(echo "$values" | tr ' ' '\n' | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
    printf "  %-16s %-40s %s   (runs: %s)\n" "$malloc" "$name" "$median" "$values"
  done
