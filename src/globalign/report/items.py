"""The item browser's rows: the items whose score changed most from one stage to the next.

Per task and compared pair, items are paired by item id; an item's score is its first per-item metric
that is not kept per group (md3: generation_correct, tydiqa: exact_match; docs/report.md). The largest
absolute changes come first (a 0 -> 1 flip is the largest), capped at `limit` per task and pair so that
a study-sized report stays small. Tasks whose per-item metrics are all per group (the country probes
hold one value per country, GlobalOpinionsQA one similarity per country) list the items whose
prediction (the top country, the chosen option) changed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from globalign.families import Comparison
from globalign.records import SampleRecord, split_group_metric_key
from globalign.report.inputs import TaskData

FLIPS_PER_PAIR = 50
TEXT_CHARS = 600  # longer prompts and answers are cut (the full text is in samples.jsonl)
_PROMPT_KEYS = ("question", "prompt", "transcript", "context")
_GOLD_KEYS = ("gold", "answer", "answers", "secret_word", "correct", "label")


@dataclass(frozen=True)
class Flip:
    task: str
    axis: str
    family: str
    model_a: str
    model_b: str
    item_id: str
    group: str
    prompt: str
    answer_a: str
    answer_b: str
    gold: str
    score_a: float
    score_b: float


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        value = " | ".join(str(v) for v in value)
    text = str(value)
    return text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1] + "…"


def _first(extra: dict[str, Any], keys: Sequence[str]) -> str:
    return next((_text(extra[k]) for k in keys if extra.get(k) not in (None, "", [])), "")


def _score(record: SampleRecord) -> float | None:
    return next((value for key, value in record.metrics.items() if split_group_metric_key(key)[1] is None), None)


def flips(task: TaskData, pairs: Sequence[Comparison], limit: int = FLIPS_PER_PAIR) -> list[Flip]:
    by_model: dict[str, dict[str, SampleRecord]] = {}
    for record in task.samples:
        by_model.setdefault(record.model, {})[record.item_id] = record
    out: list[Flip] = []
    for comp in pairs:
        a, b = by_model.get(comp.model_a), by_model.get(comp.model_b)
        if not a or not b:
            continue
        changed: list[tuple[float, Flip]] = []
        for item_id in a.keys() & b.keys():
            ra, rb = a[item_id], b[item_id]
            sa, sb = _score(ra), _score(rb)
            if sa is None or sb is None:
                if ra.prediction == rb.prediction:
                    continue
                size = 1.0
                sa = sb = math.nan
            else:
                size = abs(sb - sa)
                if not size > 0:
                    continue
            extra = rb.extra or {}
            out_flip = Flip(task.declaration.task, task.declaration.axis, comp.family, comp.model_a, comp.model_b,
                            item_id, rb.group, _first(extra, _PROMPT_KEYS) or _first(ra.extra or {}, _PROMPT_KEYS),
                            _text(ra.prediction), _text(rb.prediction), _first(extra, _GOLD_KEYS), sa, sb)
            changed.append((size, out_flip))
        changed.sort(key=lambda pair: (-pair[0], pair[1].item_id))
        out += [f for _, f in changed[:limit]]
    return out
