#!/usr/bin/env bash
# int8 against f32: the Linear kernel on TinyLlama's layers
# (internal/kernels BenchmarkLinearInt8) and the whole forward pass
# of a 2-layer TinyLlama-shaped model (quantize BenchmarkForwardInt8VsF32),
# optionally against a baseline revision, in interleaved rounds; prints
# every figure and the median per benchmark (ms per op).
#
#   bash bench/kernels_int8.sh                    # this tree, ROUNDS=5
#   BASE=HEAD bash bench/kernels_int8.sh          # and HEAD, round by round
#   ROUNDS=3 KERNEL_BENCHTIME=50x FORWARD_BENCHTIME=1s bash bench/kernels_int8.sh
#
# The machine is shared: the load average is printed at every round, and the
# rounds alternate between the trees so that a busy moment hits both.
# BASE is exported with `git archive` (git state is not touched); its
# kernels package gets this tree's bench_test.go when it lacks
# BenchmarkLinearInt8.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
KERNEL_BENCHTIME=${KERNEL_BENCHTIME:-20x}
FORWARD_BENCHTIME=${FORWARD_BENCHTIME:-5x}
KERNEL_BENCH=${KERNEL_BENCH:-'LinearInt8'}
FORWARD_BENCH=${FORWARD_BENCH:-'ForwardInt8VsF32'}

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
trees=(work)
go test -c -o "$dir/kernels.work" ./internal/kernels
go test -c -o "$dir/quantize.work" ./quantize
if [ -n "${BASE:-}" ]; then
  mkdir "$dir/base"
  git archive "$BASE" | tar -x -C "$dir/base"
  # The kernels were in forward/internal/kernels before issue 11.
  kbase=internal/kernels
  [ -d "$dir/base/$kbase" ] || kbase=forward/internal/kernels
  if ! grep -q 'func BenchmarkLinearInt8' "$dir/base/$kbase/bench_test.go"; then
    cp internal/kernels/bench_test.go "$dir/base/$kbase/"
  fi
  (cd "$dir/base" && go test -c -o "$dir/kernels.base" "./$kbase" &&
    go test -c -o "$dir/quantize.base" ./quantize)
  trees=(base work)
fi

echo "# $(date -u +%FT%TZ) $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "# kernels: go test ./internal/kernels -run '^\$' -bench '$KERNEL_BENCH' -benchtime $KERNEL_BENCHTIME"
echo "# forward: go test ./quantize -run '^\$' -bench '$FORWARD_BENCH' -benchtime $FORWARD_BENCHTIME"
for ((r = 1; r <= ROUNDS; r++)); do
  echo "# round $r, load $(cut -d' ' -f1-3 /proc/loadavg)"
  for t in "${trees[@]}"; do
    "$dir/kernels.$t" -test.run '^$' -test.bench "$KERNEL_BENCH" -test.benchtime "$KERNEL_BENCHTIME" |
      awk -v t="$t" '/^Benchmark/ {printf "%s %s %.3f\n", t, $1, $3/1e6}' | tee -a "$dir/all"
    "$dir/quantize.$t" -test.run '^$' -test.bench "$FORWARD_BENCH" -test.benchtime "$FORWARD_BENCHTIME" |
      awk -v t="$t" '/^Benchmark/ {printf "%s %s %.3f\n", t, $1, $3/1e6}' | tee -a "$dir/all"
  done
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# medians over $ROUNDS rounds, ms per op (tree benchmark median all...)"
sort -k1,1 -k2,2 -k3,3n "$dir/all" | awk '
  { k = $1 " " $2; v[k] = v[k] " " $3; n[k]++; order[k] = NR }
  END {
    for (k in v) {
      split(substr(v[k], 2), a, " ")
      c = n[k]
      med = (c % 2) ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2
      printf "%s %.3f %s\n", k, med, v[k]
    }
  }' | sort -k2,2 -k1,1
