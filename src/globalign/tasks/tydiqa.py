"""Languages: TyDi QA GoldP, 1-shot extractive QA in 9 languages (PROTOCOL.md, Axis 2).

Per question: the study's instruction, one same-language demonstration, then the question; greedy
decoding of 50 new tokens, the text before the first blank line is the answer. Metrics: SQuAD exact
match and token F1 (max over gold answers), plus a script-aware variant (docs/tydiqa.md). For each
aligned model vs its base: the paired per-question difference per language, Holm across languages.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from globalign.data.tydiqa import CODE_BY_NAME, LANGUAGES, QAItem, load_tydiqa
from globalign.engine.runner import Engine
from globalign.errors import ConfigError, DataError, unknown_name
from globalign.intervene.split import ArticleSplit, passages_sha256, split_items
from globalign.requests import GenerateRequest, Prompt, prompt_hash
from globalign.stats import holm, paired_difference
from globalign.tasks import grouped
from globalign.tasks.base import (
    ComparisonRow,
    MetricRow,
    PromptParts,
    SampleRecord,
    TaskSettings,
    check_task_options,
    render_prompt,
)
from globalign.tasks.qa_metrics import QA_METRICS, extract_answer

NAME = "tydiqa"
OPTIONS = {"languages": "all (default) or a comma-separated list of codes or names: " + ", ".join(LANGUAGES),
           "max_context_chars": "only passages of at most N characters, for questions and demonstrations "
                                "(quick CPU runs such as the demo; default: no limit)",
           "split": "all (default), eval or train: only the questions of the held-out (eval) or training "
                    "articles of the article split that `globalign intervene` trains on; demonstrations come "
                    "from the same side",
           "split_seed": "the article split's seed (a whole number, default 221)",
           "split_eval_fraction": "the share of articles held out for evaluation (between 0 and 1, default 0.5)"}
SPLITS = ("all", "eval", "train")
MAX_NEW_TOKENS = 50
STOP = ("\n\n",)
INSTRUCTION = (
    "Please answer the following questions about the text below by extracting the relevant answer from the "
    "context. \n\nUse the following format:\nContext: A passage containing the answer to the question.\n"
    "Question: The question being asked.\nExtracted Answer: The answer to the question using a direct excerpt "
    "from the context.\n\n"
)
DEMO = "Context: {context}\nQuestion: {question}\nExtracted Answer: {answer}\n\n"
QUERY = "Context: {context}\nQuestion: {question}\nExtracted Answer:"


def build_prompt(item: QAItem, demo: QAItem) -> PromptParts:
    """The study's 1-shot prompt, verbatim; with a chat template the whole prompt is the user turn."""
    text = (INSTRUCTION + DEMO.format(context=demo.context, question=demo.question, answer=demo.answers[0])
            + QUERY.format(context=item.context, question=item.question))
    return PromptParts(raw=text, user=text)


def pick_demo(item: QAItem, pool: Sequence[QAItem], seed: int) -> QAItem:
    """One demonstration of the same language, drawn from (seed, question id): never the question
    itself, and never a question on the same passage (its answer could give this one away).
    `pool` may hold other languages; pass one language's questions to make this cheap."""
    candidates = [d for d in pool if d.language == item.language and d.item_id != item.item_id
                  and d.context != item.context]
    if not candidates:
        raise DataError(f"TyDi QA: no demonstration available for {item.item_id} (no other {item.language} passage)")
    return candidates[random.Random(f"{seed}:{item.item_id}").randrange(len(candidates))]


def score_answer(answer: str, golds: Sequence[str]) -> dict[str, float]:
    return {name: fn(answer, golds) for name, fn in QA_METRICS.items()}


