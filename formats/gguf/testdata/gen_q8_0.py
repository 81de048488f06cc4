#!/usr/bin/python3
"""Writes q8_0.json: float32 rows and their Q8_0 encoding (ggml's
block_q8_0: f16 scale d, then 32 int8 codes), computed here with numpy from
the definition in ggml's quantize_row_q8_0_ref:
  d  = max|x| / 127                 (float32)
  id = 1/d, or 0 when d is 0         (float32)
  q  = roundf(x * id)                (x * id in float32; halves away from zero)
  d is stored as float16 (round to nearest even)
Run with Debian's numpy:  /usr/bin/python3 gen_q8_0.py
"""
import base64
import json

import numpy as np

rng = np.random.default_rng(5)
blocks = []
blocks.append(np.zeros(32, np.float32))                       # d = 0: all codes 0
one = np.zeros(32, np.float32); one[7] = -3.5; blocks.append(one)  # a single value
for k in (0, 3, 10):                                          # exact ties: d = 2^-k, x*id = m + 1/2
    d = np.float32(2.0 ** -k)
    m = rng.integers(-126, 126, 32).astype(np.float32)
    x = (m + np.float32(0.5)) * d
    x[0] = np.float32(127) * d                                # sets amax, hence d, exactly
    blocks.append(x.astype(np.float32))
for scale in (1e-6, 0.02, 1.0, 300.0, 6e4):
    blocks.append((rng.standard_normal(32) * scale).astype(np.float32))
big = rng.standard_normal(32).astype(np.float32); big[3] = 1e5; blocks.append(big)  # one outlier sets the scale
x = np.concatenate(blocks)

amax = np.abs(x.reshape(-1, 32)).max(axis=1, keepdims=True)
d = (amax / np.float32(127)).astype(np.float32)
with np.errstate(divide="ignore"):
    idv = np.where(d == 0, np.float32(0), np.float32(1) / d).astype(np.float32)
a = (x.reshape(-1, 32) * idv).astype(np.float32).astype(np.float64)
q = (np.sign(a) * np.floor(np.abs(a) + 0.5)).astype(np.int8)
with np.errstate(over="ignore"):
    d16 = d.astype(np.float16)
enc = np.concatenate([d16.view(np.uint8).reshape(-1, 2), q.view(np.uint8)], axis=1)

with open("q8_0.json", "w") as f:
    json.dump({"numpy": np.__version__,
               "x": base64.b64encode(x.astype("<f4").tobytes()).decode(),
               "q8_0": base64.b64encode(enc.tobytes()).decode()}, f)
