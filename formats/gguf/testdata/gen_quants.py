#!/usr/bin/env python3
"""Expected GGML quantizations for formats/gguf's quants_test.go.

An independent Python port of ggml's reference quantizers and dequantizers
(ggml/src/ggml-quants.c: quantize_row_{q4_0,q5_0,q5_1,q8_0,q4_K,q5_K,q6_K}_ref
with nearest_int, make_qx_quants (rmse_type 1), make_qkx2_quants,
get_scale_min_k4, and the dequantize_row_* functions), written from reading
that file. Every float operation is rounded to float32 as C evaluates
`float` expressions (FLT_EVAL_METHOD 0, no contraction); f16 conversions
round to nearest even. Pure Python (no numpy): deterministic.

For each case it writes quants/<case>.f32 (the input, little-endian float32,
rows of a multiple of 256 values), quants/<case>.<type> (the encoded blocks)
and quants/<case>.<type>.f32 (their dequantization).

    python3 formats/gguf/testdata/gen_quants.py
"""
import math
import os
import random
import struct

_F = struct.Struct('<f')
_I = struct.Struct('<i')
_E = struct.Struct('<e')


def f32(v):
    return _F.unpack(_F.pack(v))[0]


def f16_bits(v):
    return struct.unpack('<H', _E.pack(v))[0]


def f16_to_f32(h):
    return _E.unpack(struct.pack('<H', h))[0]


def f16_round(v):
    return f16_to_f32(f16_bits(v))


def nearest_int(v):
    val = f32(v + 12582912.0)
    i = _I.unpack(_F.pack(val))[0]
    return (i & 0x007fffff) - 0x00400000


def clamp(v, lo, hi):
    return max(lo, min(hi, v))


def trunc_int8(v):
    # C's (int8_t) of a float in range: toward zero
    return int(v)


GROUP_MAX_EPS = f32(1e-15)


def le16(h):
    return bytes([h & 0xff, h >> 8])


# ---- 32-value blocks

def q4_0(x):
    out = bytearray()
    for b in range(0, len(x), 32):
        blk = x[b:b + 32]
        amax = 0.0
        mx = 0.0
        for v in blk:
            if amax < abs(v):
                amax = abs(v)
                mx = v
        d = f32(mx / -8.0)
        idv = f32(1.0 / d) if d != 0 else 0.0
        out += le16(f16_bits(d))
        for j in range(16):
            x0 = f32(blk[j] * idv)
            x1 = f32(blk[16 + j] * idv)
            q0 = min(15, trunc_int8(f32(x0 + 8.5)))
            q1 = min(15, trunc_int8(f32(x1 + 8.5)))
            out.append(q0 | (q1 << 4))
    return bytes(out)


def dq4_0(b, n):
    y = []
    for o in range(0, len(b), 18):
        d = f16_to_f32(b[o] | b[o + 1] << 8)
        lo = [f32(((b[o + 2 + j] & 0xf) - 8) * d) for j in range(16)]
        hi = [f32(((b[o + 2 + j] >> 4) - 8) * d) for j in range(16)]
        y += lo + hi
    return y


def q5_0(x):
    out = bytearray()
    for b in range(0, len(x), 32):
        blk = x[b:b + 32]
        amax = 0.0
        mx = 0.0
        for v in blk:
            if amax < abs(v):
                amax = abs(v)
                mx = v
        d = f32(mx / -16.0)
        idv = f32(1.0 / d) if d != 0 else 0.0
        qs = bytearray(16)
        qh = 0
        for j in range(16):
            x0 = f32(blk[j] * idv)
            x1 = f32(blk[16 + j] * idv)
            q0 = min(31, trunc_int8(f32(x0 + 16.5)))
            q1 = min(31, trunc_int8(f32(x1 + 16.5)))
            qs[j] = (q0 & 0xf) | ((q1 & 0xf) << 4)
            qh |= ((q0 & 0x10) >> 4) << j
            qh |= ((q1 & 0x10) >> 4) << (j + 16)
        out += le16(f16_bits(d)) + struct.pack('<I', qh) + qs
    return bytes(out)


