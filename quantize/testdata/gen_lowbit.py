#!/usr/bin/python3
"""Writes lowbit.json, the reference for the w4a16 and fp8 schemes.

W4A16 re-implements, in PyTorch, what compressed-tensors does for
pack-quantized weights (read from neuralmagic/compressed-tensors:
quantization/utils/helpers.py calculate_qparams and calculate_range,
quantization/lifecycle/forward.py _quantize/_dequantize,
compressors/quantized_compressors/pack_quantized.py pack_to_int32 and
unpack_from_int32), in float32 arithmetic:
  min, max over a group of inputs, with 0 included
  symmetric:  scale = max(|min|, |max|) / ((7 - -8) / 2), zero = 0
  asymmetric: scale = (max - min) / 15, zero = round(clamp(-8 - min/scale, -8, 7))
  scale = clamp(scale, min=float32 eps), then stored in the weight's dtype
  q = round(clamp(w / scale + zero, -8, 7))          (round half to even)
  packed: (q + 8) eight to an int32, element 8k+i of a row in bits 4i of word k,
          rows padded with zeros to a multiple of 8
  zero points: packed the same way down the output dimension (packed_dim=0),
          padded to a multiple of 8 outputs
  dequantized = (unpack(packed) - unpack(zero)) * scale   (float32)
Groups need not divide the input size: the last group of a row is shorter
(scales [out, ceil(in/group)]).

FP8 follows calculate_qparams for type float (range +-448) and _quantize:
  scale = max(amax / 448, eps) per output channel, stored in the weight dtype
  code  = float8_e4m3fn(clamp(w / scale, -448, 448)), round to nearest even.
Debian's torch 1.13 has no float8 dtype, so E4M3 is decoded from the OCP
FP8 spec (bias 7, 3 mantissa bits, no infinities, S.1111.111 is NaN) and
encoded by rounding to the nearest code, ties to the even code. The encoder
is checked against every f16 and bf16 value (and their negations): codes'
sha256 plus a sample.

Run with Debian's torch:  /usr/bin/python3 gen_lowbit.py
"""
import base64
import bisect
import hashlib
import json
import math

import torch

torch.manual_seed(15)
EPS = torch.finfo(torch.float32).eps


def b64(t):
    return base64.b64encode(t.contiguous().view(torch.uint8).numpy().tobytes()).decode()


def pack_rows(u):
    """u: int64 [rows, n] of values 0..15 -> int32 [rows, ceil(n/8)]."""
    rows, n = u.shape
    words = (n + 7) // 8
    u = torch.cat([u, torch.zeros(rows, words * 8 - n, dtype=torch.int64)], dim=1)
    packed = torch.zeros(rows, words, dtype=torch.int64)
    for i in range(8):
        packed |= u[:, i::8] << (4 * i)
    packed = torch.where(packed >= 2**31, packed - 2**32, packed)
    return packed.to(torch.int32)


def unpack_rows(p, n):
    words = p.shape[1]
    p = p.to(torch.int64) & 0xFFFFFFFF
    out = torch.zeros(p.shape[0], words * 8, dtype=torch.int64)
    for i in range(8):
        out[:, i::8] = (p >> (4 * i)) & 15
    return out[:, :n] - 8


def w4a16_case(dtype, dname, out_f, in_f, group, asym):
    w = torch.randn(out_f, in_f) * 0.05
    w[0, 0] = 0.6  # an outlier
    if out_f > 2:
        w[2, : min(in_f, 20)] = 0.0  # zeros: a group that is all zero
    if out_f > 3:
        w[3] = w[3].abs() + 0.01  # an all-positive row (zero point at -8)
    w = w.to(dtype)
    gs = group if 0 < group < in_f else in_f
    groups = math.ceil(in_f / gs)
    w32 = w.float()
    scales = torch.zeros(out_f, groups)
    zeros = torch.zeros(out_f, groups)
    q = torch.zeros(out_f, in_f)
    for g in range(groups):
        x = w32[:, g * gs:(g + 1) * gs]
        lo = torch.clamp(x.amin(dim=1), max=0.0)
        hi = torch.clamp(x.amax(dim=1), min=0.0)
        if asym:
            s = (hi - lo) / 15.0
        else:
            s = torch.max(lo.abs(), hi) / 7.5
        s = torch.clamp(s, min=EPS).to(dtype).float()
        if dtype == torch.float16:
            s = torch.where(s == 0, torch.full_like(s, 2.0**-24), s)
        z = torch.zeros_like(s)
        if asym:
            z = torch.round(torch.clamp(-8 - lo / s, -8, 7))
        scales[:, g] = s
        zeros[:, g] = z
        y = x / s.unsqueeze(1)
        if asym:
            y = y + z.unsqueeze(1)
        q[:, g * gs:(g + 1) * gs] = torch.round(torch.clamp(y, -8, 7))
    q = q.to(torch.int64)
    packed = pack_rows(q + 8)
    case = {
        "dtype": dname, "out": out_f, "in": in_f, "group": group, "asym": asym,
        "weight": b64(w), "packed": b64(packed), "packed_shape": list(packed.shape),
        "scale": b64(scales.to(dtype)), "scale_shape": [out_f, groups],
    }
    zp = None
    if asym:
        zp = pack_rows((zeros.to(torch.int64) + 8).t().contiguous()).t().contiguous()
        case["zero_point"] = b64(zp)
        case["zero_point_shape"] = list(zp.shape)
    # Their unpack and dequantize, from the packed tensors.
    uq = unpack_rows(packed, in_f)
    uz = torch.zeros(out_f, groups, dtype=torch.int64)
    if asym:
        uz = unpack_rows(zp.t().contiguous(), out_f).t()
    assert torch.equal(uq, q)
    col_group = torch.arange(in_f) // gs
    deq = (uq - uz[:, col_group]).float() * scales.to(dtype).float()[:, col_group]
    case["dequantized"] = b64(deq)
    return case


