#!/usr/bin/python3
"""Writes testdata/expected/perplexity.json: the perplexity and KL divergence
that PyTorch computes from the expected logits of fixtures (the logits
gen_models.py computed with its own PyTorch forward pass), the reference
for forward's perplexity code:

    /usr/bin/python3 testdata/gen_perplexity.py

For each case: perplexity = exp(cross_entropy(logits[:-1], input_ids[1:])),
the mean negative log-likelihood of token t+1 given tokens <= t, as
llama.cpp's perplexity tool and transformers' causal LM loss compute it. For
each pair (reference, candidate) run on the same ids: both perplexities, their
ratio, and the mean over positions of KL(softmax(ref) || softmax(cand)) of the
next-token distributions (positions 0..n-2, the ones that predict a token).
"""
import json
import os
import struct

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = ["llama-tiny-st", "llama-tiny-f16-st", "gpt2-lm-bin", "qwen2-bias-st"]
PAIRS = [("llama-tiny-st", "llama-tiny-f16-st")]
DTYPES = {"F32": (torch.float32, 4), "I64": (torch.int64, 8)}


def read_safetensors(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        dtype, _ = DTYPES[t["dtype"]]
        a, b = t["data_offsets"]
        buf = bytearray(data[8 + n + a:8 + n + b])
        out[name] = torch.frombuffer(buf, dtype=dtype).reshape(t["shape"]).clone()
    return out


def load(case):
    t = read_safetensors(os.path.join(HERE, "expected", case + ".safetensors"))
    ids = t["input_ids"][0]
    logits = t["logits"][0].to(torch.float64)
    return ids, logits


def perplexity(ids, logits):
    return torch.exp(F.cross_entropy(logits[:-1], ids[1:])).item()


def main():
    out = {"cases": {}, "pairs": []}
    for case in CASES:
        ids, logits = load(case)
        out["cases"][case] = {"input_ids": ids.tolist(), "perplexity": perplexity(ids, logits)}
    for ref, cand in PAIRS:
        rids, rl = load(ref)
        cids, cl = load(cand)
        assert torch.equal(rids, cids), "a pair must run on the same ids"
        pr, pc = perplexity(rids, rl), perplexity(cids, cl)
        lp, lq = F.log_softmax(rl[:-1], dim=-1), F.log_softmax(cl[:-1], dim=-1)
        kl = (lp.exp() * (lp - lq)).sum(-1)
        out["pairs"].append({"reference": ref, "candidate": cand, "reference_perplexity": pr,
                             "candidate_perplexity": pc, "ratio": pc / pr,
                             "kl_divergence": kl.mean().item(), "max_kl_divergence": kl.max().item()})
    with open(os.path.join(HERE, "expected", "perplexity.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
