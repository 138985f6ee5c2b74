"""Where evaluation data is read from.

Order: an explicit `--data-dir`, else $GLOBALIGN_DATA_DIR, else `../shared/data` beside the checkout
(when it exists), else None, which means "the Hugging Face hub" (online only).
"""

from __future__ import annotations

import os
from pathlib import Path

from globalign.errors import DataError

DATA_DIR_ENV = "GLOBALIGN_DATA_DIR"


def _checkout_shared_data() -> Path | None:
    # src/globalign/data/locate.py -> the checkout root is three levels above the package folder.
    root = Path(__file__).resolve().parents[3]
    candidate = root.parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


def resolve_data_dir(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The local data folder to use, or None when data must come from the hub."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_dir():
            raise DataError(f"--data-dir {path}: no such folder")
        return path
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise DataError(f"${DATA_DIR_ENV}={path}: no such folder")
        return path
    return _checkout_shared_data()


def describe_search(data_dir: Path | None) -> str:
    """Where we looked, for error messages."""
    if data_dir is not None:
        return str(data_dir)
    return f"--data-dir, ${DATA_DIR_ENV} and ../shared/data beside the checkout (none set or present)"
