"""Belebele reading comprehension in 9 languages (PROTOCOL.md: the multilingual axis beside TyDiQA).

The model reads a FLORES-200 passage, a question and four answers labelled (A)..(D), and the scoring
primitive picks the answer: each candidate "(A)".."(D)" appended after the study's prompt, exp(-mean
token NLL) renormalised, argmax. Correct iff the argmax is the dataset's answer. Accuracy per language
and overall; for base vs aligned, exact McNemar tests per language and overall, Holm across them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from globalign.data.belebele import LANGUAGES, VARIANTS, BelebeleQuestion, load_belebele
from globalign.engine.runner import Engine
from globalign.errors import ConfigError, DataError, UnknownNameError, unknown_name
from globalign.requests import Prompt, ScoreRequest, prompt_hash
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



def format_choices(answers: Sequence[str]) -> str:
    """The study's choices block: a newline, then `(A) answer` lines."""
    return "\n" + "\n".join(f"({letter}) {answer}" for letter, answer in zip(LETTERS, answers))


def build_prompt(question: BelebeleQuestion) -> PromptParts:
    """The study's prompt, verbatim (it ends with "is: ", trailing space included); with a chat template
    the whole prompt is the user turn."""
    text = PROMPT_TEMPLATE.format(context=question.passage, question=question.question,
                                  choices=format_choices(question.answers))
    return PromptParts(raw=text, user=text)


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
    question: BelebeleQuestion, model: str, prompt: Prompt | str, nll_means: Sequence[float]
) -> SampleRecord:
    """One samples.jsonl row from the four candidates' mean NLLs (in A..D order)."""
    distribution = choice_distribution(nll_means)
    best = max(range(len(distribution)), key=distribution.__getitem__)  # first maximum on ties
    return SampleRecord(
        task=NAME, model=model, item_id=question.item_id, group=question.language,
        prompt_hash=prompt_hash(prompt), prediction=LETTERS[best], distribution=distribution,
        metrics={"correct": float(best == question.correct_index)},
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
            questions = grouped.stratified_sample(questions, lambda q: q.language, settings.limit, settings.seed)
        if not questions:
            raise DataError(f"Belebele: no questions in {', '.join(self.dataset.paths.values()) or self.dataset.origin}")
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
def language_metrics(records: Mapping[str, Sequence[SampleRecord]], settings: TaskSettings) -> list[MetricRow]:
    """Accuracy overall ("all") and per language, with percentile-bootstrap CIs."""
    return [row for model, model_records in records.items()
            for row in grouped.mean_rows(NAME, model, METRIC, grouped.per_item_table(model_records, "correct"),
                                         LANGUAGES, settings.stats)
            if model_records]


def language_comparisons(
    records: Mapping[str, Sequence[SampleRecord]], pairs: Sequence[tuple[str, str]], settings: TaskSettings
) -> list[ComparisonRow]:
    """For each (base, aligned) pair: exact McNemar on the items both scored, overall and per language;
    Holm across those groups."""
    return [row for model_a, model_b in pairs
            for row in grouped.mcnemar_rows(
                NAME, METRIC, model_a, model_b,
                grouped.paired_by_group(grouped.per_item_table(records[model_a], "correct"),
                                        grouped.per_item_table(records[model_b], "correct"), LANGUAGES),
                settings.stats)]
