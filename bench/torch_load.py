#!/usr/bin/python3
"""Times torch.load of a checkpoint: best of --runs, after one warm-up load
(page cache warm). torch.load copies every storage into memory, so every
byte is read.

    /usr/bin/python3 bench/torch_load.py FILE [--runs 5]
"""
import argparse
import os
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    size = os.path.getsize(args.file)
    torch.load(args.file)  # warm the page cache
    best = float("inf")
    for _ in range(args.runs):
        t0 = time.perf_counter()
        sd = torch.load(args.file)
        best = min(best, time.perf_counter() - t0)
        del sd
    print("torch.load %s: %d tensors, %.1f MB, best of %d: %.3f s (%.0f MB/s)"
          % (os.path.basename(args.file), len(torch.load(args.file)), size / 1e6, args.runs, best, size / 1e6 / best))


if __name__ == "__main__":
    main()
