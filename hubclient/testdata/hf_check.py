#!/usr/bin/env python3
"""Cross-checks hubmirror against the real huggingface_hub, when it can be
imported (it is not packaged for Debian: point PYTHONPATH at a checkout's
src/). Used by TestHuggingfaceHubReadsOurCache, which skips without it.

  hf_check.py list CACHE                  print the cache layout in the format of hf_layout.txt
  hf_check.py download CACHE REPO [REV]   snapshot_download into CACHE (HF_ENDPOINT set by the caller)
  hf_check.py read CACHE REPO [REV]       read a cache offline: scan_cache_dir, snapshot_download
                                          (local_files_only), try_to_load_from_cache on every file
"""
import hashlib
import os
import sys

try:  # Debian's filelock predates the mode= argument newer huggingface_hub passes.
    import filelock

    class _FileLock(filelock.FileLock):
        def __init__(self, *a, mode=None, **k):
            super().__init__(*a, **k)

    filelock.FileLock = _FileLock
except ImportError:
    pass


def listing(cache_dir):
    out = []
    for root, dirs, names in os.walk(cache_dir):
        rel_root = os.path.relpath(root, cache_dir)
        if rel_root == ".locks" or rel_root.startswith(".locks" + os.sep):
            continue
        for d in dirs:
            rel = os.path.relpath(os.path.join(root, d), cache_dir)
            if rel != ".locks":
                out.append("%s/ dir" % rel)
        for n in names:
            p = os.path.join(root, n)
            rel = os.path.relpath(p, cache_dir)
            if os.path.islink(p):
                out.append("%s -> %s" % (rel, os.readlink(p)))
            else:
                with open(p, "rb") as f:
                    out.append("%s file %s" % (rel, hashlib.sha256(f.read()).hexdigest()))
    return sorted(out)


def main():
    cmd, cache = sys.argv[1], sys.argv[2]
    if cmd == "list":
        for line in listing(cache):
            print(line)
        return
    import huggingface_hub as hf

    repo = sys.argv[3]
    rev = sys.argv[4] if len(sys.argv) > 4 else None
    if cmd == "download":
        print(hf.snapshot_download(repo, revision=rev, cache_dir=cache))
    elif cmd == "read":
        info = hf.scan_cache_dir(cache)
        if info.warnings:
            raise SystemExit("scan_cache_dir warnings: %s" % info.warnings)
        snap = hf.snapshot_download(repo, revision=rev, cache_dir=cache, local_files_only=True)
        n = 0
        for root, _, names in os.walk(snap):
            for name in names:
                rel = os.path.relpath(os.path.join(root, name), snap).replace(os.sep, "/")
                got = hf.try_to_load_from_cache(repo, rel, cache_dir=cache, revision=rev)
                if not isinstance(got, str) or not os.path.isfile(got):
                    raise SystemExit("try_to_load_from_cache(%s) = %r" % (rel, got))
                n += 1
        repos = [r for r in info.repos if r.repo_id == repo]
        if len(repos) != 1:
            raise SystemExit("scan_cache_dir found %d repos named %s" % (len(repos), repo))
        print("ok %s %d files %d bytes" % (snap, n, repos[0].size_on_disk))
    else:
        raise SystemExit("unknown command " + cmd)


if __name__ == "__main__":
    main()