def dq5_0(b, n):
    y = []
    for o in range(0, len(b), 22):
        d = f16_to_f32(b[o] | b[o + 1] << 8)
        qh = struct.unpack('<I', b[o + 2:o + 6])[0]
        qs = b[o + 6:o + 22]
        lo = [f32((((qs[j] & 0xf) | (((qh >> j) << 4) & 0x10)) - 16) * d) for j in range(16)]
        hi = [f32((((qs[j] >> 4) | ((qh >> (j + 12)) & 0x10)) - 16) * d) for j in range(16)]
        y += lo + hi
    return y


def q5_1(x):
    out = bytearray()
    for b in range(0, len(x), 32):
        blk = x[b:b + 32]
        mn = 3.4028234663852886e38
        mx = -mn
        for v in blk:
            if v < mn:
                mn = v
            if v > mx:
                mx = v
        d = f32(f32(mx - mn) / 31.0)
        idv = f32(1.0 / d) if d != 0 else 0.0
        qs = bytearray(16)
        qh = 0
        for j in range(16):
            x0 = f32(f32(blk[j] - mn) * idv)
            x1 = f32(f32(blk[16 + j] - mn) * idv)
            q0 = int(f32(x0 + 0.5))
            q1 = int(f32(x1 + 0.5))
            qs[j] = (q0 & 0xf) | ((q1 & 0xf) << 4)
            qh |= ((q0 & 0x10) >> 4) << j
            qh |= ((q1 & 0x10) >> 4) << (j + 16)
        out += le16(f16_bits(d)) + le16(f16_bits(mn)) + struct.pack('<I', qh) + qs
    return bytes(out)


def dq5_1(b, n):
    y = []
    for o in range(0, len(b), 24):
        d = f16_to_f32(b[o] | b[o + 1] << 8)
        m = f16_to_f32(b[o + 2] | b[o + 3] << 8)
        qh = struct.unpack('<I', b[o + 4:o + 8])[0]
        qs = b[o + 8:o + 24]
        lo = [f32(f32(((qs[j] & 0xf) | (((qh >> j) << 4) & 0x10)) * d) + m) for j in range(16)]
        hi = [f32(f32(((qs[j] >> 4) | ((qh >> (j + 12)) & 0x10)) * d) + m) for j in range(16)]
        y += lo + hi
    return y


def roundf(v):
    a = math.floor(abs(v) + 0.5)
    return int(-a if v < 0 else a)


def q8_0(x):
    out = bytearray()
    for b in range(0, len(x), 32):
        blk = x[b:b + 32]
        amax = 0.0
        for v in blk:
            amax = max(amax, abs(v))
        d = f32(amax / 127.0)
        idv = f32(1.0 / d) if d != 0 else 0.0
        out += le16(f16_bits(d))
        out += bytes((roundf(f32(v * idv)) & 0xff) for v in blk)
    return bytes(out)


def dq8_0(b, n):
    y = []
    for o in range(0, len(b), 34):
        d = f16_to_f32(b[o] | b[o + 1] << 8)
        y += [f32(struct.unpack('b', b[o + 2 + j:o + 3 + j])[0] * d) for j in range(32)]
    return y


# ---- k-quants

def make_qx_quants(nmax, x, L):
    """make_qx_quants(n, nmax, x, L, rmse_type=1, qw=NULL)"""
    mx = 0.0
    amax = 0.0
    for v in x:
        if abs(v) > amax:
            amax = abs(v)
            mx = v
    if amax < GROUP_MAX_EPS:
        for i in range(len(x)):
            L[i] = 0
        return 0.0
    iscale = f32(-nmax / mx)
    sumlx = suml2 = 0.0
    for i, v in enumerate(x):
        l = clamp(nearest_int(f32(iscale * v)), -nmax, nmax - 1)
        L[i] = l + nmax
        w = f32(v * v)
        sumlx = f32(sumlx + f32(f32(w * v) * l))
        suml2 = f32(suml2 + f32(f32(w * l) * l))
    scale = f32(sumlx / suml2) if suml2 != 0 else 0.0
    best = f32(scale * sumlx)
    for is_ in range(-9, 10):
        if is_ == 0:
            continue
        iscale = f32(-f32(nmax + f32(f32(0.1) * is_)) / mx)
        sumlx = suml2 = 0.0
        for v in x:
            l = clamp(nearest_int(f32(iscale * v)), -nmax, nmax - 1)
            w = f32(v * v)
            sumlx = f32(sumlx + f32(f32(w * v) * l))
            suml2 = f32(suml2 + f32(f32(w * l) * l))
        if suml2 > 0 and f32(sumlx * sumlx) > f32(best * suml2):
            for i, v in enumerate(x):
                L[i] = nmax + clamp(nearest_int(f32(iscale * v)), -nmax, nmax - 1)
            scale = f32(sumlx / suml2)
            best = f32(scale * sumlx)
    return scale


