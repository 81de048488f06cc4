#!/usr/bin/python3
"""Writes tokenizer.json and tokenizer_config.json for bench/gguf_speed.sh's
model, so that its GGUF carries a vocabulary (llama.cpp aborts when it runs a
file without one): testdata/models/llama-tiny-st's BPE tokenizer with byte
fallback (the 3 specials, the tokens <0x00>..<0xFF> at ids 3 to 258, its
other tokens 256 ids further, as Llama 2's tokenizer lays them out), filled
up to SIZE tokens with tokens no merge makes.

    /usr/bin/python3 bench/gguf_speed_vocab.py MODELDIR [--size 32000]
"""
import argparse
import json
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("modeldir")
    ap.add_argument("--size", type=int, default=32000)
    a = ap.parse_args()
    src = os.path.join(ROOT, "testdata", "models", "llama-tiny-st")
    with open(os.path.join(src, "tokenizer.json")) as f:
        doc = json.load(f)
    model = doc["model"]
    vocab = {}
    for tok, i in model["vocab"].items():
        vocab[tok] = i if i < 3 else i + 256
    for b in range(256):
        vocab["<0x%02X>" % b] = 3 + b
    i = 0
    while len(vocab) < a.size:
        vocab["\u2581filler%d" % i] = len(vocab)
        i += 1
    if len(vocab) != a.size or sorted(vocab.values()) != list(range(a.size)):
        raise SystemExit("vocabulary of %d tokens does not fill ids 0..%d" % (len(vocab), a.size - 1))
    model["vocab"], model["byte_fallback"] = vocab, True
    with open(os.path.join(a.modeldir, "tokenizer.json"), "w") as f:
        json.dump(doc, f, ensure_ascii=False)
    with open(os.path.join(src, "tokenizer_config.json")) as f:
        cfg = f.read()
    with open(os.path.join(a.modeldir, "tokenizer_config.json"), "w") as f:
        f.write(cfg)


if __name__ == "__main__":
    main()
