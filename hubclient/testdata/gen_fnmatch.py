#!/usr/bin/env python3
"""Writes fnmatch_cases.json: what huggingface_hub's filter_repo_objects
decides for each (pattern, path) pair, computed with Python's own
fnmatch.fnmatchcase after the same normalisation (backslashes read as '/',
a pattern ending in '/' gets '*' appended; see utils/_paths.py).

Run: python3 gen_fnmatch.py > fnmatch_cases.json
"""
import json
from fnmatch import fnmatchcase

PATTERNS = [
    "*", "*.json", "*.safetensors", "model*", "data/*.json", "data/", "data", "*/", "sub\\dir/*",
    "?", "??.txt", "[abc].txt", "[!abc].txt", "[a-c]*", "[!a-c]*", "[a-z0-9]*.bin", "[]]x", "[!]]x",
    "[^a]x", "[z-a]x", "[!z-a]x", "[a-]x", "[-a]x", "[a-c-e]x", "[!a-c-e]x", "[x", "a[", "{a,b}.txt",
    "a{b", "*.[jt]s*", "[[]x", "[\\]x", "**/*.json", "*/*", ".*", "*copy*", "[!.]*", "tokenizer*",
    "caf\u00e9/*", "*\u00ef*", "a*b*c", "*[0-9]", "\\*", "[%-/]x", "[a-cx-z]y", "[&&]x", "[~|]x",
]
PATHS = [
    "config.json", "model.safetensors", "model-00001-of-00002.safetensors", "data/file.json",
    "data/sub/file.json", "data", "datax/a.json", "sub/dir/x.bin", "a", "b.txt", "ab.txt", "d.txt",
    "]x", "x", "^x", "ax", "-x", "bx", "cx", "dx", "ex", "[x", "a[", "{a,b}.txt", "a.txt", "a{b",
    "index.js", "index.ts", "style.css", ".gitattributes", ".hidden/x", "vocab-copy.txt",
    "tokenizer.json", "tokenizer/vocab.txt", "caf\u00e9/na\u00efve.txt", "aXbYc", "acb", "file9", "file",
    "*", "\\x", "&x", "~x", "|x", ".x", "/x", "%x", "zy", "y", "a/b/c.json", "a\\b", "dir/", "\n",
]


def norm(p):
    p = p.replace("\\", "/")
    return p + "*" if p.endswith("/") else p


cases = [
    {"pattern": pat, "path": path, "match": fnmatchcase(path.replace("\\", "/"), norm(pat))}
    for pat in PATTERNS
    for path in PATHS
]
print(json.dumps(cases, indent=0, ensure_ascii=False))
