"""The held-out split of TyDi QA GoldP dev: which articles train a model and which evaluate it.

Only the dev split exists locally, so training examples and evaluation items both come from it. The
split is by article (a title within a language; an empty title falls back to the passage text) and a
pure function of (seed, language, title): any run, any machine, any subset of languages gives the same
side for the same article. A question never trains on an article that another question evaluates.
One passage can sit under two articles (a Telugu passage listing crops is filed under two villages), so
`split_items` also keeps a train-side question out of training when its passage occurs on the eval side.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from globalign.data.tydiqa import QAItem
from globalign.errors import ConfigError

SIDES = ("train", "eval")
_HASH_SPAN = 16 ** 16  # the first 16 hex digits of a sha256, read as a fraction of this


@dataclass(frozen=True)
class ArticleSplit:
    seed: int = 221
    eval_fraction: float = 0.5  # share of articles held out for evaluation

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"split seed must be a whole number, got {self.seed!r}")
        if isinstance(self.eval_fraction, bool) or not isinstance(self.eval_fraction, (int, float)) \
                or not 0 < self.eval_fraction < 1:
            raise ConfigError(f"split eval_fraction must be a number between 0 and 1 (exclusive), "
                              f"got {self.eval_fraction!r}")

    def side(self, item: QAItem) -> str:
        """"eval" when the article's hash, read as a fraction in [0, 1), is below eval_fraction, else "train"."""
        article = item.title or item.context
        digest = hashlib.sha256(f"{self.seed}|{item.language}|{article}".encode()).hexdigest()
        return "eval" if int(digest[:16], 16) / _HASH_SPAN < self.eval_fraction else "train"

    def to_json(self) -> dict[str, Any]:
        return {"by": "article", "seed": self.seed, "eval_fraction": self.eval_fraction}


def passage_hash(text: str) -> str:
    """sha256 hex of a passage's text (UTF-8): what manifests record and the leakage test compares."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def split_items(items: Iterable[QAItem], split: ArticleSplit) -> tuple[tuple[QAItem, ...], tuple[QAItem, ...]]:
    """(train, eval) questions of `items`, in their order: eval = questions of eval-side articles;
    train = questions of train-side articles whose passage no eval-side question uses. Pass every
    question of the data (not a filtered subset) so a shared passage is seen on both sides."""
    items = tuple(items)
    held_out = tuple(q for q in items if split.side(q) == "eval")
    eval_passages = {passage_hash(q.context) for q in held_out}
    train = tuple(q for q in items if split.side(q) == "train" and passage_hash(q.context) not in eval_passages)
    return train, held_out


def passages_sha256(items: Iterable[QAItem]) -> str:
    """sha256 over the sorted, de-duplicated passage hashes of `items` (one per line): a manifest's
    fingerprint of which passages a side holds."""
    hashes = sorted({passage_hash(q.context) for q in items})
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()
