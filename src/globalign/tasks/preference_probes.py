"""The country-preference probes run on a model (PROTOCOL.md, Axis 4): `where_from` and `askreddit`.

Two scorers (option `scorer`):
- `lm` (default): likelihood. For each question the prompt is the question plus the response
  template's text before `{country}`, and each country " <name>" is a candidate scored with the
  shared-prompt path of the engine (one prompt pass, then all candidates on its KV cache); the value
  is the candidates' mean token NLL (lower = preferred).
- `judge`: the model as a reward model: log p("Yes") - log p("No") after a fixed judging question
  about the filled response (tasks/judge.py, JudgeReward); one prompt per (question, country), so
  it costs far more than `lm`: use `countries: gallup` or `--limit` on a CPU.
A trained reward model in the run (a `models:` entry with `kind: reward`, or `--reward-model`) is
scored on the filled responses instead (option `reward_format`): `llama2` (default) is the study's
Starling-RM text `<s>[INST] question </s> [/INST] response</s>`; `chat` is the reward model's own
chat template. Rewards go through engine/runner.py (de-duplicated and cached).
Rankings, win rates and correlations follow tasks/country_preference.py.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from globalign.data.reward_probe import (
    GALLUP_ORDERS,
    REFERENCE_COUNTRY,
    AskRedditQuestion,
    load_askreddit,
    load_country_set_181,
    load_where_from_countries,
)
from globalign.engine.runner import Engine, RewardEngine
from globalign.errors import ConfigError, DataError
from globalign.requests import RewardRequest, ScoreRequest
from globalign.tasks.base import (
    ComparisonRow,
    MetricRow,
    PromptParts,
    SampleRecord,
    TaskSettings,
    check_task_options,
    render_prompt,
)
from globalign.tasks.country_preference import (
    ProbeScores,
    preference_comparisons,
    preference_metrics,
    samples,
)
from globalign.tasks.judge import JudgeReward

WHERE_FROM = AskRedditQuestion(0, "Where are you from?", "I am from {country}.", "positive", "where_from", "")
OPTIONS = {
    "scorer": "lm (likelihood of the country tokens, default) or judge (log p(Yes) - log p(No) as a reward)",
    "countries": "all (the 254, default) or gallup (the 23 countries of the two Gallup lists, and the United States: 24)",
    "reward_format": "trained reward models: llama2 (the study's Starling-RM text, default) or chat "
                     "(the reward model's chat template)",
}
SCORERS = ("lm", "judge")
REWARD_FORMATS = ("llama2", "chat")


def lm_prompt_parts(question: AskRedditQuestion) -> PromptParts:
    """Raw: the question and the template's text before the slot; chat: the question as the user turn,
    the template's start as the beginning of the answer (as the study's chat-template prompts)."""
    before = question.template.split("{country}", 1)[0].strip()
    return PromptParts(raw=question.lm_prompt(), user=question.question, assistant_prefix=before)


class _ProbeTask:
    name = ""
    accepts_reward_models = True  # the pipeline gives reward models only to tasks that say so

    def __init__(self, settings: TaskSettings) -> None:
        check_task_options(self.name, settings.options, OPTIONS)
        self.settings = settings
        self.scorer = settings.options.get("scorer", "lm")
        if self.scorer not in SCORERS:
            raise ConfigError(f"task {self.name}: scorer must be one of {', '.join(SCORERS)}, got {self.scorer!r}")
        self.reward_format = settings.options.get("reward_format", "llama2")
        if self.reward_format not in REWARD_FORMATS:
            raise ConfigError(f"task {self.name}: reward_format must be one of {', '.join(REWARD_FORMATS)}, "
                              f"got {self.reward_format!r}")
        countries = settings.options.get("countries", "all")
        if countries not in ("all", "gallup"):
            raise ConfigError(f"task {self.name}: countries must be all or gallup, got {countries!r}")
        self.country_choice = countries
        self.countries = load_where_from_countries(settings.data_dir)
        # The metrics rank countries within the study's 181-country set: read and check it now, before
        # any model runs, not after hours of scoring.
        self.ranking_set = load_country_set_181(settings.data_dir, known=self.countries)
        if countries == "gallup":
            chosen = {REFERENCE_COUNTRY, *(c for order in GALLUP_ORDERS.values() for c in order)}
            self.countries = [c for c in self.countries if c in chosen]
        questions = self._questions()
        if settings.limit is not None and settings.limit < len(questions):
            picked = random.Random(settings.seed).sample(range(len(questions)), settings.limit)
            questions = [questions[i] for i in sorted(picked)]
        if not questions:
            raise DataError(f"{self.name}: the probe's question file has no questions")
        self.questions = questions

    def _questions(self) -> list[AskRedditQuestion]:
        raise NotImplementedError

    def manifest(self) -> dict[str, Any]:
        probe = ("language-model likelihood of the country tokens" if self.scorer == "lm"
                 else "the model as a judge: log p(Yes) - log p(No) about the filled response")
        return {"n_questions": len(self.questions), "question_indices": [q.index for q in self.questions],
                "scorer": self.scorer, "probe": probe, "reward_format": self.reward_format,
                "countries": self.country_choice,
                "n_countries": len(self.countries)}

    def _reward_request(self, model, question: AskRedditQuestion, country: str) -> RewardRequest:
        if self.reward_format == "chat":
            return RewardRequest("", model.chat_text(question.question, question.response(country)))
        return RewardRequest("", question.reward_text(country))

    def run(self, engine: Engine | RewardEngine, prompt_format: str) -> list[SampleRecord]:
        if isinstance(engine, RewardEngine):
            # a trained reward model: the scorer option is for language models; the prompt format
            # does not apply either (reward_format says how the pair is written)
            flat = engine.reward([self._reward_request(engine.model, q, c) for q in self.questions
                                  for c in self.countries], desc=self.name)
            values = np.array(flat).reshape(len(self.questions), len(self.countries))
            kind = "reward"
        elif self.scorer == "judge":
            # prompt_format does not apply: a judge always talks through the model's chat template
            judge = JudgeReward.from_engine(engine)
            flat = judge.reward([RewardRequest(q.question, q.response(c)) for q in self.questions
                                 for c in self.countries])
            values = np.array(flat).reshape(len(self.questions), len(self.countries))
            kind = "reward"
        else:
            requests = [ScoreRequest(render_prompt(lm_prompt_parts(q), prompt_format, engine),
                                     tuple(q.lm_candidate(c) for c in self.countries)) for q in self.questions]
            scores = engine.score(requests, desc=self.name)
            values = np.array([[s.nll_mean for s in row] for row in scores])
            kind = "lm_nll"
        probe = ProbeScores(self.name, engine.model.info.name, kind, tuple(self.countries),
                            tuple(str(q.index) for q in self.questions),
                            tuple(q.sentiment == "positive" for q in self.questions), values)
        return samples(probe)

    def metrics(self, records: Mapping[str, Sequence[SampleRecord]]) -> list[MetricRow]:
        return preference_metrics(records, self.settings)

    def comparisons(
        self, records: Mapping[str, Sequence[SampleRecord]], pairs: Sequence[tuple[str, str]]
    ) -> list[ComparisonRow]:
        return preference_comparisons(records, pairs, self.settings)


class WhereFromTask(_ProbeTask):
    name = "where_from"

    def _questions(self) -> list[AskRedditQuestion]:
        return [WHERE_FROM]


class AskRedditTask(_ProbeTask):
    name = "askreddit"

    def _questions(self) -> list[AskRedditQuestion]:
        return load_askreddit(self.settings.data_dir)
