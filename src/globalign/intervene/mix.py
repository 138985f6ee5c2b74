"""A fine-tuning mix: examples drawn from sources at chosen shares, seeded and deterministic.

A mix entry names a source (`sources.SOURCES`) and its share of the mix; a TyDi QA entry's examples are
split equally across its languages. Entry and language quotas are rounded by largest remainder, so they
always add up to the mix size. Each (entry, language) draws without replacement from its own seeded
order of the training-side pool, and no example is drawn twice across entries. The examples are then
shuffled (seeded) so a trainer reading the file in order does not see one language after another.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from globalign.data.tydiqa import CODE_BY_NAME, LANGUAGES, QAItem, load_tydiqa
from globalign.errors import ConfigError, DataError, unknown_name
from globalign.intervene.sources import (
    SOURCES,
    Example,
    file_examples,
    tydiqa_example,
    tydiqa_preference_example,
)
from globalign.intervene.split import ArticleSplit, split_items
from globalign.store.atomic import write_text_atomically

SHARE_TOLERANCE = 1e-6
UNKNOWN_LANGUAGE = "?"


@dataclass(frozen=True)
class MixEntry:
    source: str  # "tydiqa" | "tydiqa_preference" | "file"
    share: float  # > 0; the shares of one mix must sum to 1 (±1e-6), else ConfigError
    languages: tuple[str, ...] = ()  # tydiqa*: codes or names ("all", or none, means the 9)
    path: str | None = None  # file: the file
    max_context_chars: int | None = None  # tydiqa*: skip longer passages

    def __post_init__(self) -> None:
        where = f"mix entry '{self.source}'"
        if self.source not in SOURCES:
            raise unknown_name("mix source", str(self.source), SOURCES)
        if isinstance(self.share, bool) or not isinstance(self.share, (int, float)) or not self.share > 0 \
                or not math.isfinite(self.share):
            raise ConfigError(f"{where}: share must be a number above 0, got {self.share!r}")
        if self.source == "file":
            if not self.path:
                raise ConfigError(f"{where}: needs a path (a JSONL, JSON or Parquet file of chat or preference rows)")
            if self.languages or self.max_context_chars is not None:
                raise ConfigError(f"{where}: languages and max_context_chars apply to TyDi QA sources only "
                                  "(a file's languages are measured by the audit)")
            return
        if self.path is not None:
            raise ConfigError(f"{where}: path applies to source 'file' only")
        limit = self.max_context_chars
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ConfigError(f"{where}: max_context_chars must be a positive whole number, got {limit!r}")
        object.__setattr__(self, "languages", _language_codes(self.languages, where))  # "all" stored expanded

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "share": self.share, "languages": list(self.languages), "path": self.path,
                "max_context_chars": self.max_context_chars}


@dataclass(frozen=True)
class MixSpec:
    entries: tuple[MixEntry, ...]
    size: int  # examples in the mix
    seed: int

    def __post_init__(self) -> None:
        if not self.entries:
            raise ConfigError("a mix needs at least one entry")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise ConfigError(f"mix size must be a positive whole number, got {self.size!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"mix seed must be a whole number, got {self.seed!r}")
        total = sum(e.share for e in self.entries)
        if abs(total - 1) > SHARE_TOLERANCE:
            shares = " + ".join(f"{e.share:g}" for e in self.entries)
            raise ConfigError(f"mix shares must sum to 1, got {shares} = {total:.6g}")

    def to_json(self) -> dict[str, Any]:
        return {"entries": [e.to_json() for e in self.entries], "size": self.size, "seed": self.seed}


@dataclass(frozen=True)
class Mix:
    spec: MixSpec
    examples: tuple[Example, ...]
    counts: dict[str, dict[str, int]]  # source -> language (or "?") -> examples
    sha256: str  # over the examples' canonical JSON, in order (= the sha256 of mix.jsonl)

    def to_json(self) -> dict[str, Any]:
        return {"spec": self.spec.to_json(), "counts": self.counts, "sha256": self.sha256, "n": len(self.examples),
                "passage_hashes": sorted({e.passage_hash for e in self.examples if e.passage_hash})}


def largest_remainder(total: int, weights: Sequence[float]) -> list[int]:
    """Whole numbers proportional to `weights` that sum to `total`: each gets the floor of its exact
    share, and the units left go to the largest fractional parts (ties to the earlier weight)."""
    weight_sum = sum(weights)
    exact = [total * w / weight_sum for w in weights]
    counts = [math.floor(x + 1e-9) for x in exact]  # 0.29 * 100 is 28.999999999999996
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def build_mix(spec: MixSpec, data_dir: Path | None, split: ArticleSplit) -> Mix:
    """The examples of `spec`: TyDi QA entries draw from the training side of `split` only. DataError
    when a source or language has fewer examples than its quota (naming both counts); ConfigError when
    the mix would hold both SFT examples and preference pairs (one training method takes one kind)."""
    train_side: tuple[QAItem, ...] | None = None
    used: set[str] = set()
    examples: list[Example] = []
    for index, (entry, quota) in enumerate(zip(spec.entries, largest_remainder(spec.size, [e.share for e in
                                                                                            spec.entries]))):
        if entry.source == "file":
            pools = {UNKNOWN_LANGUAGE: (file_examples(Path(entry.path or "")), quota)}
        else:
            if train_side is None:
                train_side = split_items(load_tydiqa(data_dir).dev, split)[0]
            pools = {code: ([q for q in train_side if q.language == code and _fits(q, entry)], n)
                     for code, n in zip(entry.languages, largest_remainder(quota, [1.0] * len(entry.languages)))}
        for language, (pool, needed) in pools.items():
            rng = random.Random(f"{spec.seed}|{index}|{entry.source}|{language}")
            drawn = _draw(pool, needed, rng, entry, spec.seed, used)
            if len(drawn) < needed:  # the whole pool was tried: what was drawn is all there is
                raise DataError(_shortage(entry, index, language, len(drawn), needed, split))
            used.update(e.example_id for e in drawn)
            examples += drawn
    kinds = {e.kind for e in examples}
    if len(kinds) > 1:
        by_kind = {k: sorted({e.source for e in examples if e.kind == k}) for k in sorted(kinds)}
        raise ConfigError("a mix must hold one kind of example, got SFT examples (" + ", ".join(by_kind["sft"])
                          + ") and preference pairs (" + ", ".join(by_kind["preference"]) + ")")
    random.Random(f"{spec.seed}|order").shuffle(examples)
    counts: dict[str, dict[str, int]] = {}
    for example in examples:
        per_language = counts.setdefault(example.source, {})
        language = example.language or UNKNOWN_LANGUAGE
        per_language[language] = per_language.get(language, 0) + 1
    return Mix(spec, tuple(examples), counts, hashlib.sha256(_jsonl(examples).encode("utf-8")).hexdigest())


def _fits(item: QAItem, entry: MixEntry) -> bool:
    return entry.max_context_chars is None or len(item.context) <= entry.max_context_chars


def _draw(pool: Sequence[QAItem] | Sequence[Example], needed: int, rng: random.Random, entry: MixEntry,
          seed: int, used: set[str]) -> list[Example]:
    """The first `needed` usable examples of `pool` in a seeded order (all of them when fewer)."""
    order = list(pool)
    rng.shuffle(order)
    drawn: list[Example] = []
    for example in _candidates(order, entry, seed, used):
        if len(drawn) == needed:
            break
        drawn.append(example)
    return drawn


def _candidates(pool: Iterable[QAItem] | Iterable[Example], entry: MixEntry, seed: int,
                used: set[str]) -> Iterable[Example]:
    for raw in pool:
        if isinstance(raw, Example):
            example: Example | None = raw
        elif entry.source == "tydiqa":
            example = tydiqa_example(raw)
        else:  # a question whose passage has no wrong span of the right length gives no pair
            example = tydiqa_preference_example(raw, seed)
        if example is not None and example.example_id not in used:
            yield example


def _shortage(entry: MixEntry, index: int, language: str, available: int, needed: int, split: ArticleSplit) -> str:
    where = f"mix entry {index + 1} ({entry.source}"
    if entry.source == "file":
        return (f"{where}, {entry.path}): the file has {available} usable rows, its share of the mix needs "
                f"{needed}; lower the mix size or this share")
    shorter = f", passages of at most {entry.max_context_chars} characters" if entry.max_context_chars else ""
    return (f"{where}, language {language}): {available} examples on the train side of the article split "
            f"(seed {split.seed}, eval_fraction {split.eval_fraction}{shorter}), {needed} needed; "
            "lower the mix size or this share")


def _language_codes(languages: Sequence[str] | str, where: str) -> tuple[str, ...]:
    if isinstance(languages, str):
        languages = [v.strip() for v in languages.split(",") if v.strip()]
    if not languages or list(languages) == ["all"]:
        return tuple(LANGUAGES)
    codes = []
    for value in languages:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: languages must be codes or names ({', '.join(LANGUAGES)}), got {value!r}")
        code = CODE_BY_NAME.get(value.lower(), value)
        if code not in LANGUAGES:
            error = unknown_name("TyDi QA language", code, [*LANGUAGES, "all"])
            raise type(error)(f"{where}: {error}")
        codes.append(code)
    if len(set(codes)) != len(codes):
        raise ConfigError(f"{where}: a language is listed twice ({', '.join(codes)})")
    return tuple(codes)


# ------------------------------------------------------------------------------------------ writing
def _canonical(example: Example) -> str:
    return json.dumps(asdict(example), ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _jsonl(examples: Iterable[Example]) -> str:
    return "".join(_canonical(e) + "\n" for e in examples)


def chat_row(example: Example) -> dict[str, Any]:
    """The example in a record format `audit-data` reads: `messages` for SFT, `preference` for pairs,
    with its id, source and (when known) language as metadata fields."""
    if example.kind == "sft":
        row: dict[str, Any] = {"messages": [{"role": "user", "content": example.prompt},
                                            {"role": "assistant", "content": example.completion}]}
    else:
        row = {"prompt": example.prompt, "chosen": example.chosen, "rejected": example.rejected}
    row.update({"id": example.example_id, "source": example.source})
    if example.language:
        row["language"] = example.language
    return row


def write_mix(mix: Mix, folder: Path) -> dict[str, Path]:
    """Write `folder/mix.jsonl` (one canonical JSON object per example, all fields; its sha256 is
    `mix.sha256`) and `folder/mix_chat.jsonl` (chat_row per example), each atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"mix": folder / "mix.jsonl", "chat": folder / "mix_chat.jsonl"}
    write_text_atomically(paths["mix"], _jsonl(mix.examples))
    write_text_atomically(paths["chat"], "".join(json.dumps(chat_row(e), ensure_ascii=False) + "\n"
                                             for e in mix.examples))
    return paths
