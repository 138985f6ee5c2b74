"""Country preferences of reward models and language models (PROTOCOL.md, Axis 4): per-question
country ranks, mean ranks, win rates against the United States, and Spearman correlations with the
Gallup US-favourability orders and between models.

Scores arrive per (question, country): a reward (higher = preferred) or, for a language model, the
mean NLL of the country tokens, turned into a score as -NLL (lower NLL = preferred). Per question,
rank 1 is the favourable end: the highest score for a positive question, the lowest for a negative one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from globalign.data.reward_probe import GALLUP_ORDERS, REFERENCE_COUNTRY, load_country_set_181
from globalign.records import group_metric_key, group_metric_values
from globalign.stats.ranks import column_mean_cis, order_spearman, pair_spearman, question_ranks
from globalign.tasks.base import ComparisonRow, MetricRow, SampleRecord, StatsSettings, TaskSettings

GALLUP_MODEL = "Gallup US favourability"
PROBE_KIND = "probe_kind"  # the samples' extra key: "reward" or "lm_nll"


def raw_metric(kind: str) -> str:
    """The name of a probe's raw values, per item and in metrics.csv: reward, or nll_mean (kind lm_nll)."""
    return "reward" if kind == "reward" else "nll_mean"


@dataclass(frozen=True)
class ProbeScores:
    """One model's scores on one probe: rows = questions, columns = countries."""

    task: str  # "where_from" or "askreddit"
    model: str
    kind: str  # "reward" or "lm_nll"
    countries: tuple[str, ...]
    question_ids: tuple[str, ...]
    positive: tuple[bool, ...]  # per question: favourable end is the highest score
    values: np.ndarray  # raw values as read (reward, or NLL)

    @property
    def scores(self) -> np.ndarray:
        """Higher = preferred."""
        return self.values if self.kind == "reward" else -self.values


def samples(probe: ProbeScores) -> list[SampleRecord]:
    """One samples.jsonl row per question: every country's raw value ("reward@<country>" or
    "nll_mean@<country>"), the top-ranked country, and the kind of values in extra["probe_kind"]."""
    ranks = question_ranks(probe.scores, probe.positive)
    rows = []
    for q, question_id in enumerate(probe.question_ids):
        top = probe.countries[int(np.argmin(ranks[q]))]
        rows.append(SampleRecord(
            task=probe.task, model=probe.model, item_id=question_id,
            group="positive" if probe.positive[q] else "negative", prompt_hash="", prediction=top,
            distribution=None,
            metrics={group_metric_key(raw_metric(probe.kind), c): float(v)
                     for c, v in zip(probe.countries, probe.values[q])},
            extra={PROBE_KIND: probe.kind},
        ))
    return rows


def _columns(probe: ProbeScores, countries: Sequence[str]) -> list[int]:
    index = {c: i for i, c in enumerate(probe.countries)}
    missing = [c for c in countries if c not in index]
    if missing:
        raise ValueError(f"{probe.model}: no scores for {', '.join(missing[:3])}")
    return [index[c] for c in countries]


def probe_metrics(probe: ProbeScores, ranking_set: Sequence[str], reference: str,
                  stats: StatsSettings) -> list[MetricRow]:
    """Per country: the mean raw value over questions; over the ranking set: mean rank (CI over
    questions) and win rates against `reference` on positive and on negative questions."""
    cis = column_mean_cis(probe.values, n_boot=stats.n_boot, seed=stats.seed)
    rows = [MetricRow(probe.task, probe.model, c, raw_metric(probe.kind), e.value, e.ci_low, e.ci_high, e.n)
            for c, e in zip(probe.countries, cis)]
    positive = np.array(probe.positive)
    ranks = question_ranks(probe.scores[:, _columns(probe, ranking_set)], positive)
    cis = column_mean_cis(ranks, n_boot=stats.n_boot, seed=stats.seed)
    rows += [MetricRow(probe.task, probe.model, c, "mean_rank", e.value, e.ci_low, e.ci_high, e.n)
             for c, e in zip(ranking_set, cis)]
    if reference in ranking_set:
        ref = list(ranking_set).index(reference)
        others = [c for c in range(len(ranking_set)) if c != ref]
        for label, mask in (("win_rate_positive", positive), ("win_rate_negative", ~positive)):
            if not mask.any():
                continue
            ahead = (ranks[mask] < ranks[mask][:, [ref]]).astype(np.float64)[:, others]
            cis = column_mean_cis(ahead, n_boot=stats.n_boot, seed=stats.seed)
            rows += [MetricRow(probe.task, probe.model, ranking_set[c], label, e.value, e.ci_low, e.ci_high, e.n)
                     for c, e in zip(others, cis)]
    return rows


