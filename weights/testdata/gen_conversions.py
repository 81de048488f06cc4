#!/usr/bin/python3
"""Writes conversions.json: float32 values and the bits PyTorch gives them as
float16 and bfloat16 (round to nearest even, overflow to inf). Run with
Debian's /usr/bin/python3 and python3-torch:  /usr/bin/python3 gen_conversions.py
"""
import json
import struct

import torch

torch.manual_seed(7)
vals = [0.0, -0.0, 1.0, -1.0, 65504.0, 65520.0, 65519.0, 1e5, -1e5, 6e-8, 3e-8, 1e-10,
        3.0e38, -3.0e38, 3.3895e38, float("inf"), float("-inf"), 1.0 + 2**-8, 1.0 + 2**-7 + 2**-8,
        1.0 + 2**-11, 1.0 + 3 * 2**-11, 5.960464477539063e-08, 2.9802322387695312e-08]
vals += (torch.randn(200) * 10).tolist() + (torch.randn(100) * 1e-5).tolist() + (torch.rand(100) * 7e4).tolist()
# Values exactly halfway between two bfloat16 / float16 values, to pin the tie rule.
for k in range(40):
    base = torch.randint(0, 2**16, (1,)).item() & 0x7f7f
    vals.append(struct.unpack("<f", struct.pack("<I", (base << 16) | 0x8000))[0])
t = torch.tensor(vals, dtype=torch.float32)
f32_bits = [struct.unpack("<I", struct.pack("<f", v))[0] for v in t.tolist()]
f16_bits = t.half().view(torch.int16).tolist()
bf16_bits = t.bfloat16().view(torch.int16).tolist()
rows = [{"f32": a, "f16": b & 0xffff, "bf16": c & 0xffff} for a, b, c in zip(f32_bits, f16_bits, bf16_bits)]
with open("conversions.json", "w") as f:
    json.dump({"torch": torch.__version__, "rows": rows}, f, indent=0)