def stratified_languages(items: Sequence[QAItem], limit: int, seed: int) -> list[QAItem]:
    """`limit` questions split as evenly as possible across the languages present (seeded), in file
    order: small languages (Bengali has 113) are not drowned by large ones in a small sample."""
    by_language: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        by_language.setdefault(item.language, []).append(index)
    languages = sorted(by_language)
    quota = dict.fromkeys(languages, 0)
    remaining = limit
    while remaining > 0 and any(quota[c] < len(by_language[c]) for c in languages):
        for code in languages:
            if remaining and quota[code] < len(by_language[code]):
                quota[code] += 1
                remaining -= 1
    rng = random.Random(seed)
    picked = [i for c in languages for i in rng.sample(by_language[c], quota[c])]
    return [items[i] for i in sorted(picked)]


def make_record(item: QAItem, model: str, prompt: Prompt | str, generation: str, demo_id: str) -> SampleRecord:
    answer = extract_answer(generation)
    return SampleRecord(
        task=NAME, model=model, item_id=item.item_id, group=item.language,
        prompt_hash=prompt_hash(prompt), prediction=answer, distribution=None,
        metrics=score_answer(answer, item.answers),
        extra={"gold": list(item.answers), "question": item.question, "demo_id": demo_id, "generation": generation},
    )


class TyDiQATask:
    name = NAME

    def __init__(self, settings: TaskSettings) -> None:
        check_task_options(NAME, settings.options, OPTIONS)
        self.settings = settings
        self.languages = _languages(settings.options.get("languages", "all"))
        self.max_context_chars = _positive_int(settings.options.get("max_context_chars"), "max_context_chars")
        self.split, self.article_split = _split(settings.options)
        self.data = load_tydiqa(settings.data_dir)
        questions = self.data.dev
        if self.split != "all":
            train, held_out = split_items(questions, self.article_split)
            questions = held_out if self.split == "eval" else train
        items = [q for q in questions if q.language in self.languages and self._short_enough(q)]
        if settings.limit is not None and settings.limit < len(items):
            items = stratified_languages(items, settings.limit, settings.seed)
        if not items:
            raise DataError(f"TyDi QA: no dev question in {self.data.path} is in the chosen languages "
                            f"({', '.join(self.languages)}) with a passage short enough (max_context_chars)"
                            + ("" if self.split == "all" else f" on the {self.split} side of the article split"))
        self.items = items
        # With a split, demonstrations stay on the items' side: an eval prompt never shows a training passage.
        self.demo_split = "train" if self.data.train and self.split == "all" else "dev"
        pools: dict[str, list[QAItem]] = {}
        for question in questions if self.split != "all" else self.data.train or self.data.dev:
            if self._short_enough(question):
                pools.setdefault(question.language, []).append(question)
        self.demos = {item.item_id: pick_demo(item, pools.get(item.language, []), settings.seed) for item in items}

    def _short_enough(self, question: QAItem) -> bool:
        return self.max_context_chars is None or len(question.context) <= self.max_context_chars

    def manifest(self) -> dict[str, Any]:
        return {
            "data_origin": self.data.origin,
            "max_context_chars": self.max_context_chars,
            "data_path": self.data.path,
            "demo_split": self.demo_split,
            "demo_note": ("1-shot demonstrations from the train split, as the study" if self.demo_split == "train"
                          else "no train split found: demonstrations are other dev questions of the same "
                               "language (never the question itself or its passage), seeded per question"),
            "languages": list(self.languages),
            "available_questions": self.data.counts(),
            "n_questions": len(self.items),
            "questions_per_language": {c: sum(1 for i in self.items if i.language == c) for c in self.languages},
            "demos": {i.item_id: self.demos[i.item_id].item_id for i in self.items},
            "max_new_tokens": MAX_NEW_TOKENS,
            **self._split_manifest(),
        }

    def _split_manifest(self) -> dict[str, Any]:
        if self.split == "all":
            return {}  # runs without a split keep the manifest they always had
        return {"split": {**self.article_split.to_json(), "side": self.split},
                "passages_sha256": passages_sha256(self.items),
                "demo_note": f"article split: demonstrations are other {self.split}-side dev questions of the same "
                             "language (never the question itself or its passage), seeded per question"}

    def run(self, engine: Engine, prompt_format: str) -> list[SampleRecord]:
        prompts = [render_prompt(build_prompt(i, self.demos[i.item_id]), prompt_format, engine) for i in self.items]
        generations = engine.generate([GenerateRequest(p, MAX_NEW_TOKENS, STOP) for p in prompts], desc=NAME)
        return [make_record(item, engine.model.info.name, prompt, text, self.demos[item.item_id].item_id)
                for item, prompt, text in zip(self.items, prompts, generations)]

    def metrics(self, records: Mapping[str, Sequence[SampleRecord]]) -> list[MetricRow]:
        return language_metrics(records, self.settings)

    def comparisons(
        self, records: Mapping[str, Sequence[SampleRecord]], pairs: Sequence[tuple[str, str]]
    ) -> list[ComparisonRow]:
        return language_comparisons(records, pairs, self.settings)


