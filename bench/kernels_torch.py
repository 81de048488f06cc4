#!/usr/bin/python3
"""Times torch.nn.functional.linear (and the attention matmuls) on the shapes
of BenchmarkLinear and BenchmarkMatMul in internal/kernels, with 1 and
2 threads, and prints GFLOP/s in a form comparable to `go test -bench`.

Run with /usr/bin/python3 (Debian's python3-torch 1.13). Three ways of
running a linear layer in PyTorch are timed, because they differ by 30x on
this build:

  f32        F.linear on f32 tensors. Debian builds torch with BLAS_INFO=generic:
             this is whatever libblas.so.3 the Debian alternatives point to,
             the reference (netlib) BLAS at a few GFLOP/s, or OpenBLAS once
             libopenblas0 is installed (printed at the start; OpenBLAS's own
             thread count is set to the torch thread count).
  f32_onednn torch._C._nn.mkldnn_linear on to_mkldnn() tensors: oneDNN's f32
             GEMM, the speed of a PyTorch built with MKL (about 100 GFLOP/s
             on one core). This is the fair reference for an f32 forward pass.
  bf16       F.linear with input and weight in bfloat16 (model.to(torch.bfloat16)):
             oneDNN with AVX512-BF16 dot products; the input is rounded to
             bf16 as well, so its numerics differ from an f32-accumulating
             Linear over bf16 weights.

Attention products (MatMul) are timed as torch.matmul (f32, generic BLAS)
and as mkldnn_linear (oneDNN).

The "layer" rows time the kernel sequence of BenchmarkBERTLayer and
BenchmarkLlamaLayer (one BERT-base layer at sequence 128, one Llama-1B layer
at sequence 256 with a causal mask) written with torch ops, once with
F.linear/torch.matmul as installed (f32) and once with every product through
oneDNN (f32_onednn), the speed an MKL-built PyTorch gets."""

import argparse
import ctypes
import os
import time

import torch
import torch.nn.functional as F

LINEAR = [
    ("bert_qkv", 128, 768, 768),
    ("bert_up", 128, 3072, 768),
    ("bert_down", 128, 768, 3072),
    ("llama_q", 256, 2048, 2048),
    ("llama_kv", 256, 512, 2048),
    ("llama_up", 256, 8192, 2048),
    ("llama_down", 256, 2048, 8192),
    ("decode_up", 1, 8192, 2048),
]

MATMUL = [
    ("scores_bert", 128, 128, 64, True),
    ("context_bert", 128, 64, 128, False),
    ("scores_llama", 256, 256, 64, True),
    ("context_llama", 256, 64, 256, False),
]


def timeit(fn, min_time):
    """Runs fn once to warm up, then until min_time has passed (at least
    once); returns the mean and the best time of the timed runs."""
    fn()
    n, total = 0, 0.0
    best = float("inf")
    while n == 0 or total < min_time:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best = min(best, dt)
        total += dt
        n += 1
    return total / n, best


class Products:
    """Matrix products in one of the modes: lin(x, w, b) = x·wᵀ + b and
    mm(a, b) = a·b, on dense f32 tensors."""

    def __init__(self, mode):
        self.mode = mode

    def prep(self, w):
        return w.to_mkldnn() if self.mode == "f32_onednn" else w

    def lin(self, x, w, b=None):
        if self.mode == "f32_onednn":
            return torch._C._nn.mkldnn_linear(x.to_mkldnn(), w, b).to_dense()
        return F.linear(x, w, b)

    def mm_t(self, a, b):  # a·bᵀ
        if self.mode == "f32_onednn":
            return torch._C._nn.mkldnn_linear(a.contiguous().to_mkldnn(), b.contiguous().to_mkldnn(), None).to_dense()
        return torch.matmul(a, b.t())

    def mm(self, a, b):  # a·b
        if self.mode == "f32_onednn":
            return self.mm_t(a, b.t())
        return torch.matmul(a, b)


def bert_layer(p, s=128, h=768, heads=12, inter=3072):
    dh = h // heads
    ws = {n: p.prep(torch.randn(o, i) * 0.05) for n, o, i in
          [("q", h, h), ("k", h, h), ("v", h, h), ("o", h, h), ("i", inter, h), ("d", h, inter)]}
    bs = {n: torch.randn(o) for n, o in [("q", h), ("k", h), ("v", h), ("o", h), ("i", inter), ("d", h)]}
    if p.mode == "f32_onednn":
        bs = {n: b.to_mkldnn() for n, b in bs.items()}
    gamma, beta = torch.randn(h), torch.randn(h)
    x = torch.randn(s, h)

    def run():
        q, k, v = (p.lin(x, ws[n], bs[n]) for n in "qkv")
        ctx = torch.empty(s, h)
        for hd in range(heads):
            sl = slice(hd * dh, (hd + 1) * dh)
            sc = torch.softmax(p.mm_t(q[:, sl], k[:, sl]) * 0.125, dim=-1)
            ctx[:, sl] = p.mm(sc, v[:, sl].contiguous())
        a = F.layer_norm(p.lin(ctx, ws["o"], bs["o"]) + x, (h,), gamma, beta, 1e-12)
        f = F.gelu(p.lin(a, ws["i"], bs["i"]))
        return F.layer_norm(p.lin(f, ws["d"], bs["d"]) + a, (h,), gamma, beta, 1e-12)

    return run, 2.0 * s * (4 * h * h + 2 * h * inter + 2 * s * h)


