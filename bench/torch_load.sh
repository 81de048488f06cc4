#!/usr/bin/env bash
# Compares loading a ~500 MB pytorch_model.bin with formats/torch (open, read
# every tensor, touch every byte, close) and with torch.load (which copies
# every storage into memory), on the same file with a warm page cache.
#
#   bench/torch_load.sh
#   MB=1000 RUNS=7 BENCHTIME=5x ROUNDS=5 bench/torch_load.sh
#
# The machine is shared: Python and Go take turns ROUNDS times and the load
# average is printed each round; compare the best figures of each side.
set -euo pipefail
cd "$(dirname "$0")/.."

MB=${MB:-500}
RUNS=${RUNS:-5}
BENCHTIME=${BENCHTIME:-5x}
ROUNDS=${ROUNDS:-3}
PYTHON=${PYTHON:-/usr/bin/python3}

if ! [ -x "$PYTHON" ] || ! "$PYTHON" -c 'import torch' 2>/dev/null; then
  echo "# $PYTHON with torch not found: nothing to compare against" >&2
  exit 1
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
repo=$PWD
echo "# $(date -u +%FT%TZ) $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "## writing ${MB} MB checkpoints (zip and legacy) with bench/torch_make_checkpoint.py"
# Python runs from an empty folder so that no stray module shadows the standard library.
(cd "$dir" && "$PYTHON" "$repo/bench/torch_make_checkpoint.py" "$dir/pytorch_model.bin" --mb "$MB")
(cd "$dir" && "$PYTHON" "$repo/bench/torch_make_checkpoint.py" "$dir/legacy.bin" --mb "$MB" --legacy)
ls -l "$dir"
# Python and Go take turns, ROUNDS times, so that both see the same load.
for round in $(seq 1 "$ROUNDS"); do
  echo "## round $round, load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "## $PYTHON bench/torch_load.py FILE --runs $RUNS"
  (cd "$dir" && "$PYTHON" "$repo/bench/torch_load.py" "$dir/pytorch_model.bin" --runs "$RUNS")
  (cd "$dir" && "$PYTHON" "$repo/bench/torch_load.py" "$dir/legacy.bin" --runs "$RUNS")
  echo "## go test -run '^\$' -bench 'Open' -benchtime $BENCHTIME ./formats/torch/"
  HUBMIRROR_TORCH_BENCH_FILE="$dir/pytorch_model.bin" HUBMIRROR_TORCH_BENCH_LEGACY_FILE="$dir/legacy.bin" \
    go test -run '^$' -bench 'Open' -benchtime "$BENCHTIME" ./formats/torch/ | grep -E '^(Benchmark|ok|FAIL)'
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
