#!/usr/bin/env bash
# Cross-check of the GGUF output with llama.cpp itself (not part of CI: it
# installs node-llama-cpp, whose npm package ships a prebuilt llama.cpp):
# the Q8_0 GGUF of a Llama model is loaded by llama.cpp, which computes the
# logits of a sequence of token ids; they are compared with the logits of
# the native forward pass on the source model (min cosine over positions,
# top-1 agreement, max abs difference).
#
#   bash bench/passes_gguf_llamacpp.sh [MODEL_DIR] [IDS]
#       default: testdata/models/llama-tiny-st, ids 3,5,...,61
#
# node-llama-cpp needs a tokenizer, and the GGUF output has none
# (tokenizer.ggml.model no_vocab): the file is written by
# bench/passes_gguf_vocab, the same tensors and metadata plus a dummy
# SentencePiece vocabulary. The tokens are used as ids only.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-testdata/models/llama-tiny-st}
ids=${2:-$(seq -s, 3 2 61)}
work=bench/out/gguf-llamacpp
mkdir -p "$work"
if [ ! -d "$work/node_modules/node-llama-cpp" ]; then
  (cd "$work" && npm init -y >/dev/null && npm install --no-audit --no-fund node-llama-cpp@3.22.1 >/dev/null)
fi
go run ./bench/passes_gguf_vocab "$model" "$work/model.gguf"
go run ./cmd/hubmirror forward "$model" --ids "$ids" --out "$work/ref.safetensors" >/dev/null
echo "$ids" >"$work/ids.txt"
cp bench/passes_gguf_llamacpp.mjs "$work/check.mjs"
(cd "$work" && node check.mjs model.gguf ref.safetensors ids.txt 2>&1 | grep -v '^\[node-llama-cpp\]')
