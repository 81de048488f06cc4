#!/usr/bin/env bash
# Cross-check of the GGUF output with llama.cpp itself: now the test
# internal/llamacpp (TestLlamaCppRunsGGUF), which .ci/run runs. For a
# fixture of every family the GGUF writer supports (llama, mistral, qwen2,
# qwen3, gemma, gemma2, gemma3) and the types f32/bf16 (llama-tiny-st), f16
# and q8_0, llama.cpp (node-llama-cpp 3.21.1) loads the file as written,
# tokenizes a text to the ids of the tokenizer package and computes logits
# that agree with the forward pass on the same weights (cosine per position
# >= 0.999). This script installs node-llama-cpp where .ci/run does, if
# needed, and prints the test's figures per file.
#
#   bash bench/passes_gguf_llamacpp.sh
set -euo pipefail
cd "$(dirname "$0")/.."
version=3.21.1
dir="$HOME/.cache/hubmirror/node-llama-cpp-$version"
if [ ! -f "$dir/node_modules/node-llama-cpp/package.json" ]; then
  mkdir -p "$dir"
  echo '{"name":"hubmirror-llamacpp","private":true}' >"$dir/package.json"
  (cd "$dir" && npm install --no-audit --no-fund "node-llama-cpp@$version" >/dev/null)
fi
HUBMIRROR_LLAMACPP_MODULES="$dir/node_modules" go test ./internal/llamacpp/ -run TestLlamaCppRunsGGUF -count=1 -v |
  grep -E 'positions|^(ok|FAIL|---)'
