"""Content fingerprints of model files, memoised by (path, size, mtime) so a 14 GB checkpoint is
hashed once, not on every run."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from globalign.paths import cache_dir

_WEIGHT_AND_TOKENIZER_SUFFIXES = (".json", ".safetensors", ".bin", ".model", ".gguf", ".txt", ".jinja", ".py")


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, memoised on disk by (absolute path, size, mtime_ns)."""
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    memo_path = cache_dir() / "file-hashes.json"
    try:
        memo = json.loads(memo_path.read_text("utf-8"))
    except (OSError, ValueError):
        memo = {}
    if key in memo:
        return memo[key]
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    memo[key] = digest.hexdigest()
    tmp = memo_path.with_suffix(f".{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(memo), "utf-8")
        os.replace(tmp, memo_path)  # atomic: a concurrent or killed writer never leaves half a file
    except OSError:  # a read-only or full cache: the hash is still right, only not remembered
        tmp.unlink(missing_ok=True)
    return memo[key]


def folder_sha256(folder: Path) -> str:
    """One hash over the weight, config and tokenizer files of a model folder."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix in _WEIGHT_AND_TOKENIZER_SUFFIXES and ".cache" not in path.parts:
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(file_sha256(path).encode())
    return digest.hexdigest()


def combine(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]
