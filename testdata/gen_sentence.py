"""Writes the sentence-transformers fixtures and their expected outputs
testdata/expected/<case>.safetensors:

- st-bert-mean: bert-f16-st (a BertModel) with modules.json (Transformer,
  Pooling, Normalize) and 1_Pooling/config.json (mean pooling);
- st-bert-wmean-dense: bert-f16-st with weighted-mean pooling, a Dense
  module 32 -> 24 with bias and Tanh (2_Dense, model.safetensors), a Dense
  module 24 -> 16 without bias and Identity (3_Dense, pytorch_model.bin),
  and Normalize;
- st-qwen3-last: qwen3-st (a decoder, as Qwen3-Embedding) with last-token
  pooling and Normalize.

Each expected file holds the source case's expected input_ids and outputs,
and sentence_embedding computed from its last_hidden_state as
sentence_transformers.models.Pooling.forward computes it (attention mask all
ones at batch 1 without padding): mean over the tokens weighted by the mask,
the mask sum clamped at 1e-9; weighted mean with the weights 1..n times the
mask; last token: the last position whose mask is 1, found by flipping the
mask; then each sentence_transformers.models.Dense (activation(linear(x)))
and sentence_transformers.models.Normalize (torch.nn.functional.normalize,
p=2, dim=1).

Run with /usr/bin/python3 (PyTorch, no safetensors package: the files are
read and written by the small codec below). Run again after gen_models.py.
"""
import json
import os
import shutil
import struct

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = "bert-f16-st"
CASE = "st-bert-mean"