def make_qkx2_quants(nmax, x, w, L, rmin, rdelta, nstep):
    """make_qkx2_quants(..., use_mad=false): returns (scale, the_min)."""
    n = len(x)
    mn = x[0]
    mx = x[0]
    sum_w = w[0]
    sum_x = f32(sum_w * x[0])
    for i in range(1, n):
        if x[i] < mn:
            mn = x[i]
        if x[i] > mx:
            mx = x[i]
        sum_w = f32(sum_w + w[i])
        sum_x = f32(sum_x + f32(w[i] * x[i]))
    if mn > 0:
        mn = 0.0
    if mx == mn:
        for i in range(n):
            L[i] = 0
        return 0.0, -mn
    iscale = f32(nmax / f32(mx - mn))
    scale = f32(1.0 / iscale)
    best = 0.0
    for i in range(n):
        L[i] = clamp(nearest_int(f32(iscale * f32(x[i] - mn))), 0, nmax)
        diff = f32(f32(f32(scale * L[i]) + mn) - x[i])
        best = f32(best + f32(w[i] * f32(diff * diff)))
    Laux = [0] * n
    for is_ in range(nstep + 1):
        # min is updated by a better fit, and ggml divides by max - min
        # with the updated value
        iscale = f32(f32(f32(rmin + f32(rdelta * is_)) + nmax) / f32(mx - mn))
        sum_l = sum_l2 = sum_xl = 0.0
        for i in range(n):
            l = clamp(nearest_int(f32(iscale * f32(x[i] - mn))), 0, nmax)
            Laux[i] = l
            wl = f32(w[i] * l)
            sum_l = f32(sum_l + wl)
            sum_l2 = f32(sum_l2 + f32(wl * l))
            sum_xl = f32(sum_xl + f32(wl * x[i]))
        D = f32(f32(sum_w * sum_l2) - f32(sum_l * sum_l))
        if D > 0:
            this_scale = f32(f32(f32(sum_w * sum_xl) - f32(sum_x * sum_l)) / D)
            this_min = f32(f32(f32(sum_l2 * sum_x) - f32(sum_l * sum_xl)) / D)
            if this_min > 0:
                this_min = 0.0
                this_scale = f32(sum_xl / sum_l2)
            cur = 0.0
            for i in range(n):
                diff = f32(f32(f32(this_scale * Laux[i]) + this_min) - x[i])
                cur = f32(cur + f32(w[i] * f32(diff * diff)))
            if cur < best:
                L[:] = Laux
                best = cur
                scale = this_scale
                mn = this_min
    return scale, -mn


def get_scale_min_k4(j, q):
    if j < 4:
        return q[j] & 63, q[j + 4] & 63
    return (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4)


def kscales(blk, nmax, rmin, rdelta, nstep):
    """The common part of quantize_row_q4_K_ref and _q5_K_ref."""
    L = [0] * 256
    scales = [0.0] * 8
    mins = [0.0] * 8
    max_scale = max_min = 0.0
    for j in range(8):
        sub = blk[32 * j:32 * j + 32]
        sum_x2 = 0.0
        for v in sub:
            sum_x2 = f32(sum_x2 + f32(v * v))
        av_x = f32(math.sqrt(f32(sum_x2 / 32.0)))
        w = [f32(av_x + abs(v)) for v in sub]
        Ls = [0] * 32
        scales[j], mins[j] = make_qkx2_quants(nmax, sub, w, Ls, rmin, rdelta, nstep)
        L[32 * j:32 * j + 32] = Ls
        if scales[j] > max_scale:
            max_scale = scales[j]
        if mins[j] > max_min:
            max_min = mins[j]
    inv_scale = f32(63.0 / max_scale) if max_scale > 0 else 0.0
    inv_min = f32(63.0 / max_min) if max_min > 0 else 0.0
    sc = [0] * 12
    for j in range(8):
        ls = min(63, nearest_int(f32(inv_scale * scales[j])) & 0xff)
        lm = min(63, nearest_int(f32(inv_min * mins[j])) & 0xff)
        if j < 4:
            sc[j] = ls
            sc[j + 4] = lm
        else:
            sc[j + 4] = (ls & 0xf) | ((lm & 0xf) << 4)
            sc[j - 4] |= (ls >> 4) << 6
            sc[j] |= (lm >> 4) << 6
    dh = f16_bits(f32(max_scale / 63.0))
    mh = f16_bits(f32(max_min / 63.0))
    for j in range(8):
        s, m = get_scale_min_k4(j, sc)
        d = f32(f16_to_f32(dh) * s)
        if d == 0:
            continue
        dm = f32(f16_to_f32(mh) * m)
        for i in range(32):
            L[32 * j + i] = clamp(nearest_int(f32(f32(blk[32 * j + i] + dm) / d)), 0, nmax)
    return le16(dh) + le16(mh) + bytes(sc), L


