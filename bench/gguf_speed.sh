#!/usr/bin/env bash
# Speed of the forward pass on a Q4_K_M GGUF against llama.cpp on the same
# file, on ONE thread: a TinyLlama-width model of 4 layers (hidden 2048,
# intermediate 5632, 32 heads, 4 KV heads, vocabulary 32000, random weights:
# bench/passes_make_llama.py --layers 4, with bench/gguf_speed_vocab.py's
# 32000-token vocabulary, which llama.cpp needs to run the file) quantized
# with `hubmirror quantize --format gguf --scheme q4_k_m` (validated on one
# short sequence; random weights agree poorly at 4 bits, so no top-1 floor).
# Then REPS rounds, each running ours (bench/gguf_speed_go, GOMAXPROCS=1,
# forward threads 1) and llama.cpp's (bench/gguf_speed.mjs, node-llama-cpp
# 3.21.1, threads 1) in turn, RUNS timed runs each:
#   prefill  128 token ids; ours computes the logits of every position,
#            llama.cpp's prompt evaluation none ("prefill") or every
#            position's with a greedy pick ("prefill, all logits", the
#            like-for-like figure);
#   token    ours: a 1-token forward pass (no KV cache); llama.cpp: one more
#            token after the 128-token prompt, with its logits.
# Prints the medians (and minima) and ours / llama.cpp. The machine may be
# shared: the load average is printed before and after.
#
#   bash bench/gguf_speed.sh      # REPS=3 RUNS=3 N=128 DIR=/tmp/hubmirror-gguf-speed
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${REPS:-3}
runs=${RUNS:-3}
n=${N:-128}
dir=${DIR:-/tmp/hubmirror-gguf-speed}
version=3.21.1
mods="$HOME/.cache/hubmirror/node-llama-cpp-$version/node_modules"
if [ ! -f "$mods/node-llama-cpp/package.json" ]; then
  mkdir -p "$(dirname "$mods")"
  echo '{"name":"hubmirror-llamacpp","private":true}' >"$(dirname "$mods")/package.json"
  (cd "$(dirname "$mods")" && npm install --no-audit --no-fund "node-llama-cpp@$version" >/dev/null)
fi
mkdir -p "$dir"
go build -o "$dir/hubmirror" ./cmd/hubmirror
go build -o "$dir/gguf_speed_go" ./bench/gguf_speed_go
if [ ! -f "$dir/model/model.safetensors" ]; then
  echo "== making the model in $dir/model"
  /usr/bin/python3 bench/passes_make_llama.py "$dir/model" --layers 4
fi
/usr/bin/python3 bench/gguf_speed_vocab.py "$dir/model"
gguf="$dir/q4km/model-Q4_K_M.gguf"
if [ ! -f "$gguf" ]; then
  echo "== hubmirror quantize --format gguf --scheme q4_k_m"
  "$dir/hubmirror" quantize "$dir/model" "$dir/q4km" --format gguf --scheme q4_k_m \
    --no-text --sequences 1 --lengths 8 --min-top1 0 | tail -3
fi
ls -l "$gguf"
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
: >"$dir/ours.jsonl"
: >"$dir/llamacpp.jsonl"
for r in $(seq "$reps"); do
  GOMAXPROCS=1 "$dir/gguf_speed_go" -n "$n" -runs "$runs" -threads 1 "$gguf" | tee -a "$dir/ours.jsonl" | sed 's/^/ours     /'
  node bench/gguf_speed.mjs "$gguf" "$mods" "$n" "$runs" 1 | tee -a "$dir/llamacpp.jsonl" | sed 's/^/llama.cpp /'
done
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 - "$dir/ours.jsonl" "$dir/llamacpp.jsonl" "$n" <<'PY'
import json, statistics, sys
ours = [json.loads(l) for l in open(sys.argv[1])]
ll = [json.loads(l) for l in open(sys.argv[2])]
n = sys.argv[3]
def col(rows, k):
    v = [r[k] for r in rows]
    return statistics.median(v), min(v)
rows = [
    (f"prefill {n} tokens", col(ours, "prefill_ms"), col(ll, "prefill_all_logits_ms"), col(ll, "prefill_ms")),
    ("one token", col(ours, "token_ms"), col(ll, "token_ms"), None),
]
print(f"{'':18} {'ours ms (min)':>16} {'llama.cpp ms (min)':>20} {'ours/llama.cpp':>15}")
for name, o, l, l2 in rows:
    print(f"{name:18} {o[0]:9.1f} ({o[1]:5.1f}) {l[0]:12.1f} ({l[1]:5.1f}) {o[0]/l[0]:14.2f}x")
    if l2:
        print(f"{'  llama.cpp, no logits':18} {'':16} {l2[0]:12.1f} ({l2[1]:5.1f}) {o[0]/l2[0]:14.2f}x")
PY