DTYPES = {"F32": (torch.float32, 4), "I64": (torch.int64, 8)}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    body = data[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, _ = DTYPES[info["dtype"]]
        start, end = info["data_offsets"]
        t = torch.frombuffer(bytearray(body[start:end]), dtype=dtype)
        out[name] = t.reshape(info["shape"]).clone()
    return out


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        t = t.contiguous()
        code = {torch.float32: "F32", torch.int64: "I64"}[t.dtype]
        raw = t.numpy().tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = {"format": "pt", "producer": "testdata/gen_sentence.py"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def mean_pooling(token_embeddings, attention_mask):
    # sentence_transformers.models.Pooling.forward, pooling_mode_mean_tokens
    mask = attention_mask.unsqueeze(-1).expand(token_embeddings.size()).to(token_embeddings.dtype)
    sum_embeddings = torch.sum(token_embeddings * mask, 1)
    sum_mask = torch.clamp(mask.sum(1), min=1e-9)
    return sum_embeddings / sum_mask


def weighted_mean_pooling(token_embeddings, attention_mask):
    # pooling_mode_weightedmean_tokens: position i (from 0) weighs i + 1
    mask = attention_mask.unsqueeze(-1).expand(token_embeddings.size()).to(token_embeddings.dtype)
    n = token_embeddings.shape[1]
    weights = torch.arange(1, n + 1).unsqueeze(0).unsqueeze(-1).expand(token_embeddings.size()).to(token_embeddings.dtype)
    mask = mask * weights
    return torch.sum(token_embeddings * mask, 1) / torch.clamp(mask.sum(1), min=1e-9)


def last_token_pooling(token_embeddings, attention_mask):
    # pooling_mode_lasttoken: the last position whose mask is 1
    bs, n, hidden = token_embeddings.shape
    values, indices = attention_mask.flip(1).max(1)
    indices = torch.where(values == 0, n - 1, indices)
    gather = (n - indices - 1).unsqueeze(-1).repeat(1, hidden).unsqueeze(1)
    mask = attention_mask.unsqueeze(-1).expand(token_embeddings.size()).to(token_embeddings.dtype)
    return torch.gather(token_embeddings * mask, 1, gather).squeeze(1)


ACTIVATIONS = {
    "torch.nn.modules.activation.Tanh": torch.nn.Tanh(),
    "torch.nn.modules.linear.Identity": torch.nn.Identity(),
}


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def make_case(case, src, pooling_mode, denses, seed):
    """Writes models/<case> (src's config and weights, modules.json, the
    Pooling config, the Dense modules: (in, out, bias, activation, file
    format) each, Normalize) and expected/<case>.safetensors."""
    srcdir = os.path.join(HERE, "models", src)
    dst = os.path.join(HERE, "models", case)
    shutil.rmtree(dst, ignore_errors=True)
    os.makedirs(dst)
    for name in os.listdir(srcdir):
        if name in ("config.json", "model.safetensors", "pytorch_model.bin"):
            shutil.copy(os.path.join(srcdir, name), os.path.join(dst, name))
    exp = read_safetensors(os.path.join(HERE, "expected", src + ".safetensors"))
    hidden = exp["last_hidden_state"]
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    pooling = {
        "word_embedding_dimension": hidden.shape[-1],
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": pooling_mode == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": pooling_mode == "weightedmean",
        "pooling_mode_lasttoken": pooling_mode == "lasttoken",
        "include_prompt": True,
    }
    os.makedirs(os.path.join(dst, "1_Pooling"))
    write_json(os.path.join(dst, "1_Pooling", "config.json"), pooling)
    mask = torch.ones(hidden.shape[:2], dtype=torch.int64)
    pool = {"mean": mean_pooling, "weightedmean": weighted_mean_pooling, "lasttoken": last_token_pooling}[pooling_mode]
    emb = pool(hidden, mask)
    g = torch.Generator().manual_seed(seed)
    for in_f, out_f, bias, act, fmt in denses:
        i = len(modules)
        sub = f"{i}_Dense"
        modules.append({"idx": i, "name": str(i), "path": sub, "type": "sentence_transformers.models.Dense"})
        os.makedirs(os.path.join(dst, sub))
        write_json(os.path.join(dst, sub, "config.json"),
                   {"in_features": in_f, "out_features": out_f, "bias": bias, "activation_function": act})
        linear = torch.nn.Linear(in_f, out_f, bias=bias)
        with torch.no_grad():
            linear.weight.copy_(torch.randn(out_f, in_f, generator=g) / in_f ** 0.5 * 2)
            if bias:
                linear.bias.copy_(0.1 * torch.randn(out_f, generator=g))
            emb = ACTIVATIONS[act](linear(emb))
        sd = {"linear." + k: v.detach().clone() for k, v in linear.state_dict().items()}
        if fmt == "st":
            write_safetensors(os.path.join(dst, sub, "model.safetensors"), sd)
        else:
            torch.save(sd, os.path.join(dst, sub, "pytorch_model.bin"))
    i = len(modules)
    modules.append({"idx": i, "name": str(i), "path": f"{i}_Normalize", "type": "sentence_transformers.models.Normalize"})
    # Normalize saves no files; sentence-transformers keeps its directory.
    os.makedirs(os.path.join(dst, f"{i}_Normalize"))
    with open(os.path.join(dst, f"{i}_Normalize", ".keep"), "w"):
        pass
    write_json(os.path.join(dst, "modules.json"), modules)
    write_json(os.path.join(dst, "sentence_bert_config.json"), {"max_seq_length": 40, "do_lower_case": False})
    emb = F.normalize(emb, p=2, dim=1)
    out = dict(exp)
    out["sentence_embedding"] = emb.detach()
    write_safetensors(os.path.join(HERE, "expected", case + ".safetensors"), out)
    print(case, "sentence_embedding", list(emb.shape), emb[0, :4].tolist())


def main():
    make_case("st-bert-mean", "bert-f16-st", "mean", [], 0)
    make_case("st-bert-wmean-dense", "bert-f16-st", "weightedmean",
              [(32, 24, True, "torch.nn.modules.activation.Tanh", "st"),
               (24, 16, False, "torch.nn.modules.linear.Identity", "bin")], 901)
    make_case("st-qwen3-last", "qwen3-st", "lasttoken", [], 0)


if __name__ == "__main__":
    main()
