"""Belebele reading comprehension in 9 languages (PROTOCOL.md: the multilingual axis beside TyDiQA).

The model reads a FLORES-200 passage, a question and four answers labelled (A)..(D), and the scoring
primitive picks the answer: each candidate "(A)".."(D)" appended after the study's prompt, exp(-mean
token NLL) renormalised, argmax. Correct iff the argmax is the dataset's answer. Accuracy per language
and overall; for base vs aligned, exact McNemar tests per language and overall, Holm across them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, TypeVar

from globalign.data.belebele import LANGUAGES, VARIANTS, BelebeleQuestion, load_belebele
from globalign.engine.runner import Engine
from globalign.errors import ConfigError, DataError, UnknownNameError, unknown_name
from globalign.requests import ScoreRequest, content_hash
from globalign.stats import holm, mcnemar, mean_ci
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

NAME = "belebele"
OPTIONS = {"languages": "all (default) or a comma-separated list of codes: " + ", ".join(LANGUAGES)}
LETTERS = "ABCD"
CANDIDATES = tuple(f"({letter})" for letter in LETTERS)
METRIC = "accuracy"
PROMPT_TEMPLATE = (
    "Given the following passage, please answer the following question.  Use the following format:\n\n"
    "Context: A passage containing the answer to the question.\n"
    "Question: The question being asked.\n"
    "Choices: The possible answers to the question.\n"
    "Based on the choices the answer is: The correct answer to the question: A, B, C, or D.\n\n"
    "---\n\n"
    "Context: {context}\n"
    "Question: {question}\n"
    "Choices: {choices}\n"
    "Based on the choices the answer is: "
)

T = TypeVar("T")


def format_choices(answers: Sequence[str]) -> str:
    """The study's choices block: a newline, then `(A) answer` lines."""
    return "\n" + "\n".join(f"({letter}) {answer}" for letter, answer in zip(LETTERS, answers))


def build_prompt(question: BelebeleQuestion) -> PromptParts:
    """The study's prompt, verbatim (it ends with "is: ", trailing space included); with a chat template
    the whole prompt is the user turn."""
    text = PROMPT_TEMPLATE.format(context=question.passage, question=question.question,
                                  choices=format_choices(question.answers))
    return PromptParts(raw=text, user=text)


def stratified_sample(items: Sequence[T], key: Callable[[T], Hashable], limit: int, seed: int) -> list[T]:
    """A seeded sample of `limit` items keeping each group's share (largest remainders), in input order."""
    by_group: dict[Hashable, list[int]] = {}
    for index, item in enumerate(items):
        by_group.setdefault(key(item), []).append(index)
    exact = {g: limit * len(ix) / len(items) for g, ix in by_group.items()}
    quota = {g: int(v) for g, v in exact.items()}
    order = sorted(exact, key=lambda g: (quota[g] - exact[g], str(g)))
    for g in order[: limit - sum(quota.values())]:
        quota[g] += 1
    rng = random.Random(seed)
    picked = [i for g in sorted(by_group, key=str) for i in rng.sample(by_group[g], min(quota[g], len(by_group[g])))]
    return [items[i] for i in sorted(picked)]


def parse_languages(value: Any) -> tuple[str, ...]:
    """The `languages` option: a comma list or a list of our codes, in the order given; default all."""
    if value is None or value == "all":
        return LANGUAGES
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list | tuple) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"task {NAME}: languages must be a comma list or a list of codes "
                          f"({', '.join(LANGUAGES)}), got {value!r}")
    by_variant = {variant: code for code, variant in VARIANTS.items()}
    for code in value:
        if code in by_variant:  # a FLORES-200 variant name: say which code to use
            raise UnknownNameError(f"unknown language of task {NAME} '{code}'; did you mean '{by_variant[code]}'? "
                                   f"(languages are given by code: {', '.join(LANGUAGES)})")
        if code not in VARIANTS:
            raise unknown_name(f"language of task {NAME}", code, LANGUAGES)
    if len(set(value)) != len(value):
        raise ConfigError(f"task {NAME}: a language is listed twice in {', '.join(value)}")
    return tuple(value)


def record_for_question(
    question: BelebeleQuestion, model: str, prompt: str, nll_means: Sequence[float]
) -> SampleRecord:
    """One samples.jsonl row from the four candidates' mean NLLs (in A..D order)."""
    distribution = choice_distribution(nll_means)
    best = max(range(len(distribution)), key=distribution.__getitem__)  # first maximum on ties
    return SampleRecord(
        task=NAME, model=model, item_id=question.item_id, group=question.language,
        prompt_hash=content_hash(prompt)[:16], prediction=LETTERS[best], distribution=distribution,
        metrics={"correct": int(best == question.correct_index)},
        extra={"variant": question.variant, "correct_index": question.correct_index, "nll_mean": list(nll_means)},
    )


