"""Where globalign writes caches (never into the data folder, which may be read-only)."""

from __future__ import annotations

import os
from pathlib import Path

from globalign.errors import GlobalignError, first_line

CACHE_DIR_ENV = "GLOBALIGN_CACHE_DIR"


def cache_dir() -> Path:
    """$GLOBALIGN_CACHE_DIR, else ~/.cache/globalign; created on first use."""
    path = Path(os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "globalign").expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way, a read-only home
        where = f"${CACHE_DIR_ENV}={path}" if os.environ.get(CACHE_DIR_ENV) else str(path)
        raise GlobalignError(f"cache folder {where}: cannot be created ({first_line(exc)}); set ${CACHE_DIR_ENV} to "
                             "a writable folder, or use --no-cache") from None
    return path
