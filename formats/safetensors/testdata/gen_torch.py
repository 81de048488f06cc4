#!/usr/bin/python3
"""Writes the torch-made safetensors fixtures of this package's tests.

An independent writer: it lays files out as the reference implementation
(safetensors' Rust core, which the Python package calls) does, with struct and
json only, from the bytes that torch (and numpy, for the unsigned types torch
1.13 lacks) hold. Beside each file it writes what torch holds as JSON, so the
Go tests check the bytes they read against torch's own values:

- floats as the bit patterns of torch's float32 (F16, BF16, F32) or float64
  (F64) values, so NaN, infinities and -0 compare exactly;
- integers and bools as numbers; F8 (which torch 1.13 lacks) as raw codes.

Run with the Debian python3 that has torch (from formats/safetensors):

    /usr/bin/python3 testdata/gen_torch.py
"""

import json
import os
import struct

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)))

# The reference writer's Dtype enum order (declared in increasing alignment);
# tensors are sorted by it descending, then by name.
RANK = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16",
        "I32", "U32", "F32", "F64", "I64", "U64"]

TORCH_DTYPE = {
    torch.bool: "BOOL", torch.uint8: "U8", torch.int8: "I8", torch.int16: "I16",
    torch.float16: "F16", torch.bfloat16: "BF16", torch.int32: "I32",
    torch.float32: "F32", torch.float64: "F64", torch.int64: "I64",
}
NUMPY_DTYPE = {np.dtype("uint16"): "U16", np.dtype("uint32"): "U32", np.dtype("uint64"): "U64"}


class Raw:
    """Bytes of a dtype torch cannot hold (F8 here)."""

    def __init__(self, dtype, shape, data):
        self.dtype, self.shape, self.data = dtype, list(shape), bytes(data)


def describe(t):
    """Returns (dtype, shape, bytes, expected) for a tensor-like value."""
    if isinstance(t, Raw):
        return t.dtype, t.shape, t.data, {"codes": list(t.data)}
    if isinstance(t, np.ndarray):
        dtype = NUMPY_DTYPE[t.dtype]
        data = t.astype(t.dtype.newbyteorder("<")).tobytes()
        return dtype, list(t.shape), data, {"ints": [int(v) for v in t.reshape(-1).tolist()]}
    dtype = TORCH_DTYPE[t.dtype]
    flat = t.contiguous().reshape(-1)
    if t.dtype == torch.bfloat16:
        data = flat.view(torch.int16).numpy().astype("<i2").tobytes()
    else:
        data = flat.numpy().astype(flat.numpy().dtype.newbyteorder("<")).tobytes()
    if dtype in ("F16", "BF16", "F32"):
        vals = flat.float().tolist()
        expected = {"f32bits": [struct.unpack("<I", struct.pack("<f", v))[0] for v in vals]}
    elif dtype == "F64":
        vals = flat.tolist()
        expected = {"f64bits": [struct.unpack("<Q", struct.pack("<d", v))[0] for v in vals]}
    elif dtype == "BOOL":
        expected = {"ints": [int(v) for v in flat.tolist()]}
    else:
        expected = {"ints": [int(v) for v in flat.tolist()]}
    return dtype, list(t.shape), data, expected


def serialize(tensors, metadata):
    """The file bytes, laid out as the reference writer lays them out."""
    items = [(name,) + describe(t) for name, t in tensors.items()]
    items.sort(key=lambda it: (-RANK.index(it[1]), it[0].encode("utf-8")))
    header = {}
    if metadata:
        header["__metadata__"] = dict(sorted(metadata.items()))
    offset = 0
    for name, dtype, shape, data, _ in items:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    body = b"".join(it[3] for it in items)
    expected = {name: {"dtype": dtype, "shape": shape, **exp} for name, dtype, shape, _, exp in items}
    return struct.pack("<Q", len(h)) + h + body, expected


def split(tensors, max_shard_size):
    """huggingface_hub's split_state_dict_into_shards_factory, without tied storages."""
    shards, cur, cur_size = [], {}, 0
    for name, t in tensors.items():
        size = len(describe(t)[2])
        if size > max_shard_size:
            shards.append({name: t})
            continue
        if cur_size + size > max_shard_size:
            shards.append(cur)
            cur, cur_size = {}, 0
        cur[name] = t
        cur_size += size
    if cur:
        shards.append(cur)
    return shards