class BelebeleTask:
    name = NAME

    def __init__(self, settings: TaskSettings) -> None:
        check_task_options(NAME, settings.options, OPTIONS)
        self.settings = settings
        self.languages = parse_languages(settings.options.get("languages"))
        self.dataset = load_belebele(settings.data_dir, self.languages)
        questions = list(self.dataset.questions)
        if settings.limit is not None and settings.limit < len(questions):
            questions = stratified_sample(questions, lambda q: q.language, settings.limit, settings.seed)
        if not questions:
            raise DataError("Belebele: no questions selected (check --limit)")
        self.questions = questions

    def manifest(self) -> dict[str, Any]:
        counts = {lang: sum(1 for q in self.questions if q.language == lang) for lang in self.languages}
        return {
            "data_origin": self.dataset.origin,
            "data_paths": self.dataset.paths,
            "hub_repo": "facebook/belebele" if self.dataset.origin == "hub" else None,
            "hub_revision": self.dataset.revision,
            "languages": list(self.languages),
            "variants": {lang: VARIANTS[lang] for lang in self.languages},
            "available_questions": self.dataset.counts(),
            "n_questions": len(self.questions),
            "questions_per_language": counts,
            "candidates": list(CANDIDATES),
            "item_ids": [q.item_id for q in self.questions],
        }

    def run(self, engine: Engine, prompt_format: str) -> list[SampleRecord]:
        prompts = [render_prompt(build_prompt(q), prompt_format, engine) for q in self.questions]
        scores = engine.score([ScoreRequest(p, CANDIDATES) for p in prompts], desc=NAME)
        model = engine.model.info.name
        return [record_for_question(q, model, p, [s.nll_mean for s in row])
                for q, p, row in zip(self.questions, prompts, scores)]

    def metrics(self, records: Mapping[str, Sequence[SampleRecord]]) -> list[MetricRow]:
        return language_metrics(records, self.settings)

    def comparisons(
        self, records: Mapping[str, Sequence[SampleRecord]], pairs: Sequence[tuple[str, str]]
    ) -> list[ComparisonRow]:
        return language_comparisons(records, pairs, self.settings)


# ------------------------------------------------------------------------------------ aggregation
def _outcomes(records: Sequence[SampleRecord]) -> dict[str, dict[str, float]]:
    """language -> {item id: 0/1}."""
    table: dict[str, dict[str, float]] = {}
    for record in records:
        value = record.metrics.get("correct")
        if value is not None:
            table.setdefault(record.group, {})[record.item_id] = float(value)
    return table


def _languages(table: Mapping[str, object]) -> list[str]:
    return [g for g in (*LANGUAGES, *sorted(set(table) - set(LANGUAGES))) if g in table]


def language_metrics(records: Mapping[str, Sequence[SampleRecord]], settings: TaskSettings) -> list[MetricRow]:
    """Accuracy overall ("all") and per language, with percentile-bootstrap CIs."""
    stats = settings.stats
    rows = []
    for model, model_records in records.items():
        table = _outcomes(model_records)
        if not table:
            continue
        values = {g: list(table[g].values()) for g in _languages(table)}
        everything = [v for vals in values.values() for v in vals]
        for group, vals in [("all", everything), *values.items()]:
            est = mean_ci(vals, n_boot=stats.n_boot, seed=stats.seed)
            rows.append(MetricRow(NAME, model, group, METRIC, est.value, est.ci_low, est.ci_high, est.n))
    return rows


def language_comparisons(
    records: Mapping[str, Sequence[SampleRecord]], pairs: Sequence[tuple[str, str]], settings: TaskSettings
) -> list[ComparisonRow]:
    """For each (base, aligned) pair: exact McNemar on the items both scored, overall and per language;
    Holm across those groups."""
    stats = settings.stats
    rows: list[ComparisonRow] = []
    for model_a, model_b in pairs:
        table_a, table_b = _outcomes(records[model_a]), _outcomes(records[model_b])
        paired = {}
        for group in (g for g in _languages(table_a) if g in table_b):
            items = sorted(set(table_a[group]) & set(table_b[group]))  # the same items for both models
            if items:
                paired[group] = ([table_a[group][i] for i in items], [table_b[group][i] for i in items])
        if not paired:
            continue
        everything = ([v for a, _ in paired.values() for v in a], [v for _, b in paired.values() for v in b])
        tests = [(g, mcnemar(a, b, n_boot=stats.n_boot, seed=stats.seed))
                 for g, (a, b) in [("all", everything), *paired.items()]]
        for (group, c), p_adj in zip(tests, holm([c.p_value for _, c in tests])):
            rows.append(ComparisonRow(NAME, group, METRIC, model_a, model_b, c.delta, c.ci_low, c.ci_high,
                                      c.p_value, p_adj, c.test, c.n))
    return rows
