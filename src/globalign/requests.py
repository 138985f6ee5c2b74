"""Typed requests a task hands to the engine, and the answers it gets back.

Requests are plain text; the engine tokenises them for a given backend, so one task's requests can be
run on any model and cached per model.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass


def content_hash(*parts: str) -> str:
    """A stable hash of text parts (JSON-encoded, so boundaries between parts cannot collide)."""
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ScoreRequest:
    """Score each continuation given the prompt: the model's log-likelihood of the continuation tokens.

    Tokenisation follows the study: tokenise `prompt` and `prompt + continuation`; the continuation is
    the tokens of `prompt + continuation` past the prompt's token count.
    """

    prompt: str
    continuations: tuple[str, ...]

    def candidate_key(self, index: int) -> str:
        return content_hash("score", self.prompt, self.continuations[index])


@dataclass(frozen=True)
class ContinuationScore:
    """Log-likelihood of one continuation. `boundary_merge` is True when a token merge crossed the
    prompt/continuation boundary (the prompt's tokens are not a prefix of the joint tokenisation)."""

    nll_sum: float
    n_tokens: int
    boundary_merge: bool = False

    @property
    def nll_mean(self) -> float:
        """Mean per-token negative log-likelihood in nats (the study's score); inf for no tokens."""
        return self.nll_sum / self.n_tokens if self.n_tokens else float("inf")


@dataclass(frozen=True)
class GenerateRequest:
    """Greedy generation: up to `max_new_tokens` tokens; the text is cut at the first of `stop`."""

    prompt: str
    max_new_tokens: int
    stop: tuple[str, ...] = ()

    def key(self) -> str:
        return content_hash("generate", self.prompt, str(self.max_new_tokens), *self.stop)