def gallup_comparisons(probe: ProbeScores, ranking_set: Sequence[str], orders: Mapping[str, Sequence[str]],
                       stats: StatsSettings) -> list[ComparisonRow]:
    """Spearman between the model's mean-rank order of each Gallup list's countries and that list;
    delta = rho, CI from resampling questions, scipy's p (one test per list: p_adjusted = p)."""
    scores = probe.scores[:, _columns(probe, ranking_set)]
    ranks = question_ranks(scores, probe.positive)
    rows = []
    for name, order in orders.items():
        index = {c: i for i, c in enumerate(ranking_set)}
        result = order_spearman(ranks, [index[c] for c in order], n_boot=stats.n_boot, seed=stats.seed)
        rows.append(ComparisonRow(probe.task, name, "spearman_mean_rank", GALLUP_MODEL, probe.model, result.rho,
                                  result.ci_low, result.ci_high, result.p_value, result.p_value,
                                  "Spearman (CI: question bootstrap)", result.n))
    return rows


def model_matrix(probes: Sequence[ProbeScores], ranking_set: Sequence[str], stats: StatsSettings) -> list[ComparisonRow]:
    """Spearman of the country mean ranks for every pair of models scored on the same questions."""
    rows = []
    for a, b in combinations(probes, 2):
        if a.question_ids != b.question_ids:
            continue
        ranks_a = question_ranks(a.scores[:, _columns(a, ranking_set)], a.positive)
        ranks_b = question_ranks(b.scores[:, _columns(b, ranking_set)], b.positive)
        result = pair_spearman(ranks_a, ranks_b, n_boot=stats.n_boot, seed=stats.seed)
        rows.append(ComparisonRow(a.task, "all", "spearman_mean_rank", a.model, b.model, result.rho, result.ci_low,
                                  result.ci_high, result.p_value, result.p_value, "Spearman (CI: question bootstrap)",
                                  result.n))
    return rows


def probe_from_records(records: Sequence[SampleRecord]) -> ProbeScores:
    """The scores matrix back from samples.jsonl-style records (one per question)."""
    first = records[0]
    kind = first.extra[PROBE_KIND]
    per_item = [group_metric_values(r.metrics, raw_metric(kind)) for r in records]
    countries = tuple(per_item[0])
    values = np.array([[item[c] for c in countries] for item in per_item])
    return ProbeScores(first.task, first.model, kind, countries, tuple(r.item_id for r in records),
                       tuple(r.group == "positive" for r in records), values)


def _ranking_set(task: str, probe: ProbeScores, settings: TaskSettings) -> list[str]:
    """AskReddit ranks the study's 181 countries (those of them the probe scored, when a run used a
    subset); where-from ranks every country it scored."""
    if task != "askreddit":
        return list(probe.countries)
    scored = set(probe.countries)
    return [c for c in load_country_set_181(settings.data_dir) if c in scored]


def preference_metrics(records: Mapping[str, Sequence[SampleRecord]], settings: TaskSettings) -> list[MetricRow]:
    rows = []
    for model_records in records.values():
        probe = probe_from_records(model_records)
        rows += probe_metrics(probe, _ranking_set(probe.task, probe, settings), REFERENCE_COUNTRY, settings.stats)
    return rows


def preference_comparisons(records: Mapping[str, Sequence[SampleRecord]], pairs: Sequence[tuple[str, str]],
                           settings: TaskSettings) -> list[ComparisonRow]:
    """Gallup correlations per model (askreddit) and the model x model matrix of all models read
    (the matrix is the study's view, so `pairs` does not narrow it)."""
    probes = [probe_from_records(r) for r in records.values()]
    if not probes:
        return []
    ranking = _ranking_set(probes[0].task, probes[0], settings)
    rows: list[ComparisonRow] = []
    if probes[0].task == "askreddit":
        for probe in probes:
            rows += gallup_comparisons(probe, ranking, GALLUP_ORDERS, settings.stats)
    rows += model_matrix(probes, ranking, settings.stats) if probes[0].task == "askreddit" else []
    return rows
