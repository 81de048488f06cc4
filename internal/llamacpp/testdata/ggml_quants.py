#!/usr/bin/env python3
"""Quantizes QUANTS_DIR/<case>.f32 with llama.cpp's own ggml (libggml-base.so
of node-llama-cpp, through ctypes: quantize_row_*_ref and dequantize_row_*)
and compares the bytes and the dequantized values with the expected files
there, <case>.<type> and <case>.<type>.f32 (llamacpp_test.go's
TestGGMLQuantizesAsWeDo writes them with formats/gguf's Encode and Decode).

    python3 ggml_quants.py LIBGGML_BASE_SO QUANTS_DIR

Prints one JSON line per case and type: {"case", "type", "blocks",
"bytes_equal", "first_diff", "values_equal"}.
"""
import ctypes
import glob
import json
import os
import sys

BLOCK = {'q4_0': (32, 18), 'q5_0': (32, 22), 'q5_1': (32, 24), 'q8_0': (32, 34),
         'q4_k': (256, 144), 'q5_k': (256, 176), 'q6_k': (256, 210)}
NAMES = {'q4_0': 'q4_0', 'q5_0': 'q5_0', 'q5_1': 'q5_1', 'q8_0': 'q8_0',
         'q4_k': 'q4_K', 'q5_k': 'q5_K', 'q6_k': 'q6_K'}


def main():
    lib = ctypes.CDLL(sys.argv[1])
    qdir = sys.argv[2]
    for path in sorted(glob.glob(os.path.join(qdir, '*.f32'))):
        base = os.path.basename(path)[:-4]
        if '.' in base:
            continue
        raw = open(path, 'rb').read()
        n = len(raw) // 4
        x = (ctypes.c_float * n).from_buffer_copy(raw)
        for t, (elems, size) in BLOCK.items():
            out = ctypes.create_string_buffer(n // elems * size)
            q = getattr(lib, 'quantize_row_%s_ref' % NAMES[t])
            q.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
            q(x, out, n)
            got = out.raw
            want = open(os.path.join(qdir, '%s.%s' % (base, t)), 'rb').read()
            diff = next((i for i in range(len(want)) if got[i] != want[i]), -1)
            res = {'case': base, 'type': t, 'blocks': n // elems, 'bytes_equal': got == want, 'first_diff': diff}
            dq = getattr(lib, 'dequantize_row_%s' % NAMES[t], None)
            if dq is not None:
                dq.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
                y = (ctypes.c_float * n)()
                src = ctypes.create_string_buffer(want, len(want))
                dq(src, y, n)
                wanty = open(os.path.join(qdir, '%s.%s.f32' % (base, t)), 'rb').read()
                res['values_equal'] = bytes(y) == wanty
            print(json.dumps(res))


if __name__ == '__main__':
    main()
