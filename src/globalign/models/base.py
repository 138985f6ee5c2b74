"""The small interfaces every model backend implements.

A backend knows models, not protocols: it takes requests (a prompt's parts plus candidates, a generation
request, a (prompt, response) pair) and returns scores, texts or rewards. Each backend says how many
requests it wants per call (`requests_per_call`): transformers a few prompts, vLLM thousands, a served
model as many as its concurrency limit keeps busy. The engine (engine/runner.py) hands over chunks of
that size and commits each chunk to the request cache as soon as it is answered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from globalign.requests import ContinuationScore, GenerateRequest, RewardRequest, ScoreRequest

SCORE, GENERATE, REWARD = "score", "generate", "reward"


@dataclass(frozen=True)
class ModelInfo:
    """What the manifest records about a loaded model."""

    name: str  # the id the user gave (alias, path, hub id or served model name)
    backend: str  # "transformers", "vllm", "openai"
    fingerprint: str  # changes whenever weights, tokenizer, dtype or scoring code change
    source: str  # resolved location: a folder, a GGUF file, a hub id@revision, a server URL
    dtype: str
    add_bos: bool  # whether a BOS token is prepended to every prompt
    family: str = ""  # model family when known (packaged models), for "different families" notes
    details: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class LanguageModel(Protocol):
    info: ModelInfo
    requests_per_call: Mapping[str, int]  # SCORE and GENERATE: requests the backend wants per call
    has_chat_template: bool  # whether chat prompts (Prompt.chat) can be rendered

    def score(self, requests: Sequence[ScoreRequest]) -> list[list[ContinuationScore]]:
        """For each request, one score per continuation, in order. Each request's prompt is run once."""
        ...

    def generate(self, requests: Sequence[GenerateRequest]) -> list[str]:
        """Greedy continuations, cut at the first stop string, in request order."""
        ...

    def close(self) -> None:
        ...


@runtime_checkable
class RewardModel(Protocol):
    info: ModelInfo
    requests_per_call: Mapping[str, int]  # REWARD: pairs the backend wants per call

    def reward(self, requests: Sequence[RewardRequest]) -> list[float]:
        """One scalar reward per request, in order (batched inside)."""
        ...

    def close(self) -> None:
        ...


def per_call(model: LanguageModel | RewardModel, kind: str, default: int) -> int:
    """How many requests of `kind` the engine hands `model` per call (at least 1)."""
    return max(1, int(getattr(model, "requests_per_call", {}).get(kind, default)))
