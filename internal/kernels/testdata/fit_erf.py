#!/usr/bin/python3
"""Fits the two polynomials of the vectorized erf in ops_amd64.s (geluAVX512)
and prints them as float32 literals, with the largest error of an f32
evaluation against math.erf.

  |z| < 1:      erf(z)  = z * P(z*z),             P of degree 6
  1 <= |z| < 4: erfc(z) = exp(-z*z) * R(min(z,4)), R of degree 10

The fit is a weighted least-squares fit on Chebyshev nodes, reweighted
(Lawson's algorithm) toward the minimax fit. Run: /usr/bin/python3 fit_erf.py
"""
import math

import numpy as np


def fit(f, a, b, deg, var, n=4000, iters=40):
    k = np.arange(n)
    z = (a + b) / 2 + (b - a) / 2 * np.cos(np.pi * (k + 0.5) / n)
    u, y = var(z), np.array([f(v) for v in z])
    w = np.ones(n) / n
    V = np.vander(u, deg + 1, increasing=True)
    for _ in range(iters):
        sw = np.sqrt(w)
        c, *_ = np.linalg.lstsq(V * sw[:, None], y * sw, rcond=None)
        e = np.abs(V @ c - y)
        w = w * e / e.max() + 1e-15
        w /= w.sum()
    return [float(np.float32(v)) for v in c]


def horner32(c, u):
    r = np.float32(c[-1])
    for ci in c[-2::-1]:
        r = np.float32(np.float32(r * np.float32(u)) + np.float32(ci))
    return r


def main():
    p = fit(lambda z: math.erf(z) / z, 1e-8, 1.0, 6, lambda z: z * z)
    r = fit(lambda z: math.erfc(z) * math.exp(z * z), 1.0, 4.0, 10, lambda z: z)
    worst_a = max(abs(float(np.float32(z) * horner32(p, np.float32(z) * np.float32(z))) - math.erf(float(np.float32(z))))
                  / 2**-24 for z in np.linspace(0, 1, 20001))
    worst_b = max(abs(math.exp(-float(z) ** 2) * float(horner32(r, np.float32(z))) - math.erfc(float(z))) / 2**-24
                  for z in np.linspace(1, 4, 20001, dtype=np.float32))
    print("P", ", ".join(repr(v) for v in p))
    print("R", ", ".join(repr(v) for v in r))
    print(f"largest error (units of 2^-24): |z|<1 {worst_a:.3f}, erfc on [1,4] {worst_b:.3f}")


if __name__ == "__main__":
    main()
