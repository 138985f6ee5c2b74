"""The engine for trained reward models: de-duplicate (prompt, response) pairs, look up the cache,
run the rest on the backend in chunks, and cache each chunk as soon as it is done (what makes a
killed reward run resume where it stopped, like the language-model engine)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tqdm import tqdm

from globalign.models.reward import RewardModel, RewardRequest
from globalign.store.request_cache import RequestCache


class RewardEngine:
    def __init__(self, model: RewardModel, cache: RequestCache | None = None, *, chunk_size: int = 256,
                 progress: bool = True) -> None:
        self.model = model
        self.cache = cache
        self.chunk_size = chunk_size
        self.progress = progress
        self.computed = 0  # rewards computed by the backend in this engine's life
        self.reused = 0  # rewards taken from the cache
        self.damaged = 0  # cached rewards that could not be read, so computed again

    def reward(self, requests: Sequence[RewardRequest], desc: str = "rewarding") -> list[float]:
        """One reward per request, in order."""
        fingerprint = self.model.info.fingerprint
        unique = {r.key(): r for r in requests}
        known: dict[str, float] = {}
        if self.cache:
            before = self.cache.damaged
            known = self.cache.get_rewards(fingerprint, unique)
            self.reused += len(known)
            self.damaged += self.cache.damaged - before
        todo = [r for k, r in unique.items() if k not in known]
        with tqdm(total=len(todo), desc=f"{desc} [{self.model.info.name}]", unit="text", file=sys.stderr,
                  disable=not self.progress or not todo, dynamic_ncols=True, leave=False) as bar:
            for start in range(0, len(todo), self.chunk_size):
                chunk = todo[start : start + self.chunk_size]
                fresh = {r.key(): value for r, value in zip(chunk, self.model.reward(chunk))}
                if self.cache:
                    self.cache.put_rewards(fingerprint, fresh)
                known.update(fresh)
                self.computed += len(fresh)
                bar.update(len(chunk))
        return [known[r.key()] for r in requests]
