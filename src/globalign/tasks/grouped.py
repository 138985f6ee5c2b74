"""Per-group aggregation shared by the tasks whose items fall into groups (dialects, languages): the
per-item table, mean rows with CIs, items paired across two models, McNemar rows, stratified samples."""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import TypeVar

from globalign.stats import holm, mcnemar, mean_ci
from globalign.tasks.base import ComparisonRow, MetricRow, SampleRecord, StatsSettings

T = TypeVar("T")
Table = dict[str, dict[str, float]]  # group -> {item id: value}


def per_item_table(records: Iterable[SampleRecord], metric: str) -> Table:
    """group -> {item id: value} for one per-item metric; records without it are left out."""
    table: Table = {}
    for record in records:
        value = record.metrics.get(metric)
        if value is not None:
            table.setdefault(record.group, {})[record.item_id] = float(value)
    return table


def ordered_groups(groups: Iterable[str], preferred: Sequence[str]) -> list[str]:
    """The groups present, in the task's preferred order, then any others sorted."""
    present = set(groups)
    return [g for g in (*preferred, *sorted(present - set(preferred))) if g in present]


def mean_rows(task: str, model: str, metric: str, table: Table, preferred: Sequence[str],
              stats: StatsSettings) -> list[MetricRow]:
    """`all` (every item) then each group: the mean with its 95% bootstrap CI."""
    groups = ordered_groups(table, preferred)
    everything = [v for g in groups for v in table[g].values()]
    rows = []
    for group, values in [("all", everything), *((g, list(table[g].values())) for g in groups)]:
        est = mean_ci(values, n_boot=stats.n_boot, seed=stats.seed)
        rows.append(MetricRow(task, model, group, metric, est.value, est.ci_low, est.ci_high, est.n))
    return rows


def paired_by_group(table_a: Table, table_b: Table, preferred: Sequence[str]) -> dict[str, tuple[list[float], list[float]]]:
    """group -> (A's values, B's values) on the items both models scored, in item-id order."""
    paired = {}
    for group in ordered_groups(set(table_a) & set(table_b), preferred):
        items = sorted(set(table_a[group]) & set(table_b[group]))
        if items:
            paired[group] = ([table_a[group][i] for i in items], [table_b[group][i] for i in items])
    return paired


def pooled(paired: Mapping[str, tuple[list[float], list[float]]]) -> tuple[list[float], list[float]]:
    return [v for a, _ in paired.values() for v in a], [v for _, b in paired.values() for v in b]


def mcnemar_rows(task: str, metric: str, model_a: str, model_b: str,
                 paired: Mapping[str, tuple[list[float], list[float]]], stats: StatsSettings) -> list[ComparisonRow]:
    """Exact McNemar for `all` and each group, Holm across those tests."""
    if not paired:
        return []
    tests = [(g, mcnemar(a, b, n_boot=stats.n_boot, seed=stats.seed))
             for g, (a, b) in [("all", pooled(paired)), *paired.items()]]
    return [ComparisonRow(task, group, metric, model_a, model_b, c.delta, c.ci_low, c.ci_high, c.p_value, p_adj,
                          c.test, c.n)
            for (group, c), p_adj in zip(tests, holm([c.p_value for _, c in tests]))]


def stratified_sample(items: Sequence[T], key: Callable[[T], Hashable], limit: int, seed: int) -> list[T]:
    """A seeded sample of `limit` items keeping each group's share (largest remainders), in input order."""
    by_group: dict[Hashable, list[int]] = {}
    for index, item in enumerate(items):
        by_group.setdefault(key(item), []).append(index)
    exact = {g: limit * len(ix) / len(items) for g, ix in by_group.items()}
    quota = {g: int(v) for g, v in exact.items()}
    for g in sorted(exact, key=lambda g: (quota[g] - exact[g], str(g)))[: limit - sum(quota.values())]:
        quota[g] += 1
    rng = random.Random(seed)
    picked = [i for g in sorted(by_group, key=str) for i in rng.sample(by_group[g], min(quota[g], len(by_group[g])))]
    return [items[i] for i in sorted(picked)]
