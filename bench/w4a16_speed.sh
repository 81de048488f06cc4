#!/usr/bin/env bash
# W4A16 (int4 weights in groups of 128) against int8 weight-only on a
# TinyLlama-width 4-layer model (hidden 2048, intermediate 5632, 32 heads,
# 4 KV heads, vocabulary 32000, BF16 head and embedding):
#   - forward: quantize BenchmarkW4A16Speed, the native forward pass at
#     sequence 1 (single-token forward) and 128 (prefill), 1 and 2 threads,
#     the head BF16 in both (as the passes keep it); and, named head-q/, the
#     single-token forward with the head quantized too in both (as
#     quantize --include lm_head.weight does: int8 per channel, int4 g128);
#   - stack: internal/kernels BenchmarkDecodeStackInt4, the 28 projections of
#     the 4 layers at m = 1 (the decoding work without head and attention).
# The two schemes alternate figure by figure for ROUNDS rounds (the machine
# is shared: the load average is printed with every figure and at every
# stage); the summary gives the median and the best (minimum) per figure
# and the ratios w4a16 / int8 of the medians and of the bests (under load
# the best is the steadier estimate of the uncontended cost).
#
#   bash bench/w4a16_speed.sh                     # ROUNDS=5
#   ROUNDS=3 FORWARD_BENCHTIME=3x STACK_BENCHTIME=10x bash bench/w4a16_speed.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
FORWARD_BENCHTIME=${FORWARD_BENCHTIME:-5x}
STACK_BENCHTIME=${STACK_BENCHTIME:-10x}

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go test -c -o "$dir/kernels.test" ./internal/kernels
go test -c -o "$dir/quantize.test" ./quantize

echo "# $(date -u +%FT%TZ) $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "# stack: go test ./internal/kernels -run '^\$' -bench DecodeStackInt4 -benchtime $STACK_BENCHTIME -int4.rounds $ROUNDS"
echo "# forward: go test ./quantize -run '^\$' -bench W4A16Speed -benchtime $FORWARD_BENCHTIME -w4a16.rounds $ROUNDS"
echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"
# Each figure: benchmark, wall ms/op, CPU ms/op (all threads), load average.
fig='/^Benchmark/ {
  n = $1; sub(/#[0-9]+/, "", n); sub(/-[0-9]+$/, "", n); cpu = "-"; load = "-"
  for (i = 3; i < NF; i++) { if ($(i+1) == "cpu-ms/op") cpu = $i; if ($(i+1) == "load") load = $i }
  printf "%s %.3f %s %s\n", n, $3 / 1e6, cpu, load
}'
"$dir/kernels.test" -test.run '^$' -test.bench DecodeStackInt4 -test.benchtime "$STACK_BENCHTIME" -int4.rounds "$ROUNDS" |
  awk "$fig" | tee "$dir/all"
echo "# load between: $(cut -d' ' -f1-3 /proc/loadavg)"
"$dir/quantize.test" -test.run '^$' -test.bench W4A16Speed -test.benchtime "$FORWARD_BENCHTIME" -w4a16.rounds "$ROUNDS" |
  awk "$fig" | tee -a "$dir/all"
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
median='
  { v[$1] = v[$1] " " $2; n[$1]++ }
  END {
    for (k in v) {
      split(substr(v[k], 2), a, " ")
      c = n[k]
      med = (c % 2) ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2
      printf "%s %.3f %s\n", k, med, v[k]
    }
  }'
echo "# medians over $ROUNDS rounds, wall ms/op (benchmark median all...)"
awk '{print $1, $2}' "$dir/all" | sort -k1,1 -k2,2n | awk "$median" | sort | tee "$dir/wall"
echo "# medians over $ROUNDS rounds, CPU ms/op, all threads (benchmark median all...)"
awk '$3 != "-" {print $1, $3}' "$dir/all" | sort -k1,1 -k2,2n | awk "$median" | sort | tee "$dir/cpu"
ratio='
  { m[$1] = $2 }
  END {
    for (k in m) {
      if (k ~ /\/int8$/) { b = k; sub(/\/int8$/, "", b); o = b "/w4a16-g128" }
      else if (k ~ /\/I8$/) { b = k; sub(/\/I8$/, "", b); o = b "/I4-g128" }
      else continue
      if (o in m) printf "%s %.3f / %.3f = %.2f\n", b, m[o], m[k], m[o] / m[k]
    }
  }'
echo "# w4a16 / int8, wall (ratio of the medians)"
awk "$ratio" "$dir/wall" | sort
echo "# w4a16 / int8, CPU time (ratio of the medians)"
awk "$ratio" "$dir/cpu" | sort
# The lists after each median are sorted: the third field is the best.
echo "# w4a16 / int8, wall (ratio of the bests)"
awk '{print $1, $3}' "$dir/wall" | awk "$ratio" | sort
echo "# w4a16 / int8, CPU time (ratio of the bests)"
awk '{print $1, $3}' "$dir/cpu" | awk "$ratio" | sort
