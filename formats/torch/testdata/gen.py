#!/usr/bin/python3
"""Writes the fixtures of package formats/torch.

Run from anywhere with PyTorch 1.13:

    /usr/bin/python3 formats/torch/testdata/gen.py

It writes, next to itself:

  *.bin, sharded_*/      checkpoints written by torch.save (plus a few built by
                         hand where torch 1.13 cannot write the case: big-endian
                         byte order, deflated records, legacy storage views,
                         _rebuild_tensor_v3)
  expected.json          for every checkpoint, what torch.load returns, in an
                         independent form: tensor names, dtypes, shapes, strides
                         facts, the hex of t.contiguous() in little-endian, the
                         groups of names sharing storage, and the pickle globals
  hostile/*              pickles and checkpoints that must be refused. Each
                         code-running payload creates /tmp/hubmirror-torch-pwned-<name>
                         when executed; this script proves that by executing each
                         one (in a subprocess) and then deletes the marker. The Go
                         tests assert the marker does not exist after refusing it.

Zip fixtures come out byte-identical on every run; legacy ones do not, since
torch names legacy storages by memory address (their expected values do not
change).
"""

import collections
import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
HOSTILE = os.path.join(HERE, "hostile")
MARKER = "/tmp/hubmirror-torch-pwned-"

DTYPE_NAMES = {
    torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}
WRAPPERS = ["state_dict", "model_state_dict", "model", "module"]


def rand(*shape, dtype=torch.float32):
    return torch.randn(*shape).to(dtype)


# ---------------------------------------------------------------- expected