def write(path, content):
    with open(path, "wb") as f:
        f.write(content)


def main():
    torch.manual_seed(20240601)
    rng = np.random.default_rng(20240601)
    specials = [float("inf"), float("-inf"), float("nan"), -0.0, 0.0, 65504.0, 6e-8, 1e-40, 3.14159, -2.5e38]
    tensors = {
        "bool": torch.tensor([[True, False, True], [False, False, True]]),
        "u8": torch.randint(0, 256, (2, 3), dtype=torch.uint8),
        "i8": torch.randint(-128, 128, (7,), dtype=torch.int8),
        "i16": torch.randint(-32768, 32768, (3, 2), dtype=torch.int16),
        "i32": torch.randint(-2**31, 2**31, (2, 2, 2), dtype=torch.int32),
        "i64": torch.tensor([-2**63, 2**63 - 1, 0, -1, 123456789012345], dtype=torch.int64),
        "f16": torch.cat([torch.randn(12), torch.tensor(specials)]).to(torch.float16).reshape(2, 11),
        "bf16": torch.cat([torch.randn(14), torch.tensor(specials)]).to(torch.bfloat16).reshape(4, 6),
        "f32": torch.cat([torch.randn(6), torch.tensor(specials)]).to(torch.float32).reshape(16),
        "f64": torch.randn(3, 3, dtype=torch.float64),
        "u16": rng.integers(0, 2**16, size=(5,), dtype=np.uint16),
        "u32": rng.integers(0, 2**32, size=(2, 2), dtype=np.uint32),
        "u64": np.array([0, 1, 2**63, 2**64 - 1], dtype=np.uint64),
        "f8_e4m3": Raw("F8_E4M3", [16, 16], range(256)),
        "f8_e5m2": Raw("F8_E5M2", [4, 2], [0x00, 0x3C, 0xBC, 0x7B, 0x7C, 0xFC, 0x7F, 0x01]),
        "scalar": torch.tensor(-1.75, dtype=torch.float32),
        "empty": torch.zeros(0, 3, dtype=torch.float16),
        "layer.0.weight": torch.randn(4, 8, dtype=torch.float32),
    }
    content, expected = serialize(tensors, {"format": "pt", "source": "gen_torch.py"})
    write(os.path.join(OUT, "torch_dtypes.safetensors"), content)
    with open(os.path.join(OUT, "torch_dtypes.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")

    # A sharded checkpoint of a small model, split as huggingface_hub splits
    # (max 600 bytes: the embedding, 1024 bytes, is bigger and gets a shard
    # of its own, which comes first although two tensors precede it), with
    # the index transformers writes.
    model = {
        "h.0.attn.weight": torch.randn(8, 8, dtype=torch.float16),
        "h.0.attn.bias": torch.randn(8, dtype=torch.float16),
        "embed.weight": torch.randn(16, 16, dtype=torch.float32),
        "h.0.mlp.weight": torch.randn(8, 16, dtype=torch.bfloat16),
        "h.1.attn.weight": torch.randn(8, 8, dtype=torch.float16),
        "h.1.attn.bias": torch.randn(8, dtype=torch.float16),
        "h.1.mlp.weight": torch.randn(8, 16, dtype=torch.bfloat16),
        "ln_f.weight": torch.ones(8, dtype=torch.float32),
        "position_ids": torch.arange(16, dtype=torch.int64).reshape(1, 16),
    }
    shards = split(model, 600)
    d = os.path.join(OUT, "torch_sharded")
    os.makedirs(d, exist_ok=True)
    weight_map, total, all_expected = {}, 0, {}
    for i, shard in enumerate(shards):
        fname = "model-%05d-of-%05d.safetensors" % (i + 1, len(shards))
        content, expected = serialize(shard, {"format": "pt"})
        write(os.path.join(d, fname), content)
        for name in shard:
            weight_map[name] = fname
            total += len(describe(shard[name])[2])
        all_expected.update(expected)
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        f.write(json.dumps(index, indent=2, sort_keys=True) + "\n")
    with open(os.path.join(OUT, "torch_sharded.json"), "w") as f:
        json.dump({"order": list(model), "shard_size": 600, "tensors": all_expected}, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
