#!/usr/bin/env bash
# W8A8 prefill against llama.cpp's Q8_0 (issue 15): a TinyLlama-width
# model (hidden 2048, intermediate 5632, 32 heads, 4 KV heads, vocabulary
# 32000) with 4 layers of random weights (bench/passes_make_llama.py, f32),
# given Llama 2's tokenizer (node-llama-cpp aborts on a GGUF without a
# vocabulary), then
#   ours:      quantize --scheme w8a8 --include lm_head.weight, run by
#              quantize's BenchmarkW8A8Prefill (the layers over 128 tokens,
#              the head on the last one; int8 activations per token, int32
#              sums on AVX-512 VNNI here);
#   int8:      the same with --scheme int8 (weight-only: codes widened to
#              f32 in the packers), for comparison;
#   llama.cpp: quantize --format gguf --scheme q8_0 (every matrix Q8_0,
#              output too), run by bench/w8a8_speed.mjs with node-llama-cpp
#              3.21.1 (the same 128 ids in one batch, logits of the last).
# All on 1 and 2 threads, in interleaved rounds (w8a8, int8, llama.cpp, per
# thread count, per round) with the load average printed, since the
# machine is shared; each round times RUNS prefills after one warm-up and
# prints their mean; the summary gives the median and the best over rounds
# (ms).
#
#   bash bench/w8a8_speed.sh [WORKDIR]     # default bench/out/w8a8-speed; ROUNDS=5 RUNS=5
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-bench/out/w8a8-speed}
ROUNDS=${ROUNDS:-5}
RUNS=${RUNS:-5}
version=3.21.1
modules="$HOME/.cache/hubmirror/node-llama-cpp-$version/node_modules"
if [ ! -f "$modules/node-llama-cpp/package.json" ]; then
  mkdir -p "$(dirname "$modules")"
  echo '{"name":"hubmirror-llamacpp","private":true}' >"$(dirname "$modules")/package.json"
  (cd "$(dirname "$modules")" && npm install --no-audit --no-fund "node-llama-cpp@$version" >/dev/null)
fi
mkdir -p "$work"
go build -o "$work/hubmirror" ./cmd/hubmirror
go test -c -o "$work/quantize.test" ./quantize
if [ ! -f "$work/src/model.safetensors" ]; then
  /usr/bin/python3 bench/passes_make_llama.py "$work/src" --layers 4
fi
[ -f "$work/src/tokenizer.json" ] || gunzip -c tokenizer/testdata/reference/tokenizers/llama2.json.gz >"$work/src/tokenizer.json"
[ -f "$work/w8a8/config.json" ] ||
  "$work/hubmirror" quantize "$work/src" "$work/w8a8" --scheme w8a8 --include lm_head.weight --no-text >/dev/null
[ -f "$work/int8/config.json" ] ||
  "$work/hubmirror" quantize "$work/src" "$work/int8" --scheme int8 --include lm_head.weight --no-text >/dev/null
[ -f "$work/q8/model-Q8_0.gguf" ] ||
  "$work/hubmirror" quantize "$work/src" "$work/q8" --format gguf --scheme q8_0 --no-text >/dev/null
gguf="$work/q8/model-Q8_0.gguf"

echo "# $(date -u +%FT%TZ) $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "# ours: HUBMIRROR_W8A8_BENCH_MODEL=$work/w8a8 go test ./quantize -run '^\$' -bench W8A8Prefill -cpu T -benchtime ${RUNS}x"
echo "# llama.cpp: node bench/w8a8_speed.mjs MODULES $gguf T 128 $RUNS"
all=$(mktemp)
trap 'rm -f "$all"' EXIT
for ((r = 1; r <= ROUNDS; r++)); do
  echo "# round $r, load $(cut -d' ' -f1-3 /proc/loadavg)"
  for t in 1 2; do
    for s in w8a8 int8; do
      HUBMIRROR_W8A8_BENCH_MODEL="$work/$s" "$work/quantize.test" -test.run '^$' -test.bench W8A8Prefill \
        -test.cpu "$t" -test.benchtime "${RUNS}x" |
        awk -v t="$t" -v s="$s" '/^BenchmarkW8A8Prefill/ {printf "ours-%s threads=%s %.1f\n", s, t, $3/1e6}' | tee -a "$all"
    done
    node bench/w8a8_speed.mjs "$modules" "$gguf" "$t" 128 "$RUNS" |
      node -e 'const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
        console.log(`llama.cpp-q8_0 threads=${r.threads} ${(r.ms.reduce((a, b) => a + b, 0) / r.ms.length).toFixed(1)}`)' |
      tee -a "$all"
  done
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# median and best over $ROUNDS rounds, ms per 128-token prefill (rounds' means)"
sort -k1,1 -k2,2 -k3,3n "$all" | awk '
  { k = $1 " " $2; v[k] = v[k] " " $3; n[k]++ }
  END {
    for (k in v) {
      split(substr(v[k], 2), a, " ")
      c = n[k]
      med = (c % 2) ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2
      printf "%s median %.1f best %.1f  (%s)\n", k, med, a[1], substr(v[k], 2)
    }
  }' | sort -k2,2 -k1,1