def llama_layer(p, s=256, h=2048, heads=32, kv_heads=8, inter=8192, theta=500000.0):
    dh = h // heads
    kv = kv_heads * dh
    ws = {n: p.prep(torch.randn(o, i) * 0.02) for n, o, i in
          [("q", h, h), ("k", kv, h), ("v", kv, h), ("o", h, h), ("g", inter, h), ("u", inter, h), ("d", h, inter)]}
    n1, n2 = torch.randn(h), torch.randn(h)
    x = torch.randn(s, h)
    inv = 1.0 / (theta ** (torch.arange(0, dh, 2, dtype=torch.int64).float() / dh))
    freqs = torch.outer(torch.arange(s).float(), inv)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    mask = torch.full((s, s), float("-inf")).triu(1)

    def rms(t, w):
        return w * (t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + 1e-5))

    def rope(t):  # t: s × n × dh
        t1, t2 = t[..., : dh // 2], t[..., dh // 2:]
        return t * cos[:, None, :] + torch.cat((-t2, t1), dim=-1) * sin[:, None, :]

    def run():
        xn = rms(x, n1)
        q = rope(p.lin(xn, ws["q"]).view(s, heads, dh))
        k = rope(p.lin(xn, ws["k"]).view(s, kv_heads, dh))
        v = p.lin(xn, ws["v"]).view(s, kv_heads, dh)
        ctx = torch.empty(s, heads, dh)
        for hd in range(heads):
            kvh = hd // (heads // kv_heads)
            sc = torch.softmax(p.mm_t(q[:, hd], k[:, kvh]) * 0.125 + mask, dim=-1)
            ctx[:, hd] = p.mm(sc, v[:, kvh].contiguous())
        a = p.lin(ctx.view(s, h), ws["o"]) + x
        an = rms(a, n2)
        return p.lin(F.silu(p.lin(an, ws["g"])) * p.lin(an, ws["u"]), ws["d"]) + a

    return run, 2.0 * s * (2 * h * h + 2 * h * kv + 3 * h * inter + 2 * s * h)


def blas():
    """Returns the path of the libblas.so.3 torch uses and a function that
    sets its thread count (a no-op unless it is OpenBLAS)."""
    path = os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3")
    try:
        lib = ctypes.CDLL(path)
        set_threads = lib.openblas_set_num_threads
        set_threads.argtypes = [ctypes.c_int]
        return path, set_threads
    except (OSError, AttributeError):
        return path, lambda n: None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--min-time", type=float, default=1.0, help="seconds per shape")
    ap.add_argument("--modes", nargs="+", default=["f32", "f32_onednn", "bf16"])
    ap.add_argument("--only", choices=["linear", "matmul", "layer"], nargs="+",
                    default=["linear", "matmul", "layer"])
    args = ap.parse_args()
    torch.manual_seed(0)
    blas_path, set_blas_threads = blas()
    print(f"# torch {torch.__version__}, libblas.so.3 = {blas_path}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        set_blas_threads(threads)
        for mode in (args.modes if "linear" in args.only else []):
            for name, m, out, inn in LINEAR:
                x = torch.randn(m, inn)
                w = torch.randn(out, inn) * 0.05
                b = torch.randn(out)
                if mode == "f32":
                    fn = lambda: F.linear(x, w, b)
                elif mode == "f32_onednn":
                    xm, wm, bm = x.to_mkldnn(), w.to_mkldnn(), b.to_mkldnn()
                    fn = lambda: torch._C._nn.mkldnn_linear(xm, wm, bm)
                elif mode == "bf16":
                    xb, wb, bb = x.bfloat16(), w.bfloat16(), b.bfloat16()
                    fn = lambda: F.linear(xb, wb, bb)
                else:
                    raise SystemExit(f"unknown mode {mode}")
                with torch.no_grad():
                    mean, best = timeit(fn, args.min_time)
                flop = 2.0 * m * out * inn
                print(f"TorchLinear/{name}/m={m},out={out},in={inn}/{mode}/threads={threads}"
                      f"\t{mean*1e9:14.0f} ns/op\t{flop/mean/1e9:8.2f} GFLOP/s\t(best {flop/best/1e9:.2f})")
        for name, m, n, k, trans_b in (MATMUL if "matmul" in args.only else []):
            for mode in ("f32", "f32_onednn"):
                a = torch.randn(m, k)
                bm = torch.randn(n, k) if trans_b else torch.randn(k, n)
                if mode == "f32":
                    fn = (lambda: torch.matmul(a, bm.t())) if trans_b else (lambda: torch.matmul(a, bm))
                else:
                    # mkldnn_linear(a, w) = a·wᵀ; for a·b pass bᵀ made contiguous.
                    am = a.to_mkldnn()
                    wm = (bm if trans_b else bm.t().contiguous()).to_mkldnn()
                    fn = lambda: torch._C._nn.mkldnn_linear(am, wm, None)
                with torch.no_grad():
                    mean, best = timeit(fn, args.min_time)
                flop = 2.0 * m * n * k
                print(f"TorchMatMul/{name}/m={m},n={n},k={k}/{mode}/threads={threads}"
                      f"\t{mean*1e9:14.0f} ns/op\t{flop/mean/1e9:8.2f} GFLOP/s\t(best {flop/best/1e9:.2f})")

        for mode in ("f32", "f32_onednn") if "layer" in args.only else ():
            for name, make in (("BERTLayer", bert_layer), ("LlamaLayer", llama_layer)):
                run, flop = make(Products(mode))
                with torch.no_grad():
                    mean, best = timeit(run, args.min_time)
                print(f"TorchLayer/{name}/{mode}/threads={threads}"
                      f"\t{mean*1e9:14.0f} ns/op\t{flop/mean/1e9:8.2f} GFLOP/s\t(best {flop/best/1e9:.2f})")


if __name__ == "__main__":
    main()