def flatten(obj):
    """The state-dict rule the Go reader documents, written independently."""
    assert isinstance(obj, dict), type(obj)
    for _ in range(4):
        if any(torch.is_tensor(v) for v in obj.values()):
            break
        inner = next((obj[k] for k in WRAPPERS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    out = []

    def walk(d, prefix):
        for k, v in d.items():
            if torch.is_tensor(v):
                out.append((prefix + str(k), v))
            elif isinstance(v, dict):
                walk(v, prefix + str(k) + ".")

    walk(obj, "")
    return out


def tensor_hex(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes().hex()


def storage_range(t):
    s = t.storage()
    nbytes = s.size() * t.element_size()
    return s.data_ptr(), s.data_ptr() + nbytes


def describe(named, prefix_files=None):
    """Expected tensors and tied groups of loaded (name, tensor) pairs.

    Names whose storages overlap in memory form a tied group (torch.load gives
    every storage record its own allocation; legacy storage views are slices
    of their root's)."""
    tensors = []
    ranges = []
    for name, t in named:
        lo, hi = storage_range(t)
        ranges.append((lo, hi))
        tensors.append({
            "name": name,
            "dtype": DTYPE_NAMES[t.dtype],
            "shape": list(t.shape),
            "contiguous": t.is_contiguous(),
            "hex": tensor_hex(t),
        })
    # Union storages whose byte ranges overlap.
    parent = list(range(len(named)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(named)):
        for j in range(i):
            a, b = ranges[i], ranges[j]
            if a[1] > a[0] and b[1] > b[0] and a[0] < b[1] and b[0] < a[1]:
                parent[find(i)] = find(j)
    groups = collections.OrderedDict()
    for i, (name, t) in enumerate(named):
        groups.setdefault(find(i), []).append(i)
    tied = []
    for members in groups.values():
        base = min(ranges[i][0] for i in members)
        for i in members:
            tensors[i]["byte_offset"] = named[i][1].data_ptr() - base
        if len(members) > 1:
            tied.append([named[i][0] for i in members])
    return tensors, tied


class _Dummy:
    """Stands in for every object while recording which globals a pickle names."""

    def __init__(self, *a, **k):
        pass

    def __call__(self, *a, **k):
        return _Dummy()

    def __setitem__(self, k, v):
        pass

    def __setstate__(self, s):
        pass

    def append(self, v):
        pass

    def extend(self, v):
        pass


class _Recorder(pickle.Unpickler):
    def __init__(self, f, seen):
        super().__init__(f)
        self.seen = seen

    def find_class(self, module, name):
        self.seen.add(module + "." + name)
        return _Dummy

    def persistent_load(self, pid):
        return _Dummy()


def pickle_globals(path):
    seen = set()
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(0)
        if head.startswith(b"PK"):
            z = zipfile.ZipFile(f)
            name = next(n for n in z.namelist() if n.endswith("/data.pkl"))
            _Recorder(io.BytesIO(z.read(name)), seen).load()
        else:
            for _ in range(5):  # magic, version, sys_info, object, keys
                _Recorder(f, seen).load()
    return sorted(seen)


EXPECTED = []


def expect_file(rel, note="", loaded=None):
    path = os.path.join(HERE, rel)
    obj = torch.load(path) if loaded is None else loaded
    tensors, tied = describe(flatten(obj))
    EXPECTED.append({"path": rel, "open": "file", "note": note, "tensors": tensors, "tied": tied,
                     "globals": pickle_globals(path)})


def expect_index(rel, note=""):
    path = os.path.join(HERE, rel)
    with open(path) as f:
        index = json.load(f)
    tensors, tied, globs = [], [], set()
    for shard in sorted(set(index["weight_map"].values())):
        spath = os.path.join(os.path.dirname(path), shard)
        ts, td = describe(flatten(torch.load(spath)))
        tensors += ts
        tied += td
        globs.update(pickle_globals(spath))
    EXPECTED.append({"path": rel, "open": "index", "note": note, "tensors": tensors, "tied": tied,
                     "globals": sorted(globs)})


def save(obj, rel, **kw):
    path = os.path.join(HERE, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(obj, path, **kw)
    return path


# ---------------------------------------------------------------- pickle assembler

class Asm:
    """Writes pickle opcodes by hand, for payloads pickle.dumps cannot produce."""

    def __init__(self, proto=2):
        self.b = bytearray()
        if proto >= 2:
            self.b += bytes([0x80, proto])

    def raw(self, b):
        self.b += b
        return self

    def glob(self, module, name):
        return self.raw(b"c" + module.encode() + b"\n" + name.encode() + b"\n")

    def str(self, s):
        e = s.encode()
        return self.raw(b"X" + struct.pack("<I", len(e)) + e)

    def short_str(self, s):  # protocol 4
        e = s.encode()
        return self.raw(b"\x8c" + bytes([len(e)]) + e)

    def bytes(self, b):
        return self.raw(b"B" + struct.pack("<I", len(b)) + b)

    def int(self, n):
        if 0 <= n < 256:
            return self.raw(b"K" + bytes([n]))
        if 0 <= n < 65536:
            return self.raw(b"M" + struct.pack("<H", n))
        if -2**31 <= n < 2**31:
            return self.raw(b"J" + struct.pack("<i", n))
        nb = (n.bit_length() + 8) // 8
        return self.raw(b"\x8a" + bytes([nb]) + n.to_bytes(nb, "little", signed=True))

    def mark(self):
        return self.raw(b"(")

    def tuple(self):
        return self.raw(b"t")

    def empty_tuple(self):
        return self.raw(b")")

    def reduce(self):
        return self.raw(b"R")

    def stop(self):
        return self.raw(b".")

    def put(self, i):
        return self.raw(b"q" + bytes([i]))

    def get(self, i):
        return self.raw(b"h" + bytes([i]))

    def pop(self):
        return self.raw(b"0")

    def false(self):
        return self.raw(b"\x89")

    def none(self):
        return self.raw(b"N")

    def empty_dict(self):
        return self.raw(b"}")

    def setitem(self):
        return self.raw(b"s")

    def build(self):
        return self.raw(b"b")

    def ordered_dict(self):
        return self.glob("collections", "OrderedDict").empty_tuple().reduce()

    def tensor_v2(self, stype, key, numel, offset, size, stride, location="cpu", module="torch"):
        """_rebuild_tensor_v2 over a zip-format storage persistent id."""
        self.glob("torch._utils", "_rebuild_tensor_v2").mark()
        self.mark().str("storage").glob(module, stype).str(key).str(location).int(numel).tuple().raw(b"Q")
        self.int(offset).mark()
        for s in size:
            self.int(s)
        self.tuple().mark()
        for s in stride:
            self.int(s)
        self.tuple().false().ordered_dict().tuple().reduce()
        return self

    def bytes_(self):
        return bytes(self.b)


def write_zip(path, entries, prefix="archive", compress=zipfile.ZIP_STORED):
    """Writes a torch-style zip: entries maps names under prefix/ to bytes."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=compress) as z:
        for name, data in entries:
            info = zipfile.ZipInfo(prefix + "/" + name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = compress
            z.writestr(info, data)


LEGACY_MAGIC = 0x1950a86a20f9469cfc6c


def legacy_stream(obj_pickle, keys, blocks, little_endian=True):
    """A legacy checkpoint from a hand-written object pickle and raw blocks."""
    out = bytearray()
    out += pickle.dumps(LEGACY_MAGIC, protocol=2)
    out += pickle.dumps(1001, protocol=2)
    out += pickle.dumps({"protocol_version": 1001, "little_endian": little_endian,
                         "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2)
    out += obj_pickle
    out += pickle.dumps(keys, protocol=2)
    for count, data in blocks:
        out += struct.pack("<q", count) + data
    return bytes(out)


def read_zip_entries(path):
    with zipfile.ZipFile(path) as z:
        return [(i.filename, z.read(i.filename)) for i in z.infolist()]


def storage_elem_sizes(pkl):
    """Maps the storage keys of a zip data.pkl to their element sizes."""
    sizes = {}

    class U(pickle.Unpickler):
        def find_class(self, module, name):
            if name.endswith("Storage"):
                return getattr(torch, name)
            return _Dummy

        def persistent_load(self, pid):
            sizes[pid[2]] = torch.tensor([], dtype=pid[1].dtype).element_size()
            return _Dummy()

    U(io.BytesIO(pkl)).load()
    return sizes


# ---------------------------------------------------------------- fixtures

def views_dict():
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 7
    tied = rand(10, 4)
    d = collections.OrderedDict()
    d["base"] = base
    d["transposed"] = base.t()                      # shares base's storage, strides (1, 6)
    d["row_slice"] = base[1:3]                       # contiguous, storage offset 6
    d["col_slice"] = base[:, 2:5]                    # non-contiguous, storage offset 2
    d["step_slice"] = base[::2, ::3]                 # strides (12, 3)
    d["element"] = base[2, 3]                        # 0-dim view at offset 15
    d["expanded"] = torch.arange(3, dtype=torch.float32).expand(4, 3)  # stride (0, 1)
    d["embed.weight"] = tied
    d["lm_head.weight"] = tied                       # the same tensor under two names
    d["other_view"] = rand(8)[2:6]                   # view into part of an unnamed tensor
    return d


def dtypes_dict():
    d = collections.OrderedDict()
    d["f32"] = rand(3, 4)
    d["f16"] = rand(5, 3, dtype=torch.float16)
    d["bf16"] = rand(2, 7, dtype=torch.bfloat16)
    d["f64"] = rand(6, dtype=torch.float64)
    d["i64"] = torch.arange(-5, 7, dtype=torch.int64).reshape(3, 4) * 10**12
    d["i32"] = torch.tensor([-2**31, -1, 0, 1, 2**31 - 1], dtype=torch.int32)
    d["i16"] = torch.tensor([-32768, 5, 32767], dtype=torch.int16)
    d["i8"] = torch.tensor([-128, -1, 0, 127], dtype=torch.int8)
    d["u8"] = torch.arange(0, 256, 17, dtype=torch.uint8)
    d["bool"] = torch.tensor([True, False, True, True, False])
    d["scalar_f32"] = torch.tensor(3.25)
    d["scalar_i64"] = torch.tensor(-42, dtype=torch.int64)
    d["num_batches_tracked"] = torch.tensor(0, dtype=torch.int64)
    d["empty"] = torch.zeros(0, 3)
    d["f16_t"] = rand(3, 5, dtype=torch.float16).t()
    d["bf16_slice"] = rand(4, 4, dtype=torch.bfloat16)[1:, 1]
    d["i64_expanded"] = torch.tensor([7, 8], dtype=torch.int64).expand(3, 2)
    return d


def model_dict():
    torch.manual_seed(1)
    m = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.LayerNorm(16), torch.nn.Linear(16, 4),
                            torch.nn.BatchNorm1d(4))
    return m.state_dict()


def make_fixtures():
    torch.manual_seed(0)
    # Plain zip checkpoints; the archive folder is the file's stem.
    save(model_dict(), "zip_default.bin")
    expect_file("zip_default.bin", "torch.save to a path; archive folder zip_default/")

    buf = io.BytesIO()
    torch.save(model_dict(), buf)
    with open(os.path.join(HERE, "zip_archive_folder.bin"), "wb") as f:
        f.write(buf.getvalue())
    expect_file("zip_archive_folder.bin", "torch.save to a buffer; archive folder archive/")

    tmp = save(model_dict(), "my_custom_checkpoint_name.pt")
    os.replace(tmp, os.path.join(HERE, "zip_custom_name.bin"))
    expect_file("zip_custom_name.bin", "archive folder my_custom_checkpoint_name/")

    save(dtypes_dict(), "zip_dtypes.bin")
    expect_file("zip_dtypes.bin", "every dtype, 0-dim, empty and strided tensors")

    save(views_dict(), "zip_views.bin")
    expect_file("zip_views.bin", "strided views, storage offsets, stride 0, tied names")

    save(dtypes_dict(), "zip_proto4.bin", pickle_protocol=4)
    expect_file("zip_proto4.bin", "pickle protocol 4")
    save(views_dict(), "zip_proto5.bin", pickle_protocol=5)
    expect_file("zip_proto5.bin", "pickle protocol 5")
    save(model_dict(), "zip_proto1.bin", pickle_protocol=1)
    expect_file("zip_proto1.bin", "pickle protocol 1")

    sd = model_dict()
    save({"epoch": 3, "step": 1200, "state_dict": sd, "optimizer": {"lr": 0.1, "betas": (0.9, 0.99)},
          "name": "run-7"}, "zip_nested_state_dict.bin")
    expect_file("zip_nested_state_dict.bin", "weights under 'state_dict' beside training state")
    save({"model": {"model": model_dict()}, "config": {"layers": 2}}, "zip_nested_model.bin")
    expect_file("zip_nested_model.bin", "weights under 'model' twice")
    save({"encoder": {"weight": rand(3, 3), "bias": rand(3)}, "decoder": {"layer": {"0": {"weight": rand(2, 3)}}},
          "head": rand(2), "version": 2}, "zip_hierarchical.bin")
    expect_file("zip_hierarchical.bin", "nested dicts flattened to dotted names")

    save({"weight": torch.nn.Parameter(rand(3, 2)), "frozen": torch.nn.Parameter(rand(2), requires_grad=False),
          "buf": rand(2)}, "zip_parameters.bin")
    expect_file("zip_parameters.bin", "nn.Parameter values (_rebuild_parameter)")

    save({"w": rand(2, 2), "untyped": torch.UntypedStorage(8), "typed_storage": torch.FloatStorage(2), "extra": {"size": torch.Size([2, 3]), "dtype": torch.float16, "device": torch.device("cpu"),
                                      "blob": b"\x00\xffbytes", "ids": {1, 2}, "pair": (1.5, None)}},
         "zip_allowed_values.bin")
    expect_file("zip_allowed_values.bin", "torch.Size, dtype, device, bytes (_codecs.encode), set beside tensors")

    # Legacy stream format.
    save(dtypes_dict(), "legacy.bin", _use_new_zipfile_serialization=False)
    expect_file("legacy.bin", "legacy format, every dtype")
    save(views_dict(), "legacy_views.bin", _use_new_zipfile_serialization=False)
    expect_file("legacy_views.bin", "legacy format, strided views and tied names")
    save({"state_dict": model_dict(), "epoch": 1}, "legacy_proto4.bin", _use_new_zipfile_serialization=False,
         pickle_protocol=4)
    expect_file("legacy_proto4.bin", "legacy format, protocol 4, nested")
    make_legacy_storage_view()

    # Sharded checkpoints, both formats.
    for fmt, legacy in (("zip", False), ("legacy", True)):
        folder = "sharded_" + fmt
        shutil.rmtree(os.path.join(HERE, folder), ignore_errors=True)
        sd = model_dict()
        names = list(sd)
        shards = {"pytorch_model-00001-of-00002.bin": names[:3], "pytorch_model-00002-of-00002.bin": names[3:]}
        weight_map = {}
        for shard, ns in shards.items():
            save(collections.OrderedDict((n, sd[n]) for n in ns), os.path.join(folder, shard),
                 _use_new_zipfile_serialization=not legacy)
            weight_map.update({n: shard for n in ns})
        total = sum(t.numel() * t.element_size() for t in sd.values())
        with open(os.path.join(HERE, folder, "pytorch_model.bin.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2, sort_keys=True)
        expect_index(os.path.join(folder, "pytorch_model.bin.index.json"), fmt + " shards")

    make_big_endian()
    make_deflated()
    make_rebuild_from_type()
    make_rebuild_v3()
    make_cuda_saved()


def make_big_endian():
    """torch 1.13 writes the machine's byte order and never a 'big' record:
    rewrite a little-endian checkpoint with byte-swapped storages."""
    src = save(dtypes_dict() | views_dict(), "tmp_le.bin")
    entries = read_zip_entries(src)
    prefix = entries[0][0].split("/")[0]
    pkl = dict(entries)[prefix + "/data.pkl"]
    sizes = storage_elem_sizes(pkl)
    out = []
    for name, data in entries:
        rel = name[len(prefix) + 1:]
        if rel.startswith("data/"):
            es = sizes[rel[5:]]
            if es > 1:
                data = np.frombuffer(data, dtype="<u%d" % es).byteswap().tobytes()
        if rel == "byteorder":
            continue
        out.append((rel, data))
    out.insert(1, ("byteorder", b"big"))
    write_zip(os.path.join(HERE, "zip_big_endian.bin"), out, prefix="big_endian")
    loaded = torch.load(src)
    os.remove(src)
    expect_file("zip_big_endian.bin", "byteorder 'big' with swapped storages (expected = the LE original)",
                loaded=loaded)


def make_deflated():
    src = save(views_dict(), "tmp_deflate.bin")
    entries = read_zip_entries(src)
    prefix = entries[0][0].split("/")[0]
    write_zip(os.path.join(HERE, "zip_deflated.bin"), [(n[len(prefix) + 1:], d) for n, d in entries],
              prefix="deflated", compress=zipfile.ZIP_DEFLATED)
    os.remove(src)
    expect_file("zip_deflated.bin", "every record deflated (bounded copy on read)")


class _FromTypeV2:
    """A tensor pickled through torch._tensor._rebuild_from_type_v2, as torch
    2.x does for tensors carrying Python attributes."""

    def __init__(self, t):
        self.t = t

    def __reduce_ex__(self, proto):
        func, args = self.t.__reduce_ex__(proto)
        return (torch._tensor._rebuild_from_type_v2, (func, torch.Tensor, args, {"note": "attr"}))


def make_rebuild_from_type():
    save({"plain": rand(2, 3), "with_state": _FromTypeV2(rand(4))}, "zip_from_type_v2.bin")
    expect_file("zip_from_type_v2.bin", "torch._tensor._rebuild_from_type_v2 wrapper")


def make_rebuild_v3():
    """_rebuild_tensor_v3 over an untyped storage (newer torch, for dtypes
    without storage types). torch 1.13 cannot load it: the expectation is
    computed here with numpy."""
    storage = bytes(range(1, 17))  # 16 bytes
    a = Asm(2).ordered_dict()
    a.str("h")
    a.glob("torch._utils", "_rebuild_tensor_v3").mark()
    a.mark().str("storage").glob("torch", "UntypedStorage").str("0").str("cpu").int(16).tuple().raw(b"Q")
    a.int(1).mark().int(3).tuple().mark().int(1).tuple().false().ordered_dict().glob("torch", "float16").tuple().reduce()
    a.setitem()
    a.str("u16")
    a.glob("torch._utils", "_rebuild_tensor_v3").mark()
    a.mark().str("storage").glob("torch", "UntypedStorage").str("0").str("cpu").int(16).tuple().raw(b"Q")
    a.int(0).mark().int(2).int(2).tuple().mark().int(1).int(2).tuple().false().ordered_dict().glob("torch", "uint16")
    a.tuple().reduce().setitem().stop()
    write_zip(os.path.join(HERE, "zip_rebuild_v3.bin"),
              [("data.pkl", a.bytes_()), ("data/0", storage), ("version", b"3\n")])
    f16 = np.frombuffer(storage, dtype="<f2")[1:4].tobytes().hex()
    u16 = np.lib.stride_tricks.as_strided(np.frombuffer(storage, dtype="<u2"), shape=(2, 2), strides=(2, 4))
    EXPECTED.append({
        "path": "zip_rebuild_v3.bin", "open": "file", "note": "hand-built _rebuild_tensor_v3 (numpy expectation)",
        "tensors": [
            {"name": "h", "dtype": "F16", "shape": [3], "contiguous": True, "hex": f16, "byte_offset": 2},
            {"name": "u16", "dtype": "U16", "shape": [2, 2], "contiguous": False,
             "hex": np.ascontiguousarray(u16).tobytes().hex(), "byte_offset": 0},
        ],
        "tied": [["h", "u16"]],
        "globals": ["collections.OrderedDict", "torch.UntypedStorage", "torch._utils._rebuild_tensor_v3",
                    "torch.float16", "torch.uint16"],
    })


def make_cuda_saved():
    """A checkpoint saved from a GPU: torch.cuda storage types, location
    cuda:0 (hand-built; torch.load with map_location='cpu' gives the
    expectation)."""
    a = Asm(2).ordered_dict()
    a.str("w").tensor_v2("FloatStorage", "0", 6, 0, (2, 3), (3, 1), location="cuda:0", module="torch.cuda").setitem()
    a.str("h").tensor_v2("HalfStorage", "1", 4, 1, (3,), (1,), location="cuda:1", module="torch.cuda").setitem()
    a.stop()
    w = (np.arange(6, dtype="<f4") - 2.5).tobytes()
    h = np.array([1, -2, 0.5, 65504], dtype="<f2").tobytes()
    write_zip(os.path.join(HERE, "zip_cuda_saved.bin"),
              [("data.pkl", a.bytes_()), ("data/0", w), ("data/1", h), ("version", b"3\n")])
    expect_file("zip_cuda_saved.bin", "torch.cuda storage types, cuda locations",
                loaded=torch.load(os.path.join(HERE, "zip_cuda_saved.bin"), map_location="cpu"))


class _PID:
    def __init__(self, pid):
        self.pid = pid


class _Reduce:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


class _PidPickler(pickle.Pickler):
    def persistent_id(self, obj):
        return obj.pid if isinstance(obj, _PID) else None


def pickle_with_pids(obj, protocol=2):
    buf = io.BytesIO()
    _PidPickler(buf, protocol=protocol).dump(obj)
    return buf.getvalue()


def legacy_tensor(pid, offset, size, stride):
    return _Reduce(torch._utils._rebuild_tensor_v2,
                   (_PID(pid), offset, size, stride, False, collections.OrderedDict()))


def make_legacy_storage_view():
    """Legacy storage views (view_metadata), which torch >= 1.0 never writes
    but still loads: a root of 6 floats and a view of its elements 2..4."""
    root = np.arange(6, dtype="<f4") * 1.5
    obj = collections.OrderedDict()
    obj["root"] = legacy_tensor(("storage", torch.FloatStorage, "r", "cpu", 6, None), 0, (2, 3), (3, 1))
    obj["view"] = legacy_tensor(("storage", torch.FloatStorage, "r", "cpu", 6, ("v", 2, 3)), 1, (2,), (1,))
    data = legacy_stream(pickle_with_pids(obj), ["r"], [(6, root.tobytes())])
    path = os.path.join(HERE, "legacy_storage_view.bin")
    with open(path, "wb") as f:
        f.write(data)
    expect_file("legacy_storage_view.bin", "legacy view_metadata: 'view' is elements 3..4 of root")


# ---------------------------------------------------------------- plain values

def canon(v):
    """A canonical text of a plain Python value; the Go test prints what its
    unpickler built the same way."""
    if v is None or v is True or v is False:
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, bytes):
        return "b:" + v.hex()
    if isinstance(v, tuple):
        return "(" + ",".join(canon(x) for x in v) + ")"
    if isinstance(v, list):
        return "[" + ",".join(canon(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(canon(k) + ":" + canon(x) for k, x in v.items()) + "}"
    if isinstance(v, (set, frozenset)):
        return "set(" + ",".join(sorted(canon(x) for x in v)) + ")"
    raise TypeError(type(v))


def make_values():
    """One value tree pickled with every protocol 0-5, for the opcode tests."""
    shared = [1, "two"]
    value = {
        "ints": [0, 1, -1, 255, 256, 65535, 65536, -2**31, 2**31 - 1, 2**31, 2**63 - 1, -2**63, 2**70, -2**70],
        "floats": [0.0, -0.25, 3.5, 1e100, -1.5e-300],
        "strs": ["", "ascii", "\u00fcn\u00efc\u00f6d\u00e9 \u20ac \U0001f600", "line\nbreak", "quote'\"\\", "x" * 300],
        "bytes": [b"", b"\x00\xff\x80abc", b"y" * 300],
        "consts": (True, False, None),
        "tuples": [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)],
        "nested": {"shared": shared, "again": shared, 7: "int key", -3: [[[]]]},
        "set": {3, 1, 2},
        "frozenset": frozenset({"x"}),
        "ordered": collections.OrderedDict([("z", 1), ("a", 2)]),
    }
    files = []
    for proto in range(6):
        name = "values_p%d.pkl" % proto
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(pickle.dumps(value, protocol=proto))
        files.append(name)
    with open(os.path.join(HERE, "values.json"), "w") as f:
        json.dump({"canon": canon(value), "files": files}, f, indent=1, ensure_ascii=False)


# ---------------------------------------------------------------- hostile

HOSTILE_LIVE = []  # (file, how to execute it) for the liveness check


def hostile(name, data, ext="pkl", live=None):
    os.makedirs(HOSTILE, exist_ok=True)
    path = os.path.join(HOSTILE, name + "." + ext)
    with open(path, "wb") as f:
        f.write(data)
    if live:
        HOSTILE_LIVE.append((name, path, live))


def hostile_zip(name, pkl):
    """A zip checkpoint around a hostile data.pkl, so the reader gets past the
    container to the pickle's result."""
    write_zip(os.path.join(HOSTILE, "zip_" + name + ".bin"), [("data.pkl", pkl), ("data/0", b"\0" * 16)])


def touch(name):
    return "touch " + MARKER + name


def call_global(a, module, func, *args):
    a.glob(module, func).mark()
    for x in args:
        a.str(x) if isinstance(x, str) else a.raw(x)
    return a.tuple().reduce()


def make_hostile():
    shutil.rmtree(HOSTILE, ignore_errors=True)
    # Plain code execution through a forbidden global.
    for mod in ("os", "posix", "nt"):
        n = mod + "_system"
        hostile(n, call_global(Asm(2), mod, "system", touch(n)).stop().bytes_(),
                live=None if mod == "nt" else "pickle")
    n = "builtins_eval"
    hostile(n, call_global(Asm(2), "builtins", "eval", "__import__('os').system(%r)" % touch(n)).stop().bytes_(),
            live="pickle")
    n = "builtins_exec"
    hostile(n, call_global(Asm(2), "builtins", "exec", "import os; os.system(%r)" % touch(n)).stop().bytes_(),
            live="pickle")
    n = "builtins_open"
    hostile(n, call_global(Asm(2), "builtins", "open", MARKER + n, "w").stop().bytes_(), live="pickle")
    n = "builtins_getattr"
    a = Asm(2).glob("builtins", "getattr").mark()
    call_global(a, "builtins", "__import__", "os").str("system").tuple().reduce()
    a.mark().str(touch(n)).tuple().reduce().stop()
    hostile(n, a.bytes_(), live="pickle")
    n = "builtins_import"
    a = Asm(2)
    call_global(a, "builtins", "__import__", "os").put(0).pop()
    a.glob("builtins", "getattr").mark().get(0).str("system").tuple().reduce()
    a.mark().str(touch(n)).tuple().reduce().stop()
    hostile(n, a.bytes_(), live="pickle")
    n = "subprocess_popen"
    a = Asm(2).glob("subprocess", "Popen").mark().raw(b"]").mark().str("touch").str(MARKER + n).raw(b"e")
    a.tuple().reduce().stop()
    hostile(n, a.bytes_(), live="pickle-wait")
    n = "subprocess_check_output"
    a = Asm(2).glob("subprocess", "check_output").mark().raw(b"]").mark().str("touch").str(MARKER + n).raw(b"e")
    a.tuple().reduce().stop()
    hostile(n, a.bytes_(), live="pickle")
    n = "runpy_run_code"
    a = Asm(2).glob("runpy", "_run_code").mark().str("import os; os.system(%r)" % touch(n)).empty_dict().tuple()
    a.reduce().stop()
    hostile(n, a.bytes_(), live="pickle")
    n = "importlib_import_module"
    a = Asm(2)
    call_global(a, "importlib", "import_module", "os").put(0).pop()
    a.glob("builtins", "getattr").mark().get(0).str("system").tuple().reduce()
    a.mark().str(touch(n)).tuple().reduce().stop()
    hostile(n, a.bytes_(), live="pickle")
    n = "functools_partial"
    a = Asm(2).glob("functools", "partial").mark().glob("os", "system").str(touch(n)).tuple().reduce()
    a.empty_tuple().reduce().stop()
    hostile(n, a.bytes_(), live="pickle")
    n = "torch_load_from_bytes"
    inner = call_global(Asm(2), "os", "system", touch(n)).stop().bytes_()
    a = Asm(3).glob("torch.storage", "_load_from_bytes").mark().bytes(inner).tuple().reduce().stop()
    hostile(n, a.bytes_(), live="pickle")
    # The global's name assembled from memoized strings (protocol 4).
    n = "stack_global_memo"
    a = Asm(4).short_str("os").raw(b"\x94").short_str("system").raw(b"\x94").pop().pop()
    a.raw(b"h\x00h\x01\x93").mark().short_str(touch(n)).tuple().reduce().stop()
    hostile(n, a.bytes_(), live="pickle")
    n = "stack_global_long_binget"
    a = Asm(4).short_str("builtins").raw(b"r\x2c\x01\x00\x00").short_str("exec").raw(b"r\x00\x00\x01\x00")
    a.pop().pop().raw(b"j\x2c\x01\x00\x00j\x00\x00\x01\x00\x93")
    a.mark().short_str("import os; os.system(%r)" % touch(n)).tuple().reduce().stop()
    hostile(n, a.bytes_(), live="pickle")
    # Protocol 0/1 opcodes that import: INST and OBJ.
    n = "inst_opcode"
    hostile(n, b"(S'" + touch(n).encode() + b"'\nios\nsystem\n.", live="pickle")
    n = "obj_opcode"
    a = Asm(1).mark().glob("os", "system").str(touch(n)).raw(b"o").stop()
    hostile(n, a.bytes_(), live="pickle")
    # A forbidden global inside a zip checkpoint's data.pkl.
    n = "zip_data_pkl"
    payload = call_global(Asm(2), "os", "system", touch(n)).stop().bytes_()
    write_zip(os.path.join(HOSTILE, n + ".bin"), [("data.pkl", payload), ("data/0", b"\0" * 16), ("version", b"3\n")])
    HOSTILE_LIVE.append((n, os.path.join(HOSTILE, n + ".bin"), "torch"))

    # Hidden in the middle of a real state dict, written by torch.save itself.
    class Evil:
        def __init__(self, name):
            self.name = name

        def __reduce__(self):
            return (os.system, (touch(self.name),))

    for n, legacy in (("zip_hidden_in_state_dict", False), ("legacy_hidden_in_state_dict", True)):
        sd = model_dict()
        items = list(sd.items())
        evil = collections.OrderedDict(items[:2] + [("evil", Evil(n))] + items[2:])
        torch.save(evil, os.path.join(HOSTILE, n + ".bin"), _use_new_zipfile_serialization=not legacy)
        HOSTILE_LIVE.append((n, os.path.join(HOSTILE, n + ".bin"), "torch"))
    # A whole pickled module (torch.save(model)): its class is not allowed.
    torch.save(torch.nn.Linear(2, 2), os.path.join(HOSTILE, "nn_module.bin"))

    # Allowed globals called with the wrong arguments.
    hostile("bad_args_rebuild_tensor", Asm(2).glob("torch._utils", "_rebuild_tensor_v2").mark().str("x").tuple()
            .reduce().stop().bytes_())
    hostile("bad_args_ordered_dict", Asm(2).glob("collections", "OrderedDict").mark().int(5).tuple().reduce()
            .stop().bytes_())
    hostile("bad_args_codecs_encode", Asm(2).glob("_codecs", "encode").mark().str("x").str("rot13").tuple()
            .reduce().stop().bytes_())
    hostile("bad_args_storage_call", Asm(2).glob("torch", "FloatStorage").mark().int(5).tuple().reduce()
            .stop().bytes_())
    a = Asm(2).ordered_dict().str("w")
    a.tensor_v2("FloatStorage", "0", 4, 0, (2, 2), (2, 1)).setitem().stop()
    pkl = bytearray(a.bytes_())
    # Size passed as a string instead of a tuple: replace the size tuple.
    bad = Asm(2).ordered_dict().str("w")
    bad.glob("torch._utils", "_rebuild_tensor_v2").mark()
    bad.mark().str("storage").glob("torch", "FloatStorage").str("0").str("cpu").int(4).tuple().raw(b"Q")
    bad.int(0).str("2x2").mark().int(2).int(1).tuple().false().ordered_dict().tuple().reduce().setitem().stop()
    write_zip(os.path.join(HOSTILE, "zip_bad_size_arg.bin"),
              [("data.pkl", bad.bytes_()), ("data/0", b"\0" * 16), ("version", b"3\n")])

    # Storages that lie.
    huge = Asm(2).ordered_dict().str("w").tensor_v2("FloatStorage", "0", 2**40, 0, (2**20, 2**20), (2**20, 1))
    write_zip(os.path.join(HOSTILE, "zip_huge_storage.bin"),
              [("data.pkl", huge.setitem().stop().bytes_()), ("data/0", b"\0" * 16), ("version", b"3\n")])
    outside = Asm(2).ordered_dict().str("w").tensor_v2("FloatStorage", "../../../etc/passwd", 4, 0, (4,), (1,))
    write_zip(os.path.join(HOSTILE, "zip_storage_outside.bin"),
              [("data.pkl", outside.setitem().stop().bytes_()), ("data/0", b"\0" * 16), ("version", b"3\n")])
    missing = Asm(2).ordered_dict().str("w").tensor_v2("FloatStorage", "7", 4, 0, (4,), (1,))
    write_zip(os.path.join(HOSTILE, "zip_storage_missing.bin"),
              [("data.pkl", missing.setitem().stop().bytes_()), ("data/0", b"\0" * 16), ("version", b"3\n")])
    extent = Asm(2).ordered_dict().str("w").tensor_v2("FloatStorage", "0", 4, 1, (2, 2), (2, 1))
    write_zip(os.path.join(HOSTILE, "zip_tensor_extent.bin"),
              [("data.pkl", extent.setitem().stop().bytes_()), ("data/0", b"\0" * 16), ("version", b"3\n")])
    overflow = Asm(2).ordered_dict().str("w").tensor_v2("FloatStorage", "0", 4, 0, (2**62, 2**62), (1, 1))
    write_zip(os.path.join(HOSTILE, "zip_shape_overflow.bin"),
              [("data.pkl", overflow.setitem().stop().bytes_()), ("data/0", b"\0" * 16), ("version", b"3\n")])
    expand = Asm(2).ordered_dict().str("w").tensor_v2("FloatStorage", "0", 4, 0, (2**20, 2**20), (0, 0))
    write_zip(os.path.join(HOSTILE, "zip_expand_bomb.bin"),
              [("data.pkl", expand.setitem().stop().bytes_()), ("data/0", b"\0" * 16), ("version", b"3\n")])
    write_zip(os.path.join(HOSTILE, "zip_bad_byteorder.bin"),
              [("data.pkl", Asm(2).ordered_dict().str("w").tensor_v2("FloatStorage", "0", 4, 0, (4,), (1,))
                .setitem().stop().bytes_()), ("byteorder", b"middle"), ("data/0", b"\0" * 16)])

    def legacy_obj(numel, size=(4,), stride=(1,)):
        obj = collections.OrderedDict(w=legacy_tensor(("storage", torch.FloatStorage, "k", "cpu", numel, None), 0,
                                                      size, stride))
        return pickle_with_pids(obj)

    with open(os.path.join(HOSTILE, "legacy_huge_storage.bin"), "wb") as f:
        f.write(legacy_stream(legacy_obj(2**40), ["k"], [(4, b"\0" * 16)]))
    with open(os.path.join(HOSTILE, "legacy_count_lies.bin"), "wb") as f:
        f.write(legacy_stream(legacy_obj(4), ["k"], [(2**40, b"\0" * 16)]))
    with open(os.path.join(HOSTILE, "legacy_truncated_storage.bin"), "wb") as f:
        f.write(legacy_stream(legacy_obj(4), ["k"], [(4, b"\0" * 10)]))
    with open(os.path.join(HOSTILE, "legacy_unlisted_storage.bin"), "wb") as f:
        f.write(legacy_stream(legacy_obj(4), [], []))
    with open(os.path.join(HOSTILE, "legacy_unknown_key.bin"), "wb") as f:
        f.write(legacy_stream(legacy_obj(4), ["k", "nope"], [(4, b"\0" * 16), (4, b"\0" * 16)]))
    with open(os.path.join(HOSTILE, "legacy_view_outside.bin"), "wb") as f:
        obj = collections.OrderedDict(v=legacy_tensor(("storage", torch.FloatStorage, "k", "cpu", 4, ("v", 3, 5)), 0,
                                                      (1,), (1,)))
        f.write(legacy_stream(pickle_with_pids(obj), ["k"], [(4, b"\0" * 16)]))

    # Malformed pickles and resource bombs.
    hostile("mark_bomb", Asm(2).raw(b"(" * 20000).raw(b"t" * 20000).stop().bytes_())
    hostile_zip("list_bomb", Asm(2).raw(b"]" * 20000).raw(b"a" * 19999).stop().bytes_())
    d = Asm(2)
    for _ in range(20000):
        d.empty_dict().str("a")
    d.empty_dict()
    d.raw(b"s" * 20000).stop()
    hostile_zip("dict_nesting_bomb", d.bytes_())
    # Billion laughs: each level is a dict holding the previous level twice.
    a = Asm(2).ordered_dict().str("w").tensor_v2("FloatStorage", "0", 4, 0, (4,), (1,)).setitem()
    a.raw(b"r\x00\x00\x00\x00")  # LONG_BINPUT 0
    for i in range(1, 60):
        a.pop().empty_dict().str("a").raw(b"j" + struct.pack("<I", i - 1)).setitem()
        a.str("b").raw(b"j" + struct.pack("<I", i - 1)).setitem().raw(b"r" + struct.pack("<I", i))
    a.stop()
    write_zip(os.path.join(HOSTILE, "zip_dag_bomb.bin"), [("data.pkl", a.bytes_()), ("data/0", b"\0" * 16)])
    hostile_zip("self_cycle", Asm(2).empty_dict().put(0).str("me").get(0).setitem().stop().bytes_())
    hostile("memo_missing", Asm(2).get(5).stop().bytes_())
    hostile("stack_underflow", Asm(2).reduce().stop().bytes_())
    hostile("pop_below_mark", Asm(2).int(1).mark().raw(b"2").stop().bytes_())
    hostile("unknown_opcode", Asm(2).raw(b"\xff").stop().bytes_())
    hostile("ext_opcode", Asm(2).raw(b"\x82\x01").stop().bytes_())
    hostile("absurd_length", Asm(4).raw(b"\x8d" + struct.pack("<Q", 2**62) + b"abc").stop().bytes_())
    hostile("negative_binstring", Asm(2).raw(b"T" + struct.pack("<i", -5)).stop().bytes_())
    hostile("no_stop", Asm(2).empty_dict().bytes_())
    good = open(os.path.join(HERE, "legacy.bin"), "rb").read()
    hostile("truncated_legacy", good[: len(good) // 3], ext="bin")
    zgood = open(os.path.join(HERE, "zip_default.bin"), "rb").read()
    hostile("truncated_zip", zgood[: len(zgood) // 2], ext="bin")
    hostile("not_a_checkpoint", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, ext="bin")
    hostile("pickle_not_checkpoint", pickle.dumps({"a": 1}, protocol=2))


def check_live():
    """Proves the code-running payloads are real: each one, executed the way
    an unrestricted loader would, creates its marker."""
    workdir = tempfile.mkdtemp()
    for name, path, how in HOSTILE_LIVE:
        marker = MARKER + name
        if os.path.exists(marker):
            os.remove(marker)
        if how.startswith("pickle"):
            code = "import pickle,sys,time\ntry:\n pickle.load(open(sys.argv[1],'rb'))\nexcept Exception: pass\n"
            if how == "pickle-wait":
                code += "time.sleep(1)\n"
        else:
            code = "import torch,sys\ntry:\n torch.load(sys.argv[1])\nexcept Exception: pass\n"
        subprocess.run([sys.executable, "-c", code, path], check=True, cwd=workdir,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not os.path.exists(marker):
            sys.exit("payload %s did not run when executed: not a real test" % name)
        os.remove(marker)
    shutil.rmtree(workdir)
    print("liveness: %d payloads create their marker when executed" % len(HOSTILE_LIVE))


def main():
    for f in os.listdir(HERE):
        if f.endswith(".bin"):
            os.remove(os.path.join(HERE, f))
    make_fixtures()
    make_values()
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(EXPECTED, f, indent=1)
    make_hostile()
    check_live()
    print("wrote %d fixtures and %d hostile files" % (len(EXPECTED), len(os.listdir(HOSTILE))))


if __name__ == "__main__":
    main()
