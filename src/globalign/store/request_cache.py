"""On-disk answers keyed by (model fingerprint, request hash): what makes runs resumable.

SQLite commits are atomic, so a run killed with SIGKILL loses at most the chunk in flight; rerunning
the same command recomputes only what is missing.

The file is checked when it is opened (before any model loads): something that is not an SQLite
database, a database cut short, one whose tables are not this cache's, or a file that cannot be written
is one line naming it and the way out (--no-cache, or moving it aside). A stored value that cannot be
decoded (not JSON, the wrong shape, NaN) is treated as missing: it is computed again and overwritten,
and counted in `damaged` (a run warns once and records the count in its manifest).
"""

from __future__ import annotations

import json
import math
import sqlite3
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TypeVar

from globalign.errors import GlobalignError, first_line
from globalign.requests import ContinuationScore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    fingerprint TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (fingerprint, key)
) WITHOUT ROWID
"""
_COLUMNS = ["fingerprint", "key", "value"]
_MAGIC = b"SQLite format 3\x00"
T = TypeVar("T")


class RequestCacheError(GlobalignError):
    """The request cache file cannot be used (named in the message, with what to do)."""


def _cache_error(path: Path, problem: str) -> RequestCacheError:
    return RequestCacheError(
        f"request cache {path} {problem}; pass --no-cache, or move it aside (mv {path} {path}.old) "
        "to start a new cache"
    )


def _check_file(path: Path) -> None:
    """Before SQLite opens it: a regular file with SQLite's header, as long as its header says it is."""
    if not path.exists():
        return
    if not path.is_file():
        raise _cache_error(path, "is a directory or another non-file")
    with path.open("rb") as handle:
        header = handle.read(100)
    if not header:
        return  # an empty file is an empty database
    if len(header) < 100 or not header.startswith(_MAGIC):
        raise _cache_error(path, "is not an SQLite database")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The in-header page count is valid only when its version matches the change counter (SQLite docs).
    if pages and header[24:28] == header[92:96] and path.stat().st_size < pages * page_size:
        raise _cache_error(path, f"is truncated ({path.stat().st_size} bytes, its header says {pages * page_size})")


def _decode_score(value: object) -> ContinuationScore:
    if not (isinstance(value, list) and len(value) == 3):
        raise ValueError("not [nll_sum, n_tokens, boundary_merge]")
    nll, n, merge = value
    if not _number(nll) or nll == -math.inf or isinstance(n, bool) or not isinstance(n, int) or n < 0 or not isinstance(merge, bool):
        raise ValueError("a field of the wrong type or range")
    return ContinuationScore(float(nll), n, merge)


