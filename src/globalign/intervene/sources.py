"""Where a fine-tuning mix's examples come from: TyDi QA GoldP's training-side questions (as SFT
examples or as preference pairs) and the user's own chat or preference files.

TyDi QA examples use the evaluation's own 0-shot text as the prompt (`tasks.tydiqa.INSTRUCTION` +
`QUERY`), so a tuned model learns the task in the form it is measured in, and only questions of
train-side articles (`split.split_items`) are ever used: evaluation items stay unseen.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from globalign.audit.formats import detect_format, to_record
from globalign.audit.records import AuditRecord
from globalign.audit.sources import file_kind, plan_shards, read_shard
from globalign.data.tydiqa import QAItem
from globalign.errors import DataError
from globalign.intervene.split import passage_hash
from globalign.tasks.tydiqa import INSTRUCTION, QUERY

TYDIQA_SOURCES = ("tydiqa", "tydiqa_preference")
SOURCES = (*TYDIQA_SOURCES, "file")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Example:
    example_id: str  # stable, e.g. "tydiqa:<question id>" or "file:<path name>:<row>"
    source: str  # the mix entry's source name
    language: str | None  # code when known (tydiqa), else None (the audit measures it)
    prompt: str  # the raw prompt text (no chat template applied)
    completion: str = ""  # SFT target
    chosen: str = ""  # preference pairs: the preferred completion
    rejected: str = ""  # and the rejected one
    passage_hash: str = ""  # tydiqa: passage_hash(context); "" for user files

    @property
    def kind(self) -> str:
        return "sft" if self.completion else "preference"


def tydiqa_prompt(item: QAItem) -> str:
    """The evaluation's prompt without a demonstration (0-shot): instruction, passage, question."""
    return INSTRUCTION + QUERY.format(context=item.context, question=item.question)


def tydiqa_example(item: QAItem) -> Example:
    """An SFT example: the answer as the evaluation extracts it (the text before the first blank line)."""
    return Example(f"tydiqa:{item.item_id}", "tydiqa", item.language, tydiqa_prompt(item),
                   completion=f" {item.answers[0]}\n\n", passage_hash=passage_hash(item.context))


def tydiqa_preference_example(item: QAItem, seed: int) -> Example | None:
    """A preference pair: the gold answer chosen, a wrong span of the same passage rejected; None when
    the passage has no such span."""
    wrong = wrong_span(item.context, item.answers, random.Random(f"{seed}|{item.item_id}"))
    if wrong is None:
        return None
    return Example(f"tydiqa_preference:{item.item_id}", "tydiqa_preference", item.language, tydiqa_prompt(item),
                   chosen=f" {item.answers[0]}\n\n", rejected=f" {wrong}\n\n", passage_hash=passage_hash(item.context))


def wrong_span(context: str, answers: Sequence[str], rng: random.Random) -> str | None:
    """A span of `context` of as many words as the first answer (±1), with leading and trailing
    punctuation stripped (gold answers rarely carry it, and a pair must not differ by a comma), that
    neither overlaps an occurrence of any gold answer nor equals one; chosen with `rng`."""
    words = [(m.start(), m.end()) for m in _WORD.finditer(context)]
    taken = [(at, at + len(gold)) for gold in answers if gold for at in _occurrences(context, gold)]
    golds = {" ".join(gold.split()) for gold in answers}
    size = max(1, len(answers[0].split()))
    candidates: list[str] = []
    for length in (size - 1, size, size + 1):
        for first in range(len(words) - length + 1 if length > 0 else 0):
            start, end = words[first][0], words[first + length - 1][1]
            if any(start < stop and begin < end for begin, stop in taken):
                continue
            span = _strip_punctuation(context[start:end])
            if span and " ".join(span.split()) not in golds:
                candidates.append(span)
    candidates = list(dict.fromkeys(candidates))  # one chance per distinct text
    return rng.choice(candidates) if candidates else None


def _occurrences(text: str, part: str) -> Iterator[int]:
    at = text.find(part)
    while at >= 0:
        yield at
        at = text.find(part, at + 1)


def _strip_punctuation(text: str) -> str:
    """`text` without leading and trailing punctuation and spaces ("Storm ." -> "Storm")."""
    start, end = 0, len(text)
    while start < end and _edge(text[start]):
        start += 1
    while end > start and _edge(text[end - 1]):
        end -= 1
    return text[start:end]


def _edge(char: str) -> bool:
    return char.isspace() or unicodedata.category(char).startswith("P")


def file_examples(path: Path) -> list[Example]:
    """Every row of a user's JSONL / JSON / Parquet (or CSV) file, read through `audit-data`'s readers
    and record formats (`audit.formats`: messages, sharegpt, prompt_response, preference; the format
    is detected from the first row). SFT rows: prompt = the last user turn before the last assistant
    turn, completion = that assistant turn; earlier turns are not rendered into the prompt (multi-turn
    context is out of scope). Preference rows: prompt = the last user turn of the shared prompt, chosen
    and rejected = each side's last assistant turn. DataError naming the file and row otherwise."""
    if not path.is_file():
        raise DataError(f"mix source file {path} not found")
    file_kind(path)  # an unknown extension is one clear error before anything is read
    examples: list[Example] = []
    fmt: str | None = None
    for shard in plan_shards([path]):
        for locator, row in read_shard(shard):
            fmt = fmt or detect_format(row, locator)
            record = to_record(row, locator, fmt)
            examples.append(_file_example(record, fmt, f"file:{path.name}:{len(examples) + 1}"))
    if not examples:
        raise DataError(f"mix source file {path} has no rows")
    return examples


def _file_example(record: AuditRecord, fmt: str, example_id: str) -> Example:
    cut = next((m for m in record.messages if m.truncated), None)
    if cut is not None:
        raise DataError(f"{record.locator}: a {cut.role} turn is longer than the reader keeps "
                        f"({len(cut.text):,} characters); shorten or drop this row")
    if fmt == "preference":
        prompt = _last(record, "user", "prompt")
        chosen, rejected = _last(record, "assistant", "chosen"), _last(record, "assistant", "rejected")
        for text, what in ((prompt, "a user turn in its prompt"), (chosen, "an assistant turn in 'chosen'"),
                           (rejected, "an assistant turn in 'rejected'")):
            if text is None:
                raise DataError(f"{record.locator}: preference row without {what}")
        return Example(example_id, "file", None, prompt or "", chosen=chosen or "", rejected=rejected or "")
    messages = list(record.messages)
    answer_at = next((i for i in range(len(messages) - 1, -1, -1) if messages[i].role == "assistant"), None)
    question_at = None if answer_at is None else next(
        (i for i in range(answer_at - 1, -1, -1) if messages[i].role == "user"), None)
    if answer_at is None or question_at is None:
        raise DataError(f"{record.locator}: needs a user turn followed by an assistant turn to train on")
    return Example(example_id, "file", None, messages[question_at].text, completion=messages[answer_at].text)


def _last(record: AuditRecord, role: str, side: str) -> str | None:
    texts = [m.text for m in record.messages if m.role == role and m.side == side]
    return texts[-1] if texts else None
