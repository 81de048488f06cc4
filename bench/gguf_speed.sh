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
# 3.21.1, threads 1) in turn, RUNS timed runs each, timing a prefill of N
# token ids and one token:
#   - llama.cpp evaluates a prompt without logits, so the first line
#     compares it with our prefill minus our LM head (timed alone), the
#     second with our whole prefill (every position's logits);
#   - one token: ours is a 1-token forward pass (it keeps no KV cache),
#     llama.cpp's one more token after the prompt, without logits (against
#     ours minus the head) and with them and a greedy pick (against our
#     whole pass); and a second token right after the first (for ours
#     a second 1-token pass), without logits.
# Ours runs twice per round: exact (the default) and with -q8
# (forward.Options.GGMLQ8Activations: one-token products of Q4_K and Q6_K
# weights with activations rounded to 8 bits per 256 and integer dot
# products, as llama.cpp takes them; not exact, off in validation), which
# adds the "(q8)" lines.
# Prints the medians of the wall times and of the process CPU times (user
# and system), and ours / llama.cpp.
#
# The first token after our prefill is slower than the next (about 5 ms of
# CPU here, all in the dot products' reads of the weights) while llama.cpp's
# are alike: not page faults (none during the token), nor system time, nor
# the Go heap (debug.FreeOSMemory before it changes nothing), nor the clock
# (a 200 ms pause or spin before it does not help); it follows only a
# prefill on the packed GEMM path (32 or 128 tokens, not 4), and a token
# run undoes it (bench/gguf_speed_go -sweep MB writes memory between the two
# for such experiments). The steady state of decoding is the second-token
# line. The machine may be shared: the load
# average is printed before and after, and on a loaded machine the CPU
# times are the figures that show the work done.
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
: >"$dir/ours_q8.jsonl"
: >"$dir/llamacpp.jsonl"
for r in $(seq "$reps"); do
  GOMAXPROCS=1 "$dir/gguf_speed_go" -n "$n" -runs "$runs" -threads 1 "$gguf" | tee -a "$dir/ours.jsonl" | sed 's/^/ours     /'
  GOMAXPROCS=1 "$dir/gguf_speed_go" -n "$n" -runs "$runs" -threads 1 -q8 "$gguf" | tee -a "$dir/ours_q8.jsonl" | sed 's/^/ours q8  /'
  node bench/gguf_speed.mjs "$gguf" "$mods" "$n" "$runs" 1 | tee -a "$dir/llamacpp.jsonl" | sed 's/^/llama.cpp /'
done
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 - "$dir/ours.jsonl" "$dir/llamacpp.jsonl" "$n" "$dir/ours_q8.jsonl" <<'PY'
import json, statistics, sys
ours = [json.loads(l) for l in open(sys.argv[1])]
ll = [json.loads(l) for l in open(sys.argv[2])]
n = sys.argv[3]
q8 = [json.loads(l) for l in open(sys.argv[4])]
def med(rows, f):
    return statistics.median(f(r) for r in rows)
print("medians over %d runs each; ms of wall time / of the process's CPU time" % len(ours))
print("%-44s %17s %17s %13s" % ("", "ours", "llama.cpp", "ours/llama"))
def row(name, of, lf, ours=ours):
    o = [med(ours, lambda r: of(r, k)) for k in ("ms", "cpu_ms")]
    l = [med(ll, lambda r: lf(r, k)) for k in ("ms", "cpu_ms")]
    print("%-44s %8.1f /%7.1f %8.1f /%7.1f %5.2f /%5.2f" % (name, o[0], o[1], l[0], l[1], o[0] / l[0], o[1] / l[1]))
row("prefill %s tokens, no logits (ours: - head)" % n,
    lambda r, k: r["prefill_" + k] - r["prefill_head_" + k], lambda r, k: r["prefill_" + k])
row("prefill %s tokens (ours with every logit)" % n, lambda r, k: r["prefill_" + k], lambda r, k: r["prefill_" + k])
row("one token, no logits (ours: - head)",
    lambda r, k: r["token_" + k] - r["token_head_" + k], lambda r, k: r["token_" + k])
row("one token with its logits", lambda r, k: r["token_" + k], lambda r, k: r["token_logits_" + k])
row("a second token, no logits (ours: - head)",
    lambda r, k: r["token2_" + k] - r["token2_head_" + k], lambda r, k: r["token2_" + k])
row("one token, no logits (ours q8: - head)",
    lambda r, k: r["token_" + k] - r["token_head_" + k], lambda r, k: r["token_" + k], q8)
row("one token with its logits (q8)", lambda r, k: r["token_" + k], lambda r, k: r["token_logits_" + k], q8)
row("a second token, no logits (ours q8: - head)",
    lambda r, k: r["token2_" + k] - r["token2_head_" + k], lambda r, k: r["token2_" + k], q8)
PY
