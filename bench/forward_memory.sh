#!/usr/bin/env bash
# Peak memory of `hubmirror forward` on a float16 checkpoint against its file
# size: the weights are used in place (mmap), so the peak RSS should stay near
# the file size, not 3x it (an f32 copy).
#
#   bash bench/forward_memory.sh [WORKDIR]      # default: bench/out/forward-memory
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-bench/out/forward-memory}
mkdir -p "$work"
if [ ! -f "$work/llama-f16/model.safetensors" ]; then
  /usr/bin/python3 bench/forward_make_f16.py "$work/llama-f16"
fi
go build -o "$work/hubmirror" ./cmd/hubmirror
size=$(stat -c %s "$work/llama-f16/model.safetensors")
ids=$(seq -s, 1 64)
/usr/bin/time -v "$work/hubmirror" forward "$work/llama-f16" --ids "$ids" --threads 2 >"$work/forward.out" 2>"$work/time.txt"
rss_kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$work/time.txt")
elapsed=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt")
awk -v s="$size" -v r="$rss_kb" -v e="$elapsed" 'BEGIN {
  printf "f16 checkpoint: %.1f MB; hubmirror forward (64 ids, 2 threads): peak RSS %.1f MB (%.2fx the file), wall %s\n",
    s/1e6, r*1024/1e6, r*1024/s, e }'
