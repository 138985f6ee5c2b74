"""English dialects: the MD3 word game (PROTOCOL.md, Axis 1).

The model reads a Taboo-game transcript (Indian, Nigerian or US English speakers) cut just before
the secret word is said, and names the secret word. Two metrics per item:
- generation: greedy, 10 new tokens; correct iff the answer contains the secret word and none of the
  5 distractors (case-insensitive substrings), the study's plotted metric;
- choice: 6-way multiple choice with the scoring primitive (candidates appended directly after
  `Secret Word:`), the correct word at a seeded position.
Dialect statistics: accuracy per dialect, gaps (US minus each dialect, best minus worst) and, for
base vs aligned, per-dialect McNemar tests and the change in each gap (did alignment widen it?).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from globalign.data.md3 import DIALECTS, ITEM_SOURCES, WordGameItem, load_md3_items
from globalign.engine.runner import Engine
from globalign.errors import ConfigError, DataError
from globalign.requests import GenerateRequest, Prompt, ScoreRequest, prompt_hash
from globalign.stats import gap_change, group_gap, holm, range_gap
from globalign.tasks import grouped
from globalign.tasks.base import (
    ComparisonRow,
    MetricRow,
    PromptParts,
    SampleRecord,
    TaskSettings,
    check_task_options,
    choice_distribution,
    render_prompt,
)

NAME = "md3"
OPTIONS = {
    "items": "study (the study's exact 894 items, default) or raw (built from the MD3 TSV files)",
    "overrides": "YAML/JSON file with clip ids to skip and spelling fixes (items: raw only; docs/md3.md)",
}
MAX_NEW_TOKENS = 10
TRANSCRIPT_CHARS = 500  # samples keep the transcript's end (where the guesser answers); the data has all of it
REFERENCE_DIALECT = "en_us"
METRICS = ("generation", "choice")  # accuracy metric prefixes
PROMPT_TEMPLATE = (
    "I am going to show you the transcript of a game two people are playing called Taboo.  The goal of the "
    "game is to guess the secret word without saying any of the distractor words.  Given the transcript, "
    "your goal is to guess the secret word.\n\nUse the following format:\nTranscript: The transcript between "
    "the two players.\nSecret Word: The secret word that the guesser is trying to guess.\n\n---\n\n"
    'Transcript: "{transcript}"\n\nSecret Word:'
)


def build_prompt(item: WordGameItem) -> PromptParts:
    """The study's prompt, verbatim; with a chat template the whole prompt is the user turn (as the study)."""
    text = PROMPT_TEMPLATE.format(transcript=item.transcript)
    return PromptParts(raw=text, user=text)


def choice_candidates(item: WordGameItem, seed: int) -> tuple[tuple[str, ...], int]:
    """The 6 candidates and the correct word's index: a position drawn per item from (seed, item id),
    so it does not depend on which other items were sampled."""
    position = random.Random(f"{seed}:{item.item_id}").randint(0, len(item.distractors))
    words = list(item.distractors)
    words.insert(position, item.secret_word)
    return tuple(words), position


def generation_correct(answer: str, secret_word: str, distractors: Sequence[str]) -> bool:
    """The study's rule: the secret word is a case-insensitive substring of the answer and no distractor is.
    ("Electronics." counts for "Electron"; "Atom or Electron" with distractor "Atom" does not.)"""
    text = answer.lower()
    return secret_word.lower() in text and not any(d.lower() in text for d in distractors)


def transcript_end(transcript: str) -> str:
    """The transcript's last TRANSCRIPT_CHARS characters (a leading "…" when cut)."""
    if len(transcript) <= TRANSCRIPT_CHARS:
        return transcript
    return "…" + transcript[len(transcript) - TRANSCRIPT_CHARS + 1:]


def stratified_sample(items: Sequence[WordGameItem], limit: int, seed: int) -> list[WordGameItem]:
    """A seeded sample of `limit` items that keeps each dialect's share (largest remainders), in file order."""
    return grouped.stratified_sample(items, lambda item: item.dialect, limit, seed)


def records_for_item(
    item: WordGameItem, model: str, prompt: Prompt | str, answer: str, candidates: Sequence[str], correct_index: int,
    distribution: Sequence[float] | None, extra: Mapping[str, Any] | None = None,
) -> SampleRecord:
    """One samples.jsonl row; `distribution` None when only the generation is known (re-scoring). Its extra
    holds the transcript's last TRANSCRIPT_CHARS characters, for readers such as the report's item browser."""
    metrics = {"generation_correct": float(generation_correct(answer, item.secret_word, item.distractors))}
    if distribution is not None:
        best = max(range(len(distribution)), key=distribution.__getitem__)
        metrics["choice_correct"] = float(best == correct_index)
    return SampleRecord(
        task=NAME, model=model, item_id=item.item_id, group=item.dialect,
        prompt_hash=prompt_hash(prompt),
        prediction=answer, distribution=list(distribution) if distribution is not None else None,
        metrics=metrics,
        extra={"secret_word": item.secret_word, "candidates": list(candidates), "correct_index": correct_index,
               "transcript": transcript_end(item.transcript), **(extra or {})},
    )