# --- float8_e4m3fn from the spec ---
def e4m3_decode(c):
    sign = -1.0 if c & 0x80 else 1.0
    e, m = (c >> 3) & 15, c & 7
    if e == 15 and m == 7:
        return float("nan")
    if e == 0:
        return sign * m / 8 * 2.0**-6
    return sign * (1 + m / 8) * 2.0 ** (e - 7)


POS = [e4m3_decode(c) for c in range(0x7F)]  # 0 .. 448, increasing


def e4m3_encode(v):
    """code of clamp(v, -448, 448), round to nearest, ties to even code."""
    if math.isnan(v):
        return 0x7F | (0x80 if math.copysign(1, v) < 0 else 0)
    sign = 0x80 if math.copysign(1, v) < 0 else 0
    a = min(abs(v), 448.0)
    lo = bisect.bisect_right(POS, a) - 1  # largest code whose value <= a
    if POS[lo] == a or lo == len(POS) - 1:
        return sign | lo
    d0, d1 = a - POS[lo], POS[lo + 1] - a
    if d0 < d1 or (d0 == d1 and lo % 2 == 0):
        return sign | lo
    return sign | (lo + 1)


def sweep(dtype):
    bits = torch.arange(0, 1 << 16, dtype=torch.int32).to(torch.int16)
    vals = bits.view(dtype).float().tolist()
    codes = bytes(e4m3_encode(v) for v in vals)
    return {"sha256": hashlib.sha256(codes).hexdigest(),
            "sample": [[i, codes[i]] for i in range(0, 1 << 16, 97)]}


def fp8_case(dtype, dname, out_f, in_f):
    w = torch.randn(out_f, in_f) * 0.05
    w[0, 0] = 0.6
    if out_f > 2:
        w[2] = 0.0
    w = w.to(dtype)
    w32 = w.float()
    amax = w32.abs().amax(dim=1)
    s = torch.clamp(amax / 448.0, min=EPS).to(dtype).float()
    y = (w32 / s.unsqueeze(1)).flatten().tolist()
    codes = torch.tensor([e4m3_encode(v) for v in y], dtype=torch.uint8)
    return {"dtype": dname, "out": out_f, "in": in_f, "weight": b64(w),
            "codes": b64(codes), "scale": b64(s.to(dtype))}


w4 = []
for dtype, dname in [(torch.float32, "F32"), (torch.float16, "F16"), (torch.bfloat16, "BF16")]:
    for out_f, in_f, group, asym in [(5, 37, 16, False), (9, 37, 16, True), (8, 64, 32, True), (3, 13, 0, False),
                                     (16, 100, 32, True), (4, 24, 128, False), (11, 40, 8, True), (6, 7, 0, True)]:
        w4.append(w4a16_case(dtype, dname, out_f, in_f, group, asym))
f8 = []
for dtype, dname in [(torch.float32, "F32"), (torch.float16, "F16"), (torch.bfloat16, "BF16")]:
    for out_f, in_f in [(7, 33), (4, 64)]:
        f8.append(fp8_case(dtype, dname, out_f, in_f))
with open("lowbit.json", "w") as f:
    json.dump({"torch": torch.__version__, "w4a16": w4, "fp8": f8,
               "e4m3_f16": sweep(torch.float16), "e4m3_bf16": sweep(torch.bfloat16)}, f)
