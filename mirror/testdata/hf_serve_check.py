#!/usr/bin/env python3
"""Runs the real huggingface_hub against a mirror served by hubmirror
(HF_ENDPOINT set by the caller), for TestHuggingfaceHubAgainstServer and
TestServeHuggingfaceHub, which skip when huggingface_hub cannot be imported
(it is not packaged for Debian: point PYTHONPATH at a checkout's src/).

  hf_serve_check.py WORKDIR < checks.json

checks.json is a list of {"repo": ..., "revision": ... or null, "file": ...,
"repo_type": "model" (default), "dataset" or "space"}.
For each check it runs snapshot_download into WORKDIR/cache, hf_hub_download of
"file", snapshot_download into a fresh local_dir, snapshot_download again with
local_files_only, list_repo_tree (recursive; the server pages it), model_info
(repo_info for a dataset or space; files_metadata) and list_repo_refs, and for a
dataset or space HfFileSystem's find, ls and info (paths-info), and prints one
JSON document with what each returned: paths and sha256 of every file, commits,
tree entries, refs, the file system's listing.
"""
import hashlib
import json
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

import huggingface_hub as hf


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tree_files(root, skip_cache=False):
    out = {}
    for dirpath, dirs, names in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        if skip_cache and (rel_dir == ".cache" or rel_dir.startswith(".cache" + os.sep)):
            continue
        for n in names:
            p = os.path.join(dirpath, n)
            out[os.path.relpath(p, root).replace(os.sep, "/")] = sha256(p)
    return out


def main():
    work = sys.argv[1]
    checks = json.load(sys.stdin)
    cache = os.path.join(work, "cache")
    api = hf.HfApi()
    results = []
    for i, c in enumerate(checks):
        repo, rev, path = c["repo"], c.get("revision"), c["file"]
        repo_type = c.get("repo_type") or "model"
        r = {"repo": repo, "revision": rev}
        snap = hf.snapshot_download(repo, revision=rev, cache_dir=cache, repo_type=repo_type)
        r["snapshot_commit"] = os.path.basename(snap)
        r["snapshot_folder"] = os.path.relpath(snap, cache).split(os.sep)[0]
        r["snapshot"] = tree_files(snap)
        one = hf.hf_hub_download(repo, path, revision=rev, cache_dir=os.path.join(work, "single-%d" % i), repo_type=repo_type)
        r["file_sha256"] = sha256(one)
        local = os.path.join(work, "local-%d" % i)
        hf.snapshot_download(repo, revision=rev, local_dir=local, repo_type=repo_type)
        r["local_dir"] = tree_files(local, skip_cache=True)
        offline = hf.snapshot_download(repo, revision=rev, cache_dir=cache, local_files_only=True, repo_type=repo_type)
        r["offline_same"] = offline == snap
        r["tree"] = sorted(
            [
                {
                    "path": e.path,
                    "type": "file" if isinstance(e, hf.hf_api.RepoFile) else "folder",
                    "size": getattr(e, "size", None),
                    "oid": getattr(e, "blob_id", None) or getattr(e, "tree_id", None),
                    "lfs_sha256": e.lfs.sha256 if getattr(e, "lfs", None) else None,
                }
                for e in api.list_repo_tree(repo, revision=rev, recursive=True, repo_type=repo_type)
            ],
            key=lambda e: e["path"],
        )
        if repo_type == "model":
            info = api.model_info(repo, revision=rev, files_metadata=True)
        else:
            info = api.repo_info(repo, revision=rev, files_metadata=True, repo_type=repo_type)
        r["info_sha"] = info.sha
        r["info_files"] = sorted(
            [{"path": s.rfilename, "size": s.size, "blob_id": s.blob_id, "lfs_sha256": s.lfs.sha256 if s.lfs else None} for s in info.siblings],
            key=lambda e: e["path"],
        )
        refs = api.list_repo_refs(repo, repo_type=repo_type)
        r["refs"] = {
            "branches": sorted([[b.name, b.target_commit] for b in refs.branches]),
            "tags": sorted([[b.name, b.target_commit] for b in refs.tags]),
            "converts": sorted([[b.name, b.target_commit] for b in refs.converts]),
        }
        if repo_type != "model":
            # HfFileSystem names a dataset "datasets/org/name" (paths-info
            # behind info, the tree behind ls and find).
            fs = hf.HfFileSystem()
            root = repo_type + "s/" + repo
            if rev:
                root += "@" + rev
            r["fs_find"] = sorted(p[len(root) + 1 :] for p in fs.find(root))
            r["fs_ls"] = sorted(
                [e["name"][len(root) + 1 :], e["type"]] for e in fs.ls(root, detail=True)
            )
            r["fs_info_size"] = fs.info(root + "/" + path)["size"]
        results.append(r)
    json.dump(results, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
