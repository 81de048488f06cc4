#!/usr/bin/python3
"""Writes a Llama-shaped float32 checkpoint of random weights for the memory
benchmark of the conversion and quantization passes (bench/passes_memory.sh):

    /usr/bin/python3 bench/passes_make_llama.py OUTDIR [--format safetensors|bin]
        [--layers 8] [--hidden 2048] [--vocab 32000]

Defaults are TinyLlama's shapes (hidden 2048, intermediate 5632, 32 heads,
4 KV heads, vocabulary 32000, untied lm_head) with 8 layers instead of 22:
about 483M parameters, about 1.93 GB of F32. --format safetensors writes
model.safetensors by hand (8-byte little-endian header length, JSON header
padded with spaces to a multiple of 8, data); --format bin writes
pytorch_model.bin with torch.save (zip format, as transformers saves). Both
get config.json and a small tokenizer_config.json (a side file the passes
copy). Weights are N(0, 1/in) so that activations keep their scale through
the layers; norms are 1 + N(0, 0.1).
"""
import argparse
import collections
import json
import os
import struct

import numpy as np


def shapes_of(H, L, V, I, nh, nkv):
    dh = H // nh
    shapes = collections.OrderedDict()
    shapes["model.embed_tokens.weight"] = (V, H)
    for i in range(L):
        p = f"model.layers.{i}."
        shapes[p + "input_layernorm.weight"] = (H,)
        shapes[p + "self_attn.q_proj.weight"] = (nh * dh, H)
        shapes[p + "self_attn.k_proj.weight"] = (nkv * dh, H)
        shapes[p + "self_attn.v_proj.weight"] = (nkv * dh, H)
        shapes[p + "self_attn.o_proj.weight"] = (H, nh * dh)
        shapes[p + "post_attention_layernorm.weight"] = (H,)
        shapes[p + "mlp.gate_proj.weight"] = (I, H)
        shapes[p + "mlp.up_proj.weight"] = (I, H)
        shapes[p + "mlp.down_proj.weight"] = (H, I)
    shapes["model.norm.weight"] = (H,)
    shapes["lm_head.weight"] = (V, H)
    return shapes


def values(rng, shape):
    if len(shape) == 1:
        return 1 + 0.1 * rng.standard_normal(shape, dtype=np.float32)
    v = rng.standard_normal(shape, dtype=np.float32)
    v *= np.float32(1 / np.sqrt(shape[1]))
    return v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--format", choices=["safetensors", "bin"], default="safetensors")
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--vocab", type=int, default=32000)
    a = ap.parse_args()
    H, L, V = a.hidden, a.layers, a.vocab
    I, nh, nkv = H * 11 // 4, 32, 4
    shapes = shapes_of(H, L, V, I, nh, nkv)
    os.makedirs(a.outdir, exist_ok=True)
    rng = np.random.default_rng(0)
    if a.format == "safetensors":
        header, off = {"__metadata__": {"format": "pt"}}, 0
        for name, shape in shapes.items():
            n = int(np.prod(shape)) * 4
            header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [off, off + n]}
            off += n
        h = json.dumps(header).encode()
        h += b" " * (-len(h) % 8)
        tmp = os.path.join(a.outdir, "model.safetensors.tmp")
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(h)))
            f.write(h)
            for name, shape in shapes.items():
                f.write(values(rng, shape).astype("<f4").tobytes())
        os.rename(tmp, os.path.join(a.outdir, "model.safetensors"))
    else:
        import torch
        sd = collections.OrderedDict()
        for name, shape in shapes.items():
            sd[name] = torch.from_numpy(values(rng, shape))
        tmp = os.path.join(a.outdir, "pytorch_model.bin.tmp")
        torch.save(sd, tmp)
        os.rename(tmp, os.path.join(a.outdir, "pytorch_model.bin"))
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": H, "intermediate_size": I,
           "num_hidden_layers": L, "num_attention_heads": nh, "num_key_value_heads": nkv, "vocab_size": V,
           "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 2048,
           "hidden_act": "silu", "tie_word_embeddings": False, "torch_dtype": "float32"}
    with open(os.path.join(a.outdir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(a.outdir, "tokenizer_config.json"), "w") as f:
        json.dump({"model_max_length": 2048, "bos_token": "<s>", "eos_token": "</s>"}, f, indent=2)


if __name__ == "__main__":
    main()
