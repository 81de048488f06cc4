#!/usr/bin/python3
"""Writes a GPT-style float32 state dict of about --mb megabytes with
torch.save (zip format, or --legacy), for the formats/torch benchmarks.

    /usr/bin/python3 bench/torch_make_checkpoint.py OUT.bin [--mb 500] [--legacy]
"""
import argparse
import collections

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--mb", type=int, default=500)
    ap.add_argument("--legacy", action="store_true")
    args = ap.parse_args()
    torch.manual_seed(0)
    hidden, vocab = 1024, 32000
    sd = collections.OrderedDict()
    wte = torch.randn(vocab, hidden)
    sd["transformer.wte.weight"] = wte
    sd["transformer.wpe.weight"] = torch.randn(1024, hidden)
    per_layer = 12 * hidden * hidden * 4
    layers = max(1, (args.mb * 2**20 - wte.numel() * 4) // per_layer)
    for i in range(layers):
        p = "transformer.h.%d." % i
        sd[p + "ln_1.weight"] = torch.ones(hidden)
        sd[p + "ln_1.bias"] = torch.zeros(hidden)
        sd[p + "attn.c_attn.weight"] = torch.randn(hidden, 3 * hidden)
        sd[p + "attn.c_attn.bias"] = torch.randn(3 * hidden)
        sd[p + "attn.c_proj.weight"] = torch.randn(hidden, hidden)
        sd[p + "attn.c_proj.bias"] = torch.randn(hidden)
        sd[p + "ln_2.weight"] = torch.ones(hidden)
        sd[p + "ln_2.bias"] = torch.zeros(hidden)
        sd[p + "mlp.c_fc.weight"] = torch.randn(hidden, 4 * hidden)
        sd[p + "mlp.c_fc.bias"] = torch.randn(4 * hidden)
        sd[p + "mlp.c_proj.weight"] = torch.randn(4 * hidden, hidden)
        sd[p + "mlp.c_proj.bias"] = torch.randn(hidden)
    sd["transformer.ln_f.weight"] = torch.ones(hidden)
    sd["transformer.ln_f.bias"] = torch.zeros(hidden)
    sd["lm_head.weight"] = wte  # tied, as in GPT-2
    torch.save(sd, args.out, _use_new_zipfile_serialization=not args.legacy)


if __name__ == "__main__":
    main()
