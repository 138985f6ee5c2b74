"""The study's tokenisation rule for scoring a continuation, shared by every token-level backend."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class SplitCandidate:
    """One candidate, tokenised as the study did: `prefix_ids` are the first len(encode(prompt)) tokens
    of encode(prompt + continuation), `continuation_ids` the rest. When a merge crosses the boundary
    (e.g. "(" + "A)" -> "(A" + ")"), `prefix_ids` differ from encode(prompt) and the scored tokens are
    what lies past the prompt's token count, exactly as in the study; `boundary_merge` records it."""

    prefix_ids: tuple[int, ...]
    continuation_ids: tuple[int, ...]
    boundary_merge: bool


def split_candidates(
    encode: Callable[[str], list[int]], prompt: str, continuations: Sequence[str]
) -> list[SplitCandidate]:
    prompt_ids = tuple(encode(prompt))
    n = len(prompt_ids)
    out = []
    for continuation in continuations:
        full = tuple(encode(prompt + continuation))
        out.append(SplitCandidate(full[:n], full[n:], full[:n] != prompt_ids))
    return out
