#!/usr/bin/env bash
# Peak memory of the conversion and int8 quantization passes on a ~2 GB
# checkpoint (issue 6): a TinyLlama-shaped model (hidden 2048, intermediate
# 5632, 32 heads, 4 KV heads, vocabulary 32000, untied head) with 8 layers,
# 483M parameters, 1.93 GB of F32, made here as model.safetensors and as
# pytorch_model.bin (bench/passes_make_llama.py; not committed).
#
#   bash bench/passes_memory.sh [WORKDIR]      # default: bench/out/passes
#
# 1. Each command under /usr/bin/time -v, validation included (the goal:
#    peak RSS under 500 MB):
#      hubmirror convert  SRC DST
#      hubmirror quantize SRC DST --scheme int8
#    for SRC = the safetensors and the pickle checkpoint, and
#      hubmirror quantize SRC DST --scheme q8_0 --format gguf --no-vocab
#      hubmirror quantize SRC DST --scheme q4_k_m --format gguf --no-vocab
#    (the checkpoint has no tokenizer; goal for q4_k_m: under 400 MB).
# 2. The peak of each stage (read, pass, write, validate) of the same builds
#    (the GGUF one in q4_k_m, default interval only: its write takes
#    minutes), from bench/passes_stages (VmHWM reset at each stage), with the periodic
#    release of mapped pages on (the default) and off (-release-interval
#    -1ns: then only the release after each tensor and after each forward
#    run remains).
# The load average is printed before each run: the machine is shared.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-bench/out/passes}
threads=${THREADS:-2}
mkdir -p "$work"
[ -f "$work/llama-st/model.safetensors" ] || /usr/bin/python3 bench/passes_make_llama.py "$work/llama-st"
[ -f "$work/llama-bin/pytorch_model.bin" ] || /usr/bin/python3 bench/passes_make_llama.py "$work/llama-bin" --format bin
go build -o "$work/hubmirror" ./cmd/hubmirror
go build -o "$work/passes_stages" ./bench/passes_stages
size=$(stat -c %s "$work/llama-st/model.safetensors")
printf 'checkpoint: %.2f GB of F32 (%s)\n' "$(echo "$size/1000000000" | bc -l)" "$work/llama-st"

load() { cut -d' ' -f1-3 /proc/loadavg; }

measure() { # label, then the hubmirror arguments
  local label=$1; shift
  local dst=$work/out-$label
  rm -rf "$dst"
  local l; l=$(load)
  /usr/bin/time -v "$work/hubmirror" "$@" "$dst" --threads "$threads" >"$work/$label.out" 2>"$work/$label.time" || {
    echo "$label: failed, see $work/$label.out and $work/$label.time"; return 1; }
  awk -F': ' -v label="$label" -v load="$l" '
    /Maximum resident set size/ {rss=$2}
    /Elapsed \(wall clock\)/ {wall=$2}
    /User time/ {user=$2}
    /System time/ {sys=$2}
    END {printf "%-16s peak RSS %6.0f MB   wall %s  user %ss  sys %ss   (load %s)\n", label, rss*1024/1e6, wall, user, sys, load}' "$work/$label.time"
}

echo "== /usr/bin/time -v, whole command (validation included), --threads $threads"
measure convert-st   convert  "$work/llama-st"
measure convert-bin  convert  "$work/llama-bin"
measure int8-st      quantize "$work/llama-st"  --scheme int8
measure int8-bin     quantize "$work/llama-bin" --scheme int8
measure gguf-q8_0    quantize "$work/llama-st"  --scheme q8_0 --format gguf --no-vocab
measure gguf-q4_k_m  quantize "$work/llama-st"  --scheme q4_k_m --format gguf --no-vocab
du -sh "$work"/out-*/ | sed 's/^/output size: /'

echo "== peak RSS per stage (bench/passes_stages)"
for pass in convert int8; do
  for interval in 0 -1ns; do
    rm -rf "$work/stages-$pass"
    echo "-- $pass, llama-st, release interval ${interval/0/default (25ms)} (load $(load))"
    "$work/passes_stages" -threads "$threads" -release-interval "$interval" "$pass" "$work/llama-st" "$work/stages-$pass"
  done
done
rm -rf "$work/stages-gguf"
echo "-- gguf-q4_k_m, llama-st, release interval default (25ms) (load $(load))"
"$work/passes_stages" -threads "$threads" gguf-q4_k_m "$work/llama-st" "$work/stages-gguf"