def q4_K(x):
    out = bytearray()
    for b in range(0, len(x), 256):
        head, L = kscales(x[b:b + 256], 15, -1.0, f32(0.1), 20)
        q = bytearray(128)
        for j in range(0, 256, 64):
            for l in range(32):
                q[j // 2 + l] = L[j + l] | (L[j + l + 32] << 4)
        out += head + q
    return bytes(out)


def dq4_K(b, n):
    y = []
    for o in range(0, len(b), 144):
        d = f16_to_f32(b[o] | b[o + 1] << 8)
        mn = f16_to_f32(b[o + 2] | b[o + 3] << 8)
        sc = b[o + 4:o + 16]
        q = b[o + 16:o + 144]
        for j, is_ in zip(range(0, 256, 64), range(0, 8, 2)):
            s, m = get_scale_min_k4(is_, sc)
            d1, m1 = f32(d * s), f32(mn * m)
            s, m = get_scale_min_k4(is_ + 1, sc)
            d2, m2 = f32(d * s), f32(mn * m)
            qq = q[j // 2:j // 2 + 32]
            y += [f32(f32(d1 * (v & 0xf)) - m1) for v in qq]
            y += [f32(f32(d2 * (v >> 4)) - m2) for v in qq]
    return y


def q5_K(x):
    out = bytearray()
    for b in range(0, len(x), 256):
        head, L = kscales(x[b:b + 256], 31, -0.5, f32(0.1), 15)
        qh = bytearray(32)
        ql = bytearray(128)
        m1, m2 = 1, 2
        for n in range(0, 256, 64):
            for j in range(32):
                l1 = L[n + j]
                if l1 > 15:
                    l1 -= 16
                    qh[j] |= m1
                l2 = L[n + j + 32]
                if l2 > 15:
                    l2 -= 16
                    qh[j] |= m2
                ql[n // 2 + j] = l1 | (l2 << 4)
            m1 <<= 2
            m2 <<= 2
        out += head + qh + ql
    return bytes(out)


def dq5_K(b, n):
    y = []
    for o in range(0, len(b), 176):
        d = f16_to_f32(b[o] | b[o + 1] << 8)
        mn = f16_to_f32(b[o + 2] | b[o + 3] << 8)
        sc = b[o + 4:o + 16]
        qh = b[o + 16:o + 48]
        ql = b[o + 48:o + 176]
        u1, u2 = 1, 2
        for j, is_ in zip(range(0, 256, 64), range(0, 8, 2)):
            s, m = get_scale_min_k4(is_, sc)
            d1, m1 = f32(d * s), f32(mn * m)
            s, m = get_scale_min_k4(is_ + 1, sc)
            d2, m2 = f32(d * s), f32(mn * m)
            q = ql[j // 2:j // 2 + 32]
            y += [f32(f32(d1 * ((q[l] & 0xf) + (16 if qh[l] & u1 else 0))) - m1) for l in range(32)]
            y += [f32(f32(d2 * ((q[l] >> 4) + (16 if qh[l] & u2 else 0))) - m2) for l in range(32)]
            u1 <<= 2
            u2 <<= 2
    return y


def q6_K(x):
    out = bytearray()
    for b in range(0, len(x), 256):
        blk = x[b:b + 256]
        L = [0] * 256
        scales = [0.0] * 16
        max_scale = max_abs = 0.0
        for ib in range(16):
            Ls = [0] * 16
            s = make_qx_quants(32, blk[16 * ib:16 * ib + 16], Ls)
            L[16 * ib:16 * ib + 16] = Ls
            scales[ib] = s
            if abs(s) > max_abs:
                max_abs = abs(s)
                max_scale = s
        if max_abs < GROUP_MAX_EPS:
            out += bytes(210)
            continue
        iscale = f32(-128.0 / max_scale)
        dh = f16_bits(f32(1.0 / iscale))
        sc = [min(127, nearest_int(f32(iscale * s))) for s in scales]
        sc = [((v + 128) & 0xff) - 128 for v in sc]  # int8_t
        for j in range(16):
            d = f32(f16_to_f32(dh) * sc[j])
            if d == 0:
                continue
            for i in range(16):
                L[16 * j + i] = clamp(nearest_int(f32(blk[16 * j + i] / d)), -32, 31) + 32
        ql = bytearray(128)
        qh = bytearray(64)
        for j in range(0, 256, 128):
            for l in range(32):
                q1 = L[j + l] & 0xf
                q2 = L[j + l + 32] & 0xf
                q3 = L[j + l + 64] & 0xf
                q4 = L[j + l + 96] & 0xf
                ql[j // 2 + l] = q1 | (q3 << 4)
                ql[j // 2 + l + 32] = q2 | (q4 << 4)
                qh[j // 4 + l] = (L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6)
        out += ql + qh + bytes(v & 0xff for v in sc) + le16(dh)
    return bytes(out)


def dq6_K(b, n):
    y = []
    for o in range(0, len(b), 210):
        blk = b[o:o + 210]
        d = f16_to_f32(blk[208] | blk[209] << 8)
        sc = [v - 256 if v > 127 else v for v in blk[192:208]]
        yy = [0.0] * 256
        for n0 in range(0, 256, 128):
            ql = blk[n0 // 2:]
            qh = blk[128 + n0 // 4:]
            s = sc[n0 // 16:]
            for l in range(32):
                is_ = l // 16
                q1 = ((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32
                q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32
                q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32
                q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32
                yy[n0 + l] = f32(f32(d * s[is_]) * q1)
                yy[n0 + l + 32] = f32(f32(d * s[is_ + 2]) * q2)
                yy[n0 + l + 64] = f32(f32(d * s[is_ + 4]) * q3)
                yy[n0 + l + 96] = f32(f32(d * s[is_ + 6]) * q4)
        y += yy
    return y


TYPES = {
    'q4_0': (q4_0, dq4_0), 'q5_0': (q5_0, dq5_0), 'q5_1': (q5_1, dq5_1), 'q8_0': (q8_0, dq8_0),
    'q4_k': (q4_K, dq4_K), 'q5_k': (q5_K, dq5_K), 'q6_k': (q6_K, dq6_K),
}


def cases():
    r = random.Random(16)
    g = lambda s: f32(r.gauss(0, s))
    c = {}
    c['normal'] = [g(0.02) for _ in range(4 * 512)]
    out = [g(1.0) for _ in range(2 * 512)]
    for i in range(0, len(out), 37):
        out[i] = f32(out[i] * 40)
    c['outliers'] = out
    z = [0.0] * 512 + [0.0] * 128 + [g(0.5) for _ in range(384)]
    z[700] = 0.0
    z[640 + 3] = f32(0.25)  # a lone value in an otherwise zero sub-block
    c['zeros'] = z
    c['tiny'] = [g(1e-6) for _ in range(256)] + [g(1e-9) for _ in range(256)] + [g(1e-20) for _ in range(256)]
    c['onesided'] = [f32(r.uniform(0.5, 1.5)) for _ in range(256)] + [f32(-r.uniform(0.001, 2)) for _ in range(256)]
    c['ties'] = [float((i % 16) - 8) for i in range(256)] + [f32(((i % 31) - 15) * 0.5) for i in range(256)]
    return c


def main():
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'quants')
    os.makedirs(here, exist_ok=True)
    for name, x in cases().items():
        with open(os.path.join(here, name + '.f32'), 'wb') as f:
            f.write(struct.pack('<%df' % len(x), *x))
        for t, (enc, dec) in TYPES.items():
            b = enc(x)
            with open(os.path.join(here, '%s.%s' % (name, t)), 'wb') as f:
                f.write(b)
            y = dec(b, len(x))
            assert len(y) == len(x)
            with open(os.path.join(here, '%s.%s.f32' % (name, t)), 'wb') as f:
                f.write(struct.pack('<%df' % len(y), *y))


if __name__ == '__main__':
    main()