def _positive_int(value: Any, option: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"task {NAME}: {option} must be a positive whole number, got {value!r}")
    return value


def _split(options: Mapping[str, Any]) -> tuple[str, ArticleSplit]:
    side = options.get("split", "all")
    if side not in SPLITS:
        raise ConfigError(f"task {NAME}: split must be one of {', '.join(SPLITS)}, got {side!r}")
    seed = options.get("split_seed", 221)
    fraction = options.get("split_eval_fraction", 0.5)
    try:
        return side, ArticleSplit(seed, fraction)
    except ConfigError as e:
        raise ConfigError(f"task {NAME}: {e} (options split_seed, split_eval_fraction)") from None


def _languages(value: Any) -> tuple[str, ...]:
    if value == "all":
        return tuple(LANGUAGES)
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"task {NAME}: languages must be 'all' or a list of codes ({', '.join(LANGUAGES)})")
    codes = [CODE_BY_NAME.get(v.lower(), v) for v in value]  # "swahili" and "sw" both work
    for code in codes:
        if code not in LANGUAGES:
            raise unknown_name("TyDi QA language", code, [*LANGUAGES, "all"])
    return tuple(dict.fromkeys(codes))


# ------------------------------------------------------------------------------------ aggregation
def language_metrics(records: Mapping[str, Sequence[SampleRecord]], settings: TaskSettings) -> list[MetricRow]:
    return [row for model, model_records in records.items() for metric in QA_METRICS
            for row in grouped.mean_rows(NAME, model, metric, grouped.per_item_table(model_records, metric),
                                         tuple(LANGUAGES), settings.stats)]


def language_comparisons(
    records: Mapping[str, Sequence[SampleRecord]], pairs: Sequence[tuple[str, str]], settings: TaskSettings
) -> list[ComparisonRow]:
    """Paired per-question difference (model_b - model_a) per language, Holm across the languages; the
    `all` row pools every question and is its own single test (p_adjusted = p)."""
    stats = settings.stats
    rows: list[ComparisonRow] = []
    for model_a, model_b in pairs:
        for metric in QA_METRICS:
            paired = grouped.paired_by_group(grouped.per_item_table(records[model_a], metric),
                                             grouped.per_item_table(records[model_b], metric), tuple(LANGUAGES))
            if not paired:
                continue
            tests = {g: paired_difference(a, b, n_boot=stats.n_boot, n_perm=stats.n_perm, seed=stats.seed)
                     for g, (a, b) in [("all", grouped.pooled(paired)), *paired.items()]}
            everything = tests.pop("all")
            rows.append(ComparisonRow(NAME, "all", metric, model_a, model_b, everything.delta, everything.ci_low,
                                      everything.ci_high, everything.p_value, everything.p_value, everything.test,
                                      everything.n))
            for (code, c), p_adj in zip(tests.items(), holm([c.p_value for c in tests.values()])):
                rows.append(ComparisonRow(NAME, code, metric, model_a, model_b, c.delta, c.ci_low, c.ci_high,
                                          c.p_value, p_adj, c.test, c.n))
    return rows
