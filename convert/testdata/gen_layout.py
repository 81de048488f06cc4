#!/usr/bin/python3
"""Writes layout.json: Llama q/k projections in Meta's rotary layout and
after the permutation transformers' convert_llama_weights_to_hf applies,
computed with PyTorch. Run:  /usr/bin/python3 gen_layout.py
"""
import base64
import json

import torch

torch.manual_seed(5)


def permute(w, n_heads, dim1, dim2):
    # transformers/models/llama/convert_llama_weights_to_hf.py
    return w.view(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(1, 2).reshape(dim1, dim2)


def b64(t):
    return base64.b64encode(t.contiguous().numpy().tobytes()).decode()


cases = []
for heads, hd, dim in [(4, 8, 32), (2, 8, 32), (3, 6, 5)]:
    meta = torch.randn(heads * hd, dim)
    hf = permute(meta, heads, heads * hd, dim)
    cases.append({"heads": heads, "rows": heads * hd, "cols": dim, "meta": b64(meta), "hf": b64(hf)})
with open("layout.json", "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f)
