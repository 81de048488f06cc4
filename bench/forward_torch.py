#!/usr/bin/python3
"""Times PyTorch on the shapes of the Go forward benchmarks (forward/bench_test.go):

  - BERT-base (hidden 768, 12 layers, 12 heads, intermediate 3072) at sequence 128,
  - one Llama-3.2-1B-shaped decoder layer (hidden 2048, 32 heads, 8 KV heads,
    intermediate 8192, RoPE, SwiGLU) at sequence 256,
  - beside it Qwen3-0.6B-, Gemma-3-1B-, Phi-4-mini-, Mixtral-8x7B- and
    Qwen3-30B-A3B-shaped layers (the MoE ones as transformers 5 runs them:
    experts fused in 3-D tensors, the loop over the experts hit),

batch 1, float32, random weights, in plain torch (the Hugging Face definitions,
eager attention), under torch.inference_mode, with torch.set_num_threads(N) for
each N given (default 1 and 2).

    /usr/bin/python3 bench/forward_torch.py [--runs 5] [--threads 1,2] [--only Mixtral,Qwen3Moe]

Prints one line per case and thread count: the median and the best time of
--runs runs after one warm-up run, and the median CPU time of the process
(all its threads) per run: on a machine shared with other work, the work
itself.
"""
import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F


def rand(*shape):
    fan_in = shape[-1]
    return (torch.rand(*shape) * 2 - 1) / math.sqrt(fan_in)


def bert_base():
    H, I, L, V, P, nh = 768, 3072, 12, 30522, 512, 12
    w = {
        "word": rand(V, H), "pos": rand(P, H), "type": rand(2, H),
        "ln": (torch.ones(H), torch.zeros(H)),
        "layers": [],
        "pool": (rand(H, H), rand(H)),
    }
    for _ in range(L):
        w["layers"].append({
            "q": (rand(H, H), rand(H)), "k": (rand(H, H), rand(H)), "v": (rand(H, H), rand(H)),
            "o": (rand(H, H), rand(H)), "ln1": (torch.ones(H), torch.zeros(H)),
            "up": (rand(I, H), rand(I)), "down": (rand(H, I), rand(H)), "ln2": (torch.ones(H), torch.zeros(H)),
        })
    dh = H // nh

    def forward(ids):
        n = ids.shape[0]
        x = w["word"][ids] + w["pos"][:n] + w["type"][0]
        x = F.layer_norm(x, (H,), *w["ln"], 1e-12)
        for l in w["layers"]:
            q = F.linear(x, *l["q"]).view(n, nh, dh).transpose(0, 1)
            k = F.linear(x, *l["k"]).view(n, nh, dh).transpose(0, 1)
            v = F.linear(x, *l["v"]).view(n, nh, dh).transpose(0, 1)
            p = (q @ k.transpose(-1, -2) / math.sqrt(dh)).softmax(-1)
            ctx = (p @ v).transpose(0, 1).reshape(n, H)
            x = F.layer_norm(F.linear(ctx, *l["o"]) + x, (H,), *l["ln1"], 1e-12)
            h = F.gelu(F.linear(x, *l["up"]))
            x = F.layer_norm(F.linear(h, *l["down"]) + x, (H,), *l["ln2"], 1e-12)
        return x, torch.tanh(F.linear(x[0], *w["pool"]))

    return forward, torch.arange(128) * 7919 % 1000


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def experts(E, I, H):
    """transformers 5's fused experts, gate_up_proj [E, 2I, H] and down_proj
    [E, H, I], filled in place (no temporaries: Mixtral's are 5.6 GB)."""
    gate_up, down = torch.empty(E, 2 * I, H), torch.empty(E, H, I)
    for e in range(E):
        gate_up[e].uniform_(-1 / math.sqrt(H), 1 / math.sqrt(H))
        down[e].uniform_(-1 / math.sqrt(I), 1 / math.sqrt(I))
    return gate_up, down


