"""Writes the sentence-transformers fixture testdata/models/st-bert-mean and
its expected outputs testdata/expected/st-bert-mean.safetensors.

The model is bert-f16-st (a BertModel) with the files sentence-transformers
saves: modules.json (Transformer, Pooling, Normalize) and
1_Pooling/config.json (mean pooling). The expected file holds bert-f16-st's
expected input_ids, last_hidden_state and pooler_output, and
sentence_embedding computed from that last_hidden_state as
sentence_transformers.models.Pooling.forward (mean over the tokens, weighted
by the attention mask, all ones at batch 1 without padding; the mask sum
clamped at 1e-9) and sentence_transformers.models.Normalize
(torch.nn.functional.normalize, p=2, dim=1) compute it.

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


def main():
    src = os.path.join(HERE, "models", SRC)
    dst = os.path.join(HERE, "models", CASE)
    shutil.rmtree(dst, ignore_errors=True)
    os.makedirs(os.path.join(dst, "1_Pooling"))
    os.makedirs(os.path.join(dst, "2_Normalize"))
    for name in ("config.json", "model.safetensors"):
        shutil.copy(os.path.join(src, name), os.path.join(dst, name))
    exp = read_safetensors(os.path.join(HERE, "expected", SRC + ".safetensors"))
    hidden = exp["last_hidden_state"]
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    with open(os.path.join(dst, "modules.json"), "w") as f:
        json.dump(modules, f, indent=2)
        f.write("\n")
    pooling = {
        "word_embedding_dimension": hidden.shape[-1],
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": False,
        "include_prompt": True,
    }
    with open(os.path.join(dst, "1_Pooling", "config.json"), "w") as f:
        json.dump(pooling, f, indent=2)
        f.write("\n")
    with open(os.path.join(dst, "sentence_bert_config.json"), "w") as f:
        json.dump({"max_seq_length": 40, "do_lower_case": False}, f, indent=2)
        f.write("\n")
    # Normalize saves no files; sentence-transformers keeps its directory.
    with open(os.path.join(dst, "2_Normalize", ".keep"), "w"):
        pass
    mask = torch.ones(hidden.shape[:2], dtype=torch.int64)
    emb = F.normalize(mean_pooling(hidden, mask), p=2, dim=1)
    out = dict(exp)
    out["sentence_embedding"] = emb
    write_safetensors(os.path.join(HERE, "expected", CASE + ".safetensors"), out)
    print(CASE, "sentence_embedding", list(emb.shape), emb[0, :4].tolist())


if __name__ == "__main__":
    main()
