"""Files written whole or not at all: a reader (or a rerun after a kill) sees the old file or the new one,
never half of one."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_text_atomically(path: Path, text: str) -> None:
    """`text` into `path` through a hidden sibling (per process, so two writers never share one), synced, then
    renamed over `path`."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def write_json_atomically(path: Path, value: Any, *, indent: int | None = 2, sort_keys: bool = False) -> None:
    write_text_atomically(path, json.dumps(value, indent=indent, sort_keys=sort_keys, ensure_ascii=False) + "\n")
