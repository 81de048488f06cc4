#!/usr/bin/python3
"""Trains testdata/textlm/llama-text-st: a tiny LlamaForCausalLM that has
learned hubmirror's own validation text (forward/textset/*.txt) byte by byte,
with a Llama-2-style byte tokenizer (tokenizer.json: <unk> 0, <s> 1, </s> 2,
<0x00>..<0xFF> 3..258, BPE with byte_fallback and no merges, <s> put first by
a TemplateProcessing post-processor).

Random-weight fixtures are confidently wrong on any text (perplexities of
1e5-1e9 over a vocabulary of 256), so breaking them can even lower their
perplexity; a model that predicts the text is needed to test that a broken
pass raises it. The script also writes, in testdata/expected/textlm.json, the
perplexity PyTorch computes for the model on the text set cut as validation
cuts it (windows of <s> + 63 tokens, every text token scored), which the Go
tests compare with forward's.

    /usr/bin/python3 testdata/train_textlm.py

Uses the plain-torch Llama of gen_models.py; deterministic (seeded, one thread).
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_models as gm  # noqa: E402

torch.manual_seed(12)
torch.set_num_threads(1)

WINDOW = 64  # the model's positions: validation's windows are <s> + 63 tokens
BOS = 1


def text_ids():
    """The text set's ids in validation's order (files sorted by name)."""
    d = os.path.join(HERE, "..", "forward", "textset")
    out = []
    for name in sorted(os.listdir(d)):
        if name.endswith(".txt"):
            data = open(os.path.join(d, name), "rb").read()
            out.append((name[:-4], [3 + b for b in data]))
    return out


def windows(ids):
    chunk = WINDOW - 1
    out = []
    for s in range(0, len(ids), chunk):
        w = ids[s:s + chunk]
        if len(w) < 2 and s > 0:
            break
        out.append([BOS] + w)
    return out


def tokenizer_json():
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab["<0x%02X>" % b] = 3 + b
    special = lambda i, c: {"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
                            "normalized": False, "special": True}
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [special(0, "<unk>"), special(1, "<s>"), special(2, "</s>")],
        "normalizer": None, "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                    {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "Fuse"}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab, "merges": []},
    }


def nll_sum(sd, cfg, w):
    logits = gm.llama_forward(sd, cfg, torch.tensor(w))["logits"][0].double()
    return F.cross_entropy(logits[:-1], torch.tensor(w[1:]), reduction="sum"), len(w) - 1


def main():
    cfg = gm.llama_config(vocab_size=259, intermediate_size=96, hidden_size=48, num_attention_heads=4,
                          num_key_value_heads=2, num_hidden_layers=2)
    sd = gm.llama_weights(cfg, gm.Init(1212), untied=True)
    sd["lm_head.weight"] = sd["lm_head.weight"] / 4
    texts = text_ids()
    train = [w for _, ids in texts for w in windows(ids)]
    params = [p.requires_grad_() for p in sd.values()]
    opt = torch.optim.AdamW(params, lr=3e-3, weight_decay=0.0)
    for step in range(400):
        opt.zero_grad()
        batch = [train[i] for i in torch.randint(0, len(train), (8,)).tolist()]
        loss = sum(nll_sum(sd, cfg, w)[0] for w in batch) / sum(len(w) - 1 for w in batch)
        loss.backward()
        opt.step()
        if step % 50 == 0:
            print(step, loss.item(), file=sys.stderr)
    sd = {k: v.detach().float().contiguous() for k, v in sd.items()}
    out = os.path.join(HERE, "textlm", "llama-text-st")
    os.makedirs(out, exist_ok=True)
    gm.write_config(os.path.join(out, "config.json"), cfg)
    gm.write_safetensors(os.path.join(out, "model.safetensors"), sd, {"format": "pt"})
    with open(os.path.join(out, "tokenizer.json"), "w") as f:
        json.dump(tokenizer_json(), f, indent=1)
        f.write("\n")
    with torch.no_grad():
        total, n = 0.0, 0
        for _, ids in texts:
            for w in windows(ids):
                s, k = nll_sum(sd, cfg, w)
                total, n = total + s.item(), n + k
    ref = {"model": "textlm/llama-text-st", "predictions": n, "perplexity": math.exp(total / n),
           "inputs": [{"name": name, "tokens": len(ids), "windows": len(windows(ids))} for name, ids in texts]}
    with open(os.path.join(HERE, "expected", "textlm.json"), "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")
    print("perplexity", ref["perplexity"], "on", n, file=sys.stderr)


if __name__ == "__main__":
    main()
