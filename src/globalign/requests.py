"""Typed requests a task hands to the engine, and the answers it gets back.

A request carries its prompt's parts, not a rendered string: plain text (the study's raw prompts), or a
user turn plus the start of the assistant's answer. Each backend renders a chat prompt its own way (the
transformers and vLLM backends through the model's chat template, a chat server from the messages), so
one task's requests run on any backend and are cached per model.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass


def content_hash(*parts: str) -> str:
    """A stable hash of text parts (JSON-encoded, so boundaries between parts cannot collide)."""
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Prompt:
    """What the model continues: `text` as is (`user` None), or the model's chat template around one user
    turn `user`, with the assistant's turn opened and `text` already written at its start."""

    text: str
    user: str | None = None

    @classmethod
    def raw(cls, text: str) -> Prompt:
        return cls(text)

    @classmethod
    def chat(cls, user: str, assistant_prefix: str = "") -> Prompt:
        return cls(assistant_prefix, user)

    @property
    def is_chat(self) -> bool:
        return self.user is not None

    def key_parts(self) -> tuple[str, ...]:
        """What identifies the prompt in a cache key. A raw prompt is its text alone (the keys of
        globalign 0.1, so their cached answers stay valid); a chat prompt adds a marker and the user
        turn (the template itself is pinned by the model's fingerprint)."""
        return (self.text,) if self.user is None else ("\x00chat", self.user, self.text)

    def hash(self) -> str:
        return content_hash(*self.key_parts())

    def describe(self) -> str:
        """One string for error messages and item listings."""
        return self.text if self.user is None else f"[user] {self.user} [assistant] {self.text}"


def as_prompt(prompt: Prompt | str) -> Prompt:
    """A plain string is a raw prompt (what callers before the chat parts passed)."""
    return prompt if isinstance(prompt, Prompt) else Prompt.raw(prompt)


@dataclass(frozen=True)
class ScoreRequest:
    """Score each continuation given the prompt: the model's log-likelihood of the continuation tokens.

    Tokenisation follows the study: tokenise `prompt` and `prompt + continuation`; the continuation is
    the tokens of `prompt + continuation` past the prompt's token count.
    """

    prompt: Prompt
    continuations: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "prompt", as_prompt(self.prompt))
        object.__setattr__(self, "continuations", tuple(self.continuations))

    def candidate_key(self, index: int) -> str:
        return content_hash("score", *self.prompt.key_parts(), self.continuations[index])


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

    prompt: Prompt
    max_new_tokens: int
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "prompt", as_prompt(self.prompt))
        object.__setattr__(self, "stop", tuple(self.stop))

    def key(self) -> str:
        return content_hash("generate", *self.prompt.key_parts(), str(self.max_new_tokens), *self.stop)


@dataclass(frozen=True)
class RewardRequest:
    """One (prompt, response) pair for a trained reward model. Classifier and value-head backends read
    `prompt + response` exactly as given; the LM judge (tasks/judge.py) reads the two parts separately."""

    prompt: str
    response: str

    @property
    def text(self) -> str:
        return self.prompt + self.response

    def key(self) -> str:
        return content_hash("reward", self.prompt, self.response)


def prompt_hash(prompt: Prompt | str) -> str:
    """The short prompt hash a sample record keeps ("" for no prompt, as in re-scored study outputs)."""
    prompt = as_prompt(prompt)
    return prompt.hash()[:16] if prompt.text or prompt.user else ""
