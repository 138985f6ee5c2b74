"""The engines between tasks and backends. Every kind of request goes one way: de-duplicate, look up the
request cache, run the rest on the backend in chunks of the size the backend asks for, and commit each
chunk to the cache as soon as it is answered (what makes a killed run resume where it stopped).

`Engine` serves language models (scores grouped by their shared prompt, greedy generations);
`RewardEngine` serves trained reward models. Both are `_CachedPath` underneath.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from tqdm import tqdm

from globalign.models.base import GENERATE, REWARD, SCORE, LanguageModel, RewardModel, per_call
from globalign.requests import ContinuationScore, GenerateRequest, Prompt, RewardRequest, ScoreRequest
from globalign.store.request_cache import RequestCache

W = TypeVar("W")  # a unit of backend work: answers one or more cache keys

_DEFAULT_PER_CALL = {SCORE: 8, GENERATE: 32, REWARD: 256}
_CACHE_KIND = {SCORE: "scores", GENERATE: "generations", REWARD: "rewards"}


class _CachedPath:
    """The one de-duplicate -> cache -> chunk -> commit path, with its counters."""

    def __init__(self, model: LanguageModel | RewardModel, cache: RequestCache | None, progress: bool) -> None:
        self.model = model
        self.cache = cache
        self.progress = progress
        self.computed = 0  # answers computed by the backend in this engine's life
        self.reused = 0  # answers taken from the cache
        self.damaged = 0  # cached answers that could not be read, so computed again

    def _answers(self, kind: str, keys: Iterable[str], work: Callable[[set[str]], list[tuple[list[str], W]]],
                 call: Callable[[list[W]], list[list[Any]]], desc: str, unit: str) -> dict[str, Any]:
        """Answers for `keys`: from the cache, else computed. `work(missing keys)` groups the missing keys
        into units of backend work (each unit answers its list of keys, in order); `call(units)` runs a
        chunk of units on the backend and returns each unit's answers."""
        fingerprint = self.model.info.fingerprint
        wanted = dict.fromkeys(keys)
        known: dict[str, Any] = {}
        if self.cache:
            before = self.cache.damaged
            known = getattr(self.cache, f"get_{_CACHE_KIND[kind]}")(fingerprint, wanted)
            self.reused += len(known)
            self.damaged += self.cache.damaged - before
        units = work({k for k in wanted if k not in known})
        step = per_call(self.model, kind, _DEFAULT_PER_CALL[kind])
        with tqdm(total=len(units), desc=f"{desc} [{self.model.info.name}]", unit=unit, file=sys.stderr,
                  disable=not self.progress or not units, dynamic_ncols=True, leave=False) as bar:
            for start in range(0, len(units), step):
                chunk = units[start : start + step]
                answers = call([u for _, u in chunk])
                fresh = {key: answer for (unit_keys, _), row in zip(chunk, answers)
                         for key, answer in zip(unit_keys, row, strict=True)}
                if self.cache:
                    getattr(self.cache, f"put_{_CACHE_KIND[kind]}")(fingerprint, fresh)
                known.update(fresh)
                self.computed += len(fresh)
                bar.update(len(chunk))
        return known


class Engine(_CachedPath):
    model: LanguageModel

    def __init__(self, model: LanguageModel, cache: RequestCache | None = None, *, progress: bool = True) -> None:
        super().__init__(model, cache, progress)

    def score(self, requests: Sequence[ScoreRequest], desc: str = "scoring") -> list[list[ContinuationScore]]:
        """Scores for every request, in order. Identical candidates (same prompt and continuation)
        are computed once; the missing candidates of one prompt go to the backend as one request."""
        by_key: dict[str, tuple[Prompt, str]] = {}
        for request in requests:
            for i, continuation in enumerate(request.continuations):
                by_key.setdefault(request.candidate_key(i), (request.prompt, continuation))

        def work(missing: set[str]) -> list[tuple[list[str], ScoreRequest]]:
            pending: dict[Prompt, list[tuple[str, str]]] = {}
            for key, (prompt, continuation) in by_key.items():
                if key in missing:
                    pending.setdefault(prompt, []).append((key, continuation))
            return [([k for k, _ in rows], ScoreRequest(p, tuple(c for _, c in rows))) for p, rows in pending.items()]

        known = self._answers(SCORE, by_key, work, self.model.score, desc, "prompt")
        return [[known[r.candidate_key(i)] for i in range(len(r.continuations))] for r in requests]

    def generate(self, requests: Sequence[GenerateRequest], desc: str = "generating") -> list[str]:
        """Greedy generations for every request, in the caller's order, de-duplicated and cached."""
        unique = {r.key(): r for r in requests}

        def work(missing: set[str]) -> list[tuple[list[str], GenerateRequest]]:
            # Similar requests go to the backend together: a chunk then shares its settings and pads little.
            todo = sorted((r for k, r in unique.items() if k in missing),
                          key=lambda r: (r.max_new_tokens, r.stop, len(r.prompt.text), r.prompt.user or ""))
            return [([r.key()], r) for r in todo]

        known = self._answers(GENERATE, unique, work, lambda chunk: [[t] for t in self.model.generate(chunk)],
                              desc, "prompt")
        return [known[r.key()] for r in requests]


class RewardEngine(_CachedPath):
    model: RewardModel

    def __init__(self, model: RewardModel, cache: RequestCache | None = None, *, progress: bool = True) -> None:
        super().__init__(model, cache, progress)

    def reward(self, requests: Sequence[RewardRequest], desc: str = "rewarding") -> list[float]:
        """One reward per request, in order."""
        unique = {r.key(): r for r in requests}

        def work(missing: set[str]) -> list[tuple[list[str], RewardRequest]]:
            return [([k], r) for k, r in unique.items() if k in missing]

        known = self._answers(REWARD, unique, work, lambda chunk: [[v] for v in self.model.reward(chunk)],
                              desc, "text")
        return [known[r.key()] for r in requests]
