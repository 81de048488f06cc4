#!/usr/bin/env bash
# Benchmarks the forward-pass kernels (internal/kernels) and the same
# shapes in PyTorch, so the two can be compared line by line (GFLOP/s).
#
#   bench/kernels.sh                 # everything, 1 and 2 threads
#   BENCH='Linear/bert' bench/kernels.sh
#   BENCHTIME=20x COUNT=3 TORCH_MIN_TIME=2 bench/kernels.sh
#   TORCH_ARGS='--threads 1 --only layer' bench/kernels.sh
#
# The machine is shared: the load average is printed before and after, and
# -count repeats each benchmark (take the best of the repeats when the load
# is not 0).
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH=${BENCH:-'Linear|MatMul|Layer'}
BENCHTIME=${BENCHTIME:-1s}
COUNT=${COUNT:-1}
TORCH_MIN_TIME=${TORCH_MIN_TIME:-1}
TORCH_ARGS=${TORCH_ARGS:-}
PYTHON=${PYTHON:-/usr/bin/python3}

echo "# $(date -u +%FT%TZ) $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "## go test -run '^$' -bench '$BENCH' -benchtime $BENCHTIME -count $COUNT ./internal/kernels/"
go test -run '^$' -bench "$BENCH" -benchtime "$BENCHTIME" -count "$COUNT" ./internal/kernels/
echo "# load between: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -x "$PYTHON" ] && "$PYTHON" -c 'import torch' 2>/dev/null; then
  echo "## $PYTHON bench/kernels_torch.py --min-time $TORCH_MIN_TIME $TORCH_ARGS"
  # Run from an empty directory so that no stray module shadows the standard library.
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
  # shellcheck disable=SC2086 # TORCH_ARGS is a list of arguments
  (cd "$dir" && "$PYTHON" "$OLDPWD/bench/kernels_torch.py" --min-time "$TORCH_MIN_TIME" $TORCH_ARGS)
else
  echo "# $PYTHON with torch not found: PyTorch side skipped"
fi
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
