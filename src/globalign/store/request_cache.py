"""On-disk answers keyed by (model fingerprint, request hash): what makes runs resumable.

SQLite commits are atomic, so a run killed with SIGKILL loses at most the chunk in flight; rerunning
the same command recomputes only what is missing.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path

from globalign.requests import ContinuationScore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    fingerprint TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (fingerprint, key)
) WITHOUT ROWID
"""


class RequestCache:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        self._db.commit()

    def _get(self, fingerprint: str, keys: Iterable[str]) -> dict[str, str]:
        keys = list(keys)
        found: dict[str, str] = {}
        for start in range(0, len(keys), 500):  # SQLite limits the number of bound parameters
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT key, value FROM answers WHERE fingerprint = ? AND key IN ({marks})", [fingerprint, *chunk]
            )
            found.update(rows)
        return found

    def _put(self, fingerprint: str, items: Mapping[str, str]) -> None:
        with self._db:  # one transaction: all of the chunk or none of it
            self._db.executemany(
                "INSERT OR REPLACE INTO answers (fingerprint, key, value) VALUES (?, ?, ?)",
                [(fingerprint, k, v) for k, v in items.items()],
            )

    def get_scores(self, fingerprint: str, keys: Iterable[str]) -> dict[str, ContinuationScore]:
        return {k: ContinuationScore(*json.loads(v)) for k, v in self._get(fingerprint, keys).items()}

    def put_scores(self, fingerprint: str, scores: Mapping[str, ContinuationScore]) -> None:
        self._put(fingerprint, {k: json.dumps([s.nll_sum, s.n_tokens, s.boundary_merge]) for k, s in scores.items()})

    def get_generations(self, fingerprint: str, keys: Iterable[str]) -> dict[str, str]:
        return {k: json.loads(v) for k, v in self._get(fingerprint, keys).items()}

    def put_generations(self, fingerprint: str, texts: Mapping[str, str]) -> None:
        self._put(fingerprint, {k: json.dumps(v) for k, v in texts.items()})

    def get_rewards(self, fingerprint: str, keys: Iterable[str]) -> dict[str, float]:
        return {k: float(json.loads(v)) for k, v in self._get(fingerprint, keys).items()}

    def put_rewards(self, fingerprint: str, rewards: Mapping[str, float]) -> None:
        self._put(fingerprint, {k: json.dumps(float(v)) for k, v in rewards.items()})

    def count(self, fingerprint: str) -> int:
        return self._db.execute("SELECT COUNT(*) FROM answers WHERE fingerprint = ?", [fingerprint]).fetchone()[0]

    def close(self) -> None:
        self._db.close()