class Md3Task:
    name = NAME

    def __init__(self, settings: TaskSettings) -> None:
        check_task_options(NAME, settings.options, OPTIONS)
        source = settings.options.get("items", "study")
        if source not in ITEM_SOURCES:
            raise ConfigError(f"task {NAME}: items must be one of {', '.join(ITEM_SOURCES)}, got {source!r}")
        overrides = settings.options.get("overrides")
        if overrides is not None and not isinstance(overrides, str):
            raise ConfigError(f"task {NAME}: overrides must be a file path, got {overrides!r}")
        self.settings = settings
        self.item_set = load_md3_items(settings.data_dir, source, Path(overrides) if overrides else None)
        items = list(self.item_set.items)
        if settings.limit is not None and settings.limit < len(items):
            items = stratified_sample(items, settings.limit, settings.seed)
        if not items:
            raise DataError(f"MD3: {self.item_set.path} holds no items ({source} items)")
        self.items = items

    def manifest(self) -> dict[str, Any]:
        counts = {d: sum(1 for i in self.items if i.dialect == d) for d in DIALECTS}
        return {
            "items": self.item_set.source,
            "data_path": self.item_set.path,
            "overrides": self.item_set.overrides or None,
            "available_items": self.item_set.counts(),
            "dropped_rounds": self.item_set.dropped or None,
            "n_items": len(self.items),
            "items_per_dialect": counts,
            "item_ids": [i.item_id for i in self.items],
            "max_new_tokens": MAX_NEW_TOKENS,
            "choice_position_seed": self.settings.seed,
        }

    def run(self, engine: Engine, prompt_format: str) -> list[SampleRecord]:
        prompts = [render_prompt(build_prompt(item), prompt_format, engine) for item in self.items]
        choices = [choice_candidates(item, self.settings.seed) for item in self.items]
        answers = engine.generate([GenerateRequest(p, MAX_NEW_TOKENS) for p in prompts], desc=f"{NAME} generation")
        scores = engine.score([ScoreRequest(p, c) for p, (c, _) in zip(prompts, choices)], desc=f"{NAME} choice")
        records = []
        for item, prompt, answer, (candidates, correct), row in zip(self.items, prompts, answers, choices, scores):
            records.append(records_for_item(
                item, engine.model.info.name, prompt, answer.strip(), candidates, correct,
                choice_distribution([s.nll_mean for s in row]),
                {"nll_mean": [s.nll_mean for s in row], "boundary_merge": any(s.boundary_merge for s in row)},
            ))
        return records

    def metrics(self, records: Mapping[str, Sequence[SampleRecord]]) -> list[MetricRow]:
        return dialect_metrics(records, self.settings)

    def comparisons(
        self, records: Mapping[str, Sequence[SampleRecord]], pairs: Sequence[tuple[str, str]]
    ) -> list[ComparisonRow]:
        return dialect_comparisons(records, pairs, self.settings)


# ------------------------------------------------------------------------------------ aggregation
def dialect_metrics(records: Mapping[str, Sequence[SampleRecord]], settings: TaskSettings) -> list[MetricRow]:
    """Accuracy per dialect and overall, the US-minus-each gaps and the best-minus-worst gap."""
    stats = settings.stats
    rows = []
    for model, model_records in records.items():
        for metric in METRICS:
            table = grouped.per_item_table(model_records, f"{metric}_correct")
            if not table:
                continue
            rows += grouped.mean_rows(NAME, model, f"{metric}_accuracy", table, DIALECTS, stats)
            values = {d: list(table[d].values()) for d in grouped.ordered_groups(table, DIALECTS)}
            if REFERENCE_DIALECT in values:
                for other in values:
                    if other != REFERENCE_DIALECT:
                        est = group_gap(values, REFERENCE_DIALECT, other, n_boot=stats.n_boot, seed=stats.seed)
                        rows.append(MetricRow(NAME, model, f"{REFERENCE_DIALECT}-{other}", f"{metric}_gap",
                                              est.value, est.ci_low, est.ci_high, est.n))
            if len(values) >= 2:
                gap = range_gap(values, n_boot=stats.n_boot, seed=stats.seed)
                rows.append(MetricRow(NAME, model, f"{gap.best}-{gap.worst}", f"{metric}_gap_range",
                                      gap.value, gap.ci_low, gap.ci_high, gap.n))
    return rows


def dialect_comparisons(
    records: Mapping[str, Sequence[SampleRecord]], pairs: Sequence[tuple[str, str]], settings: TaskSettings
) -> list[ComparisonRow]:
    """For each (base, aligned) pair on the same items: McNemar per dialect and overall (Holm across
    those groups), and the change in each dialect gap (Holm across the gaps)."""
    stats = settings.stats
    rows: list[ComparisonRow] = []
    for model_a, model_b in pairs:
        for metric in METRICS:
            paired = grouped.paired_by_group(grouped.per_item_table(records[model_a], f"{metric}_correct"),
                                             grouped.per_item_table(records[model_b], f"{metric}_correct"), DIALECTS)
            if not paired:
                continue
            rows += grouped.mcnemar_rows(NAME, f"{metric}_accuracy", model_a, model_b, paired, stats)
            a_by = {d: a for d, (a, _) in paired.items()}
            b_by = {d: b for d, (_, b) in paired.items()}
            gaps: list[tuple[str, tuple[str, str] | None]] = []
            if REFERENCE_DIALECT in paired:
                gaps += [(f"{REFERENCE_DIALECT}-{d}", (REFERENCE_DIALECT, d)) for d in paired if d != REFERENCE_DIALECT]
            if len(paired) >= 2:
                gaps.append(("range", None))
            changes = [(g, gap_change(a_by, b_by, gap=gap, n_boot=stats.n_boot, n_perm=stats.n_perm, seed=stats.seed))
                       for g, gap in gaps]
            for (group, c), p_adj in zip(changes, holm([c.p_value for _, c in changes])):
                rows.append(ComparisonRow(NAME, group, f"{metric}_gap_change", model_a, model_b, c.delta, c.ci_low,
                                          c.ci_high, c.p_value, p_adj, c.test, c.n))
    return rows
