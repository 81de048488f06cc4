#!/usr/bin/python3
"""Writes int8.json: weight matrices and the int8 values and scales that the
symmetric weight-only scheme gives them, computed with PyTorch:
  scale = amax(|w|) / 127 over each output channel (or group of inputs),
          rounded to the weight's dtype;
  q     = clamp(round(w.float() / scale.float()), -127, 127)  (round half to even)
Run with Debian's torch:  /usr/bin/python3 gen_int8.py
"""
import base64
import json

import torch

torch.manual_seed(11)


def b64(t):
    return base64.b64encode(t.contiguous().view(torch.uint8).numpy().tobytes()).decode()


cases = []
for dtype, dname in [(torch.float32, "F32"), (torch.float16, "F16"), (torch.bfloat16, "BF16")]:
    for out_f, in_f, group in [(8, 32, 0), (5, 48, 16), (3, 7, 0), (16, 64, 32)]:
        for conv1d in (False, True):
            w = (torch.randn(out_f, in_f) * 0.05)
            w[0, 0] = 0.75  # an outlier in one channel
            if out_f > 2:
                w[2] = 0.0  # an all-zero channel: scale 1, q 0
            w = w.to(dtype)
            g = group if group else in_f
            wg = w.float().reshape(out_f, in_f // g, g)
            amax = wg.abs().amax(dim=2)
            scale = (amax / 127).to(dtype)
            scale = torch.where(amax == 0, torch.ones_like(scale), scale)
            q = torch.round(wg / scale.float().unsqueeze(2)).clamp(-127, 127).to(torch.int8).reshape(out_f, in_f)
            stored = w.t().contiguous() if conv1d else w
            qs = q.t().contiguous() if conv1d else q
            cases.append({
                "dtype": dname, "out": out_f, "in": in_f, "group": group, "conv1d": conv1d,
                "shape": list(stored.shape), "weight": b64(stored), "q": b64(qs), "scale": b64(scale),
            })
with open("int8.json", "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f)