def _decode_generation(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string")
    value.encode("utf-8")  # a lone surrogate would fail later, when the run folder is written
    return value


def _decode_reward(value: object) -> float:
    if not _number(value):
        raise ValueError("not a number")
    return float(value)  # type: ignore[arg-type]


def _number(value: object) -> bool:
    """An int or float that is not NaN (what put_* writes for a number; infinities are real answers)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)


class RequestCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.damaged = 0  # stored values that could not be decoded (treated as missing, then overwritten)
        self._warned = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _cache_error(path, f"cannot be created ({first_line(exc)})") from exc
        _check_file(path)
        try:
            self._db = sqlite3.connect(path, timeout=60)
        except sqlite3.Error as exc:
            raise _cache_error(path, f"cannot be opened ({first_line(exc)})") from exc
        # Values are read as bytes: a stored value that is not UTF-8 is one damaged row, not a failed query.
        self._db.text_factory = bytes
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._check_schema()
            self._db.execute(_SCHEMA)
            self._db.commit()
            # A write that is rolled back: an unwritable file fails here, not after the first chunk is computed.
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("INSERT OR REPLACE INTO answers (fingerprint, key, value) VALUES ('', '', '')")
            self._db.rollback()
        except sqlite3.Error as exc:
            self._db.close()
            raise self._error(exc) from exc

    def _error(self, exc: sqlite3.Error) -> RequestCacheError:
        problem = first_line(exc)
        if "not a database" in problem:
            return _cache_error(self.path, "is not an SQLite database")
        if "readonly" in problem or "read-only" in problem:
            return _cache_error(self.path, f"cannot be written ({problem})")
        if "malformed" in problem:
            return _cache_error(self.path, f"is damaged ({problem})")
        return _cache_error(self.path, f"cannot be used ({problem})")

    def _check_schema(self) -> None:
        tables = sorted(row[0].decode() for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
        if "answers" not in tables:
            if tables:
                raise _cache_error(self.path, f"is another database (tables: {', '.join(tables)}), not a request cache")
            return
        info = list(self._db.execute("PRAGMA table_info(answers)"))
        columns = [row[1].decode() for row in info]
        primary = [row[1].decode() for row in sorted(info, key=lambda row: row[5]) if row[5]]
        if columns != _COLUMNS or primary != _COLUMNS[:2]:
            raise _cache_error(
                self.path,
                f"has a table 'answers' with columns ({', '.join(columns)}; key {', '.join(primary) or 'none'}), "
                f"not this cache's ({', '.join(_COLUMNS)}; key fingerprint, key)",
            )

    def _get(self, fingerprint: str, keys: Iterable[str], decode: Callable[[object], T]) -> dict[str, T]:
        keys = list(keys)
        found: dict[str, T] = {}
        damaged = 0
        try:
            for start in range(0, len(keys), 500):  # SQLite limits the number of bound parameters
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, value FROM answers WHERE fingerprint = ? AND key IN ({marks})", [fingerprint, *chunk]
                )
                for key, raw in rows:
                    try:
                        found[key.decode()] = decode(json.loads(raw))
                    except (TypeError, ValueError):  # not JSON, not UTF-8, the wrong shape or range
                        damaged += 1
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        if damaged:
            self._note_damaged(damaged)
        return found

    def _note_damaged(self, count: int) -> None:
        self.damaged += count
        if not self._warned:
            self._warned = True
            print(f"globalign: warning: request cache {self.path}: {count} stored answer(s) could not be read; "
                  "they are computed again and overwritten (the run's manifest counts them)", file=sys.stderr)

    def _put(self, fingerprint: str, items: Mapping[str, str]) -> None:
        try:
            with self._db:  # one transaction: all of the chunk or none of it
                self._db.executemany(
                    "INSERT OR REPLACE INTO answers (fingerprint, key, value) VALUES (?, ?, ?)",
                    [(fingerprint, k, v) for k, v in items.items()],
                )
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def get_scores(self, fingerprint: str, keys: Iterable[str]) -> dict[str, ContinuationScore]:
        return self._get(fingerprint, keys, _decode_score)

    def put_scores(self, fingerprint: str, scores: Mapping[str, ContinuationScore]) -> None:
        self._put(fingerprint, {k: json.dumps([s.nll_sum, s.n_tokens, s.boundary_merge]) for k, s in scores.items()})

    def get_generations(self, fingerprint: str, keys: Iterable[str]) -> dict[str, str]:
        return self._get(fingerprint, keys, _decode_generation)

    def put_generations(self, fingerprint: str, texts: Mapping[str, str]) -> None:
        self._put(fingerprint, {k: json.dumps(v) for k, v in texts.items()})

    def get_rewards(self, fingerprint: str, keys: Iterable[str]) -> dict[str, float]:
        return self._get(fingerprint, keys, _decode_reward)

    def put_rewards(self, fingerprint: str, rewards: Mapping[str, float]) -> None:
        self._put(fingerprint, {k: json.dumps(float(v)) for k, v in rewards.items()})

    def count(self, fingerprint: str) -> int:
        return self._db.execute("SELECT COUNT(*) FROM answers WHERE fingerprint = ?", [fingerprint]).fetchone()[0]

    def close(self) -> None:
        self._db.close()
