"""The one small interface every model backend implements.

Backends take text-level requests grouped by prompt and return per-candidate scores, so that
transformers (KV-cache reuse), vLLM (prompt log-probabilities on token-id prompts with prefix caching)
and OpenAI-compatible servers (echo + logprobs) all fit without the engine knowing which one runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from globalign.requests import ContinuationScore, GenerateRequest, ScoreRequest


@dataclass(frozen=True)
class ModelInfo:
    """What the manifest records about a loaded model."""

    name: str  # the id the user gave (alias, path or hub id)
    backend: str  # "transformers", later "vllm", "openai"
    fingerprint: str  # changes whenever weights, tokenizer, dtype or scoring code change
    source: str  # resolved location: a folder, a GGUF file, a hub id@revision
    dtype: str
    add_bos: bool  # whether a BOS token is prepended to every prompt
    family: str = ""  # model family when known (packaged models), for "different families" notes
    details: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class LanguageModel(Protocol):
    info: ModelInfo

    def score(self, requests: Sequence[ScoreRequest]) -> list[list[ContinuationScore]]:
        """For each request, one score per continuation, in order. Each request's prompt is run once."""
        ...

    def generate(self, requests: Sequence[GenerateRequest]) -> list[str]:
        """Greedy continuations, cut at the first stop string, in request order."""
        ...

    def apply_chat_template(self, user_message: str) -> str:
        """The prompt text for one user turn in the model's chat template, ready for the assistant."""
        ...

    def close(self) -> None:
        ...
