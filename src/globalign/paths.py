"""Where globalign writes caches (never into the data folder, which may be read-only)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_DIR_ENV = "GLOBALIGN_CACHE_DIR"


def cache_dir() -> Path:
    """$GLOBALIGN_CACHE_DIR, else ~/.cache/globalign; created on first use."""
    path = Path(os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "globalign").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path
