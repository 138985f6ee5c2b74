"""Texts whose language is known, built from the evaluation data, to test language identification
and the audit end to end (the data folder is only read).

Sources, each text labelled with the BCP 47 code of its language:
- "tydiqa-context" / "tydiqa-question": TyDi QA GoldP dev passages (each distinct one once) and
  questions in ar, bn, en, fi, id, ko, ru, sw, te;
- "md3": the study's MD3 word-game transcripts (English; speaker labels removed, empty ones skipped);
- "askreddit": each AskRedditCountries question followed by its response with a country filled in
  (English; the countries of the study's 181-country set in turn, so the texts do not depend on the seed).

`write_chat_jsonl` and `write_preference_jsonl` turn them into the record layouts the audit reads:
chat records pair consecutive texts of one language, preference records take three at a time; the
one or two texts of a language left over at the end are not written.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from globalign.data.md3 import load_md3_items
from globalign.data.reward_probe import load_askreddit, load_country_set_181
from globalign.data.tydiqa import load_tydiqa

SOURCES = ("tydiqa-context", "tydiqa-question", "md3", "askreddit")
_SPEAKER_LABEL = re.compile(r"^Speaker\d+:\s*", re.MULTILINE)


@dataclass(frozen=True)
class LabelledText:
    """One text and its language (BCP 47 code); `source` is one of SOURCES."""

    text: str
    language: str
    source: str


def _unique(texts: Iterable[LabelledText]) -> list[LabelledText]:
    """Drop repeats of a (language, source, text) and texts without a letter, keeping first-seen order."""
    seen: set[tuple[str, str, str]] = set()
    kept = []
    for item in texts:
        key = (item.language, item.source, item.text)
        if key in seen or not any(ch.isalpha() for ch in item.text):
            continue
        seen.add(key)
        kept.append(item)
    return kept


def _all_texts(data_dir: Path) -> list[LabelledText]:
    dev = load_tydiqa(data_dir).dev
    texts = [LabelledText(q.context.strip(), q.language, "tydiqa-context") for q in dev]
    texts += [LabelledText(q.question.strip(), q.language, "tydiqa-question") for q in dev]
    texts += [LabelledText(_SPEAKER_LABEL.sub("", item.transcript).strip(), "en", "md3")
              for item in load_md3_items(data_dir, "study").items]
    countries = load_country_set_181(data_dir)
    texts += [LabelledText(f"{q.question} {q.response(countries[q.index % len(countries)])}", "en", "askreddit")
              for q in load_askreddit(data_dir)]
    return _unique(texts)


def labelled_texts(data_dir: Path, *, per_language: int | None = None, seed: int = 0) -> list[LabelledText]:
    """Every labelled text under `data_dir`, grouped by language (codes sorted), sources and data-file
    order kept within a language. With `per_language`, each language keeps a seeded random sample of
    that many texts (all of them when it has fewer); the same arguments give the same list."""
    if per_language is not None and per_language < 1:
        raise ValueError(f"per_language must be at least 1, got {per_language}")
    by_language: dict[str, list[LabelledText]] = {}
    for item in _all_texts(data_dir):
        by_language.setdefault(item.language, []).append(item)
    chosen = []
    for language in sorted(by_language):
        texts = by_language[language]
        if per_language is not None and len(texts) > per_language:
            # A string seed is hashed the same way in every run (unlike hash() of a str).
            picked = random.Random(f"{seed}:{language}").sample(range(len(texts)), per_language)
            texts = [texts[i] for i in sorted(picked)]
        chosen += texts
    return chosen


def _groups(texts: Sequence[LabelledText], size: int) -> Iterable[tuple[str, int, list[str]]]:
    """(language, running number, `size` texts of that language), in the order texts first appear."""
    by_language: dict[str, list[str]] = {}
    for item in texts:
        by_language.setdefault(item.language, []).append(item.text)
    for language, group in by_language.items():
        for number, start in enumerate(range(0, len(group) - size + 1, size)):
            yield language, number, group[start:start + size]


def _write_jsonl(records: Iterable[dict[str, object]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


def _turns(user: str, assistant: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]


def write_chat_jsonl(texts: Sequence[LabelledText], path: Path) -> None:
    """SFT-style JSONL: one record per two texts of one language,
    `{"id", "language", "messages": [{"role": "user", ...}, {"role": "assistant", ...}]}`."""
    _write_jsonl(({"id": f"chat-{language}-{number:05d}", "language": language, "messages": _turns(*pair)}
                  for language, number, pair in _groups(texts, 2)), path)


def write_preference_jsonl(texts: Sequence[LabelledText], path: Path) -> None:
    """Preference JSONL: one record per three texts of one language, `{"id", "language", "prompt": t1,
    "chosen": [user t1, assistant t2], "rejected": [user t1, assistant t3]}`."""
    _write_jsonl(({"id": f"pref-{language}-{number:05d}", "language": language, "prompt": prompt,
                   "chosen": _turns(prompt, chosen), "rejected": _turns(prompt, rejected)}
                  for language, number, (prompt, chosen, rejected) in _groups(texts, 3)), path)
