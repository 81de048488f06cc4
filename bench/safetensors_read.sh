#!/usr/bin/env bash
# Reading a safetensors file from the page cache: how fast is the reader
# (formats/safetensors: Open, then touch every tensor byte) next to cat?
#
# 1. Generates a ~512 MiB model-like safetensors file once, in a temp dir, by
#    the benchmark's own helper (BenchmarkReadAll writes $SAFETENSORS_BENCH_FILE
#    when it does not exist).
# 2. Warms the page cache (cat, twice), then times `cat FILE > /dev/null`
#    $RUNS times. With EVICT=1 it first drops the file from the cache (sync,
#    dd iflag=nocache), so the cache holds the folios readahead makes rather
#    than those the writer's writes left; the writer writes aligned 4 MiB
#    runs, which keeps the two alike (see alignedWriter in writer.go).
# 3. Runs BenchmarkReadAll on the same file ($COUNT runs of $BENCHTIME).
# 4. Prints both throughputs (median, MB/s = 10^6 bytes/s) and their ratio.
#    The goal is a ratio of at least 0.80.
#
# Usage: bench/safetensors_read.sh   (env: RUNS=9 COUNT=9 BENCHTIME=5x EVICT=0)
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-9}
COUNT=${COUNT:-9}
BENCHTIME=${BENCHTIME:-5x}
pkg=./formats/safetensors/

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
file="$work/bench.safetensors"
export SAFETENSORS_BENCH_FILE="$file"

echo "generating $file" >&2
go test -run '^$' -bench '^BenchmarkReadAll$' -benchtime 1x "$pkg" >/dev/null
size=$(stat -c %s "$file")
echo "file: $size bytes" >&2

# Warm the page cache (see above).
if [ "${EVICT:-0}" = 1 ]; then
  sync "$file"
  dd if="$file" iflag=nocache count=0 status=none
fi
cat "$file" >/dev/null
cat "$file" >/dev/null

median() { sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

cat_rates=()
for _ in $(seq "$RUNS"); do
  start=$(date +%s%N)
  cat "$file" >/dev/null
  end=$(date +%s%N)
  cat_rates+=("$(awk -v b="$size" -v ns="$((end - start))" 'BEGIN {printf "%.1f", b / (ns / 1e9) / 1e6}')")
done
cat_mbs=$(printf '%s\n' "${cat_rates[@]}" | median)
echo "cat runs (MB/s): ${cat_rates[*]}" >&2

go test -run '^$' -bench '^BenchmarkReadAll$' -benchtime "$BENCHTIME" -count "$COUNT" "$pkg" | tee "$work/bench.txt" >&2
go_mbs=$(awk '/^BenchmarkReadAll/ {for (i = 1; i <= NF; i++) if ($(i+1) == "MB/s") print $i}' "$work/bench.txt" | median)

echo "cat from page cache:          $cat_mbs MB/s (median of $RUNS)"
echo "safetensors Open + read all:  $go_mbs MB/s (median of $COUNT)"
awk -v g="$go_mbs" -v c="$cat_mbs" 'BEGIN {printf "ratio: %.2f (goal >= 0.80)\n", g / c}'
