#!/usr/bin/python3
"""Writes gptq.json, the reference for quantize's GPTQ (--method gptq).

GPTQ written from the paper (Frantar et al. 2022, Algorithm 1, without the
lazy batch updates, which change only the order of the sums), in float64,
with the W4A16 quantizer of gen_lowbit.py (compressed-tensors' min/max
scales, float32) choosing a group's scales when its first column is
reached, from the group's columns as they are then (errors of the earlier
columns included):

  H = 2 X^T X / rows                        (float64)
  dead columns (H[i,i] == 0): H[i,i] = 1, W[:, i] = 0
  H += 0.01 * mean(diag H) * I
  U = cholesky(cholesky_inverse(cholesky(H)), upper=True)    (H^-1 = U^T U)
  for each column c:
      if c % group == 0: scale, zero = qparams(W[:, c:c+group] as float32)
      q = round(clamp(w/scale + zero, -8, 7))      (float32, half to even)
      err = (W[:, c] - (q - zero) * scale) / U[c, c]
      W[:, c:] -= err * U[c, c:]

The layers: random weights, inputs with correlated features (a random
mixing of fewer latent features plus noise) and a few outlier features,
one case with a dead input feature. Each case stores the weight and the
inputs (float32, base64), the codes (int8) and the scales (float32).

Run with Debian's torch:  /usr/bin/python3 gen_gptq.py
"""
import base64
import json

import torch

torch.manual_seed(1515)
EPS = torch.finfo(torch.float32).eps


def b64(t):
    return base64.b64encode(t.contiguous().view(torch.uint8).numpy().tobytes()).decode()


def qparams(grp, asym):
    """Scales and zero points of a group [out, n] (float32), as int4Params."""
    lo = torch.clamp(grp.min(dim=1).values, max=0)
    hi = torch.clamp(grp.max(dim=1).values, min=0)
    if asym:
        s = (hi - lo) / 15
    else:
        s = torch.maximum(-lo, hi) / 7.5
    s = torch.clamp(s, min=EPS)
    z = torch.round(torch.clamp(-8 - lo / s, -8, 7)) if asym else torch.zeros_like(s)
    return s, z


def gptq(W, X, group, asym, damp=0.01):
    out, n = W.shape
    W = W.double().clone()
    Xd = X.double()
    H = 2 * Xd.T @ Xd / X.shape[0]
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    H += damp * torch.mean(torch.diag(H)) * torch.eye(n, dtype=torch.float64)
    U = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    groups = (n + group - 1) // group
    codes = torch.zeros(out, n, dtype=torch.int8)
    scales = torch.zeros(out, groups, dtype=torch.float32)
    for c in range(n):
        if c % group == 0:
            s, z = qparams(W[:, c:c + group].float(), asym)
            scales[:, c // group] = s
        q = torch.round(torch.clamp(W[:, c].float() / s + z, -8, 7))
        codes[:, c] = q.to(torch.int8)
        deq = (q - z) * s
        err = (W[:, c] - deq.double()) / U[c, c]
        W[:, c:] -= err[:, None] * U[c, c:][None, :]
    return codes, scales


def inputs(rows, n, latent, outliers, dead=()):
    Z = torch.randn(rows, latent)
    A = torch.randn(latent, n)
    X = Z @ A / latent ** 0.5 + 0.1 * torch.randn(rows, n)
    for c in outliers:
        X[:, c] *= 10
    for c in dead:
        X[:, c] = 0
    return X.float()


def main():
    cases = []
    for out, n, group, asym, block, dead in [
        (16, 160, 48, False, 64, ()),      # groups across blocks, the last one shorter
        (12, 200, 64, True, 128, (7,)),    # asymmetric, a dead input feature
        (8, 96, 96, False, 32, ()),        # one group per row over three blocks
        (10, 130, 128, True, 128, ()),     # the default group and block, a short last group
    ]:
        W = torch.randn(out, n) / n ** 0.5
        X = inputs(160, n, n // 4, (3, n // 2), dead)
        codes, scales = gptq(W, X, group, asym)
        cases.append({"out": out, "in": n, "rows": X.shape[0], "group": group, "asym": asym, "block": block,
                      "weight": b64(W), "x": b64(X), "codes": b64(codes), "scales": b64(scales)})
    with open("gptq.json", "w") as f:
        json.dump({"torch": torch.__version__, "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