def moe_mlp(m, w, E, top_k, norm_topk, act):
    """A sparse MoE block of transformers 5 (MixtralSparseMoeBlock,
    Qwen3MoeSparseMoeBlock): the router's softmax, top-k (renormalized when
    norm_topk), then MixtralExperts' eager loop over the experts hit, each
    on its tokens, index_add_ into the output."""
    probs = F.softmax(F.linear(m, w["router"]), dim=-1, dtype=torch.float)
    top_w, top_i = torch.topk(probs, top_k, dim=-1)
    if norm_topk:
        top_w /= top_w.sum(dim=-1, keepdim=True)
    out = torch.zeros_like(m)
    mask = F.one_hot(top_i, num_classes=E).permute(2, 1, 0)
    for e in torch.greater(mask.sum(dim=(-1, -2)), 0).nonzero():
        e = e[0]
        pos, tok = torch.where(mask[e])
        g, u = F.linear(m[tok], w["gate_up"][e]).chunk(2, dim=-1)
        h = F.linear(act(g) * u, w["down"][e]) * top_w[tok, pos, None]
        out.index_add_(0, tok, h)
    return out


def decoder_layer(kind="llama"):
    """One decoder layer at sequence 256: Llama 3.2 1B's shape, Qwen3 0.6B's
    (q/k norms, head_dim 128), Gemma 3 1B's (sandwich (1 + w) norms, q/k
    norms, head_dim 256, gelu-tanh, scaled embeddings), Phi-4-mini's (fused
    qkv_proj and gate_up_proj, rotary over 96 of 128 dimensions with
    LongRoPE's short factors and attention factor), Mixtral 8x7B's (8
    experts of 14336, top-2) or Qwen3-30B-A3B's (q/k norms, 128 experts of
    768, top-8 renormalized)."""
    H, I, nh, nkv, dh, theta = {
        "llama": (2048, 8192, 32, 8, 64, 500000.0),
        "qwen3": (1024, 3072, 16, 8, 128, 1000000.0),
        "gemma3": (1152, 6912, 4, 1, 256, 10000.0),
        "phi3": (3072, 8192, 24, 8, 128, 10000.0),
        "mixtral": (4096, 14336, 32, 8, 128, 1000000.0),
        "qwen3_moe": (2048, 768, 32, 4, 128, 1000000.0),
    }[kind]
    E, top_k = {"mixtral": (8, 2), "qwen3_moe": (128, 8)}.get(kind, (0, 0))
    V, n = 1024, 256
    gemma = kind == "gemma3"
    w = {
        "embed": rand(V, H), "in": torch.ones(H), "post": torch.ones(H), "norm": torch.ones(H),
        "q": rand(nh * dh, H), "k": rand(nkv * dh, H), "v": rand(nkv * dh, H), "o": rand(H, nh * dh),
        "pre_ff": torch.ones(H), "post_ff": torch.ones(H), "qn": torch.ones(dh), "kn": torch.ones(dh),
    }
    if E:
        w["router"] = rand(E, H)
        w["gate_up"], w["down"] = experts(E, I, H)
    else:
        w["gate"], w["up"], w["down"] = rand(I, H), rand(I, H), rand(H, I)
    act = (lambda x: F.gelu(x, approximate="tanh")) if gemma else F.silu
    phi = kind == "phi3"
    rot, scale = (dh * 3 // 4, math.sqrt(1 + math.log(32) / math.log(4096))) if phi else (dh, 1.0)
    if phi:
        w["qkv"] = torch.cat((w.pop("q"), w.pop("k"), w.pop("v")))
        w["gate_up"] = torch.cat((w.pop("gate"), w.pop("up")))
        short = torch.linspace(1.0, 1.5, rot // 2)

    def rms(x, wt):
        y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)
        return y * (1.0 + wt) if gemma else wt * y

    def forward(ids):
        n = ids.shape[0]
        inv = 1.0 / (theta ** (torch.arange(0, rot, 2).float() / rot))
        if phi:
            inv = 1.0 / (short * theta ** (torch.arange(0, rot, 2).float() / rot))
        f = torch.arange(n).float()[:, None] * inv[None, :]
        emb = torch.cat((f, f), -1)
        cos, sin = emb.cos() * scale, emb.sin() * scale
        mask = torch.full((n, n), torch.finfo(torch.float32).min).triu(1)
        x = w["embed"][ids]
        if gemma:
            x = x * torch.tensor(H ** 0.5)
        a = rms(x, w["in"])
        if phi:
            qkv = F.linear(a, w["qkv"])
            q, k, v = qkv[:, :nh * dh], qkv[:, nh * dh:(nh + nkv) * dh], qkv[:, (nh + nkv) * dh:]
        else:
            q, k, v = F.linear(a, w["q"]), F.linear(a, w["k"]), F.linear(a, w["v"])
        q, k = q.view(n, nh, dh), k.view(n, nkv, dh)
        if kind in ("qwen3", "gemma3", "qwen3_moe"):
            q, k = rms(q, w["qn"]), rms(k, w["kn"])
        q, k = q.transpose(0, 1), k.transpose(0, 1)
        v = v.reshape(n, nkv, dh).transpose(0, 1)
        q = torch.cat((q[..., :rot] * cos + rotate_half(q[..., :rot]) * sin, q[..., rot:]), -1)
        k = torch.cat((k[..., :rot] * cos + rotate_half(k[..., :rot]) * sin, k[..., rot:]), -1)
        k = k.repeat_interleave(nh // nkv, 0)
        v = v.repeat_interleave(nh // nkv, 0)
        p = (q @ k.transpose(-1, -2) / math.sqrt(dh) + mask).softmax(-1)
        h = F.linear((p @ v).transpose(0, 1).reshape(n, nh * dh), w["o"])
        x = x + (rms(h, w["post"]) if gemma else h)
        m = rms(x, w["pre_ff"] if gemma else w["post"])
        if E:
            h = moe_mlp(m, w, E, top_k, True, act)
        elif phi:
            g, u = F.linear(m, w["gate_up"]).chunk(2, dim=-1)
            h = F.linear(u * act(g), w["down"])
        else:
            h = F.linear(act(F.linear(m, w["gate"])) * F.linear(m, w["up"]), w["down"])
        x = x + (rms(h, w["post_ff"]) if gemma else h)
        return rms(x, w["norm"])

    return forward, torch.arange(n) * 7919 % 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--only", default="", help="comma-separated parts of the case names to run (default: all)")
    args = ap.parse_args()
    torch.manual_seed(0)
    cases = [("BertBase (seq 128)", bert_base), ("LlamaLayer (seq 256)", lambda: decoder_layer("llama")),
             ("Qwen3Layer (seq 256)", lambda: decoder_layer("qwen3")), ("Gemma3Layer (seq 256)", lambda: decoder_layer("gemma3")),
             ("Phi3Layer (seq 256)", lambda: decoder_layer("phi3")),
             ("MixtralLayer (seq 256)", lambda: decoder_layer("mixtral")),
             ("Qwen3MoeLayer (seq 256)", lambda: decoder_layer("qwen3_moe"))]
    only = [o for o in args.only.split(",") if o]
    cases = [(name, make()) for name, make in cases if not only or any(o in name for o in only)]
    print(f"torch {torch.__version__}, {torch.get_num_interop_threads()} interop threads")
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        for name, (fn, ids) in cases:
            with torch.inference_mode():
                fn(ids)
                times, cpu = [], []
                for _ in range(args.runs):
                    t0, c0 = time.perf_counter(), time.process_time()
                    fn(ids)
                    times.append(time.perf_counter() - t0)
                    cpu.append(time.process_time() - c0)
            print(f"torch {name:23s} threads={threads}  median {statistics.median(times)*1e3:8.1f} ms"
                  f"  best {min(times)*1e3:8.1f} ms  CPU median {statistics.median(cpu)*1e3:8.1f} ms")


if __name__ == "__main__":
    main()
