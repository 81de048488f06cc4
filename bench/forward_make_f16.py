#!/usr/bin/python3
"""Writes a Llama-style float16 checkpoint of random weights for the peak-memory
measurement of `hubmirror forward` (bench/forward_memory.sh):

    /usr/bin/python3 bench/forward_make_f16.py OUTDIR [--layers 8] [--hidden 1024]

Defaults: hidden 1024, 8 layers, 16 heads (4 KV heads), intermediate 4096,
vocabulary 32000, untied lm_head: about 200M parameters, about 400 MB of F16
in one model.safetensors (written by hand: 8-byte little-endian header length,
JSON header padded with spaces to a multiple of 8, data), plus config.json.
"""
import argparse
import json
import os
import struct

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--vocab", type=int, default=32000)
    a = ap.parse_args()
    H, L, V = a.hidden, a.layers, a.vocab
    I, nh, nkv = 4 * H, 16, 4
    dh = H // nh
    shapes = {"model.embed_tokens.weight": (V, H), "model.norm.weight": (H,), "lm_head.weight": (V, H)}
    for i in range(L):
        p = f"model.layers.{i}."
        shapes.update({
            p + "input_layernorm.weight": (H,), p + "post_attention_layernorm.weight": (H,),
            p + "self_attn.q_proj.weight": (nh * dh, H), p + "self_attn.k_proj.weight": (nkv * dh, H),
            p + "self_attn.v_proj.weight": (nkv * dh, H), p + "self_attn.o_proj.weight": (H, nh * dh),
            p + "mlp.gate_proj.weight": (I, H), p + "mlp.up_proj.weight": (I, H), p + "mlp.down_proj.weight": (H, I),
        })
    header, off = {}, 0
    for name, shape in shapes.items():
        n = int(np.prod(shape)) * 2
        header[name] = {"dtype": "F16", "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    os.makedirs(a.outdir, exist_ok=True)
    rng = np.random.default_rng(0)
    with open(os.path.join(a.outdir, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for name, shape in shapes.items():
            if len(shape) == 1:
                v = 1 + 0.1 * rng.standard_normal(shape, dtype=np.float32)
            else:
                v = rng.standard_normal(shape, dtype=np.float32) / np.sqrt(shape[1])
            f.write(v.astype("<f2").tobytes())
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": H, "intermediate_size": I,
           "num_hidden_layers": L, "num_attention_heads": nh, "num_key_value_heads": nkv, "vocab_size": V,
           "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 2048,
           "tie_word_embeddings": False, "torch_dtype": "float16"}
    with open(os.path.join(a.outdir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)


if __name__ == "__main__":
    main()
