"""The report's first screen: per family and task, one plain sentence with the number, its 95% CI and
the Holm-adjusted p (or, for rank correlations, each stage's rho), and its short form for the grid of
families x axes (html.py), which names the family and its models once per row.

Which comparison a family's sentence is about: the whole family (base -> last stage) when it has a
stage in between, else its one step. Which metric: a change in a gap when the task measures gaps
(a task declaring `*_gap` metrics is about gaps), else the task's first declared headline metric
that was compared. Which group: the one with the smallest Holm-adjusted p (ties: the largest change);
the sentence says how many of the groups changed significantly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from globalign.families import STEP, WHOLE, Comparison
from globalign.records import ComparisonRow, TaskDeclaration
from globalign.report.charts import SIGNIFICANT
from globalign.report.inputs import ReportInputs, TaskData
from globalign.report.labels import gap_name, group_name, metric_name, number, p_text, scale

GAP_CHANGE = "_gap_change"
CORRELATION = "correlation"


@dataclass(frozen=True)
class Verdict:
    """One family x task finding: `text` is the whole sentence (the console prints it); `row` (the family
    and its base -> last models), `title` (the task's) and `cell` (the finding alone: number, 95% CI,
    p_holm) are its parts for the report's grid. `significant`: a change with p_holm < 0.05; `tested`:
    False for rank correlations, which are not a test of the change."""

    family: str
    axis: str
    task: str
    text: str
    significant: bool
    row: str = ""  # "Mistral-7B-v0.1 -> zephyr-7b-beta"; empty for a model in no compared pair
    title: str = ""
    cell: str = ""
    tested: bool = True


def short(model: str) -> str:
    return model.rsplit("/", 1)[-1]


def headline_pairs(inputs: ReportInputs) -> list[Comparison]:
    """One comparison per family (its whole, else its only step), then comparisons outside any family;
    runs whose manifest names no families give every compared pair."""
    out: list[Comparison] = []
    by_family: dict[str, list[Comparison]] = {}
    for comp in inputs.comparisons:
        by_family.setdefault(comp.family, []).append(comp)
    for family, comps in by_family.items():
        whole = [c for c in comps if c.kind == WHOLE]
        steps = [c for c in comps if c.kind == STEP]
        out += whole or (steps if len(steps) == 1 or not family else steps[-1:]) or comps
    if not out:
        seen = dict.fromkeys((r.model_a, r.model_b) for t in inputs.tasks.values() for r in t.comparisons
                             if t.declaration.units.get(r.metric) != CORRELATION)
        out = [Comparison("", a, b, "", "", "chosen") for a, b in seen]
    return out


def _metric_order(decl: TaskDeclaration, metrics: Sequence[str]) -> list[str]:
    gaps = [m for m in metrics if m.endswith(GAP_CHANGE)]

    def position(metric: str) -> int:
        stem = metric.removesuffix(GAP_CHANGE)
        hits = [i for i, h in enumerate(decl.headline_metrics) if h == metric or h.startswith(stem)]
        return hits[0] if hits else len(decl.headline_metrics)

    rest = [m for m in metrics if m not in gaps and decl.units.get(m) != CORRELATION]
    return sorted(gaps, key=position) + sorted(rest, key=position)


def _unit(decl: TaskDeclaration, metric: str) -> str:
    return decl.units.get(metric) or decl.units.get(metric.removesuffix(GAP_CHANGE) + "_gap") or "fraction"


def _delta_sentence(label: str, decl: TaskDeclaration, metric: str, rows: Sequence[ComparisonRow]) -> Verdict:
    unit = _unit(decl, metric)
    _, word = scale(unit)
    best = min(rows, key=lambda r: (r.p_adjusted if math.isfinite(r.p_adjusted) else 2.0, -abs(r.delta)))
    hits = [r for r in rows if r.p_adjusted < SIGNIFICANT]
    counted = [r for r in rows if r.group != "all"] or list(rows)  # "all" is not one of the groups
    ci = f"95% CI [{number(best.ci_low, unit)}, {number(best.ci_high, unit)}]"
    p_holm = f"p_holm = {p_text(best.p_adjusted)}"
    where = f"delta = {number(best.delta, unit, signed=True)}, {ci}; {p_holm}; n = {best.n}"
    change = f"{number(best.delta, unit, signed=True)}{' ' + word if word else ''}, {ci}, {p_holm}"
    size = f"{number(abs(best.delta), unit)}{' ' + word if word else ''}"
    gap = metric.endswith(GAP_CHANGE)
    what = (f"{gap_name(best.group)} ({metric_name(metric.removesuffix(GAP_CHANGE))} scores)" if gap
            else f"{metric_name(metric)} {'overall' if best.group == 'all' else 'for ' + group_name(best.group)}")
    kind = decl.group_kind
    groups = kind[:-1] + "ies" if kind.endswith("y") else kind if kind.endswith("s") else kind + "s"
    if hits:
        if gap:
            verb = "widened" if best.delta > 0 else "narrowed"
        else:
            verb = "raised" if best.delta > 0 else "lowered"
        n_hits = len([r for r in hits if r in counted])
        of = f"{n_hits} of {len(counted)} {'gaps' if gap else groups}" if len(counted) > 1 else ""
        text = f"{label} {verb} {what} by {size} ({where}){'; ' + of + ' changed significantly' if of else ''}."
        cell = f"{verb} {what}: {change}{'; ' + of + ' significant' if of else ''}."
    else:
        tested = (f"any of the {len(counted)} {metric_name(metric.removesuffix(GAP_CHANGE))}-score gaps" if gap
                  else f"{metric_name(metric)} on any of {len(counted)} {groups}")
        text = f"{label}: no significant change in {tested} (largest: {what}, {where})."
        cell = f"no significant change in {tested} (largest: {gap_name(best.group) if gap else what}, {change})."
    return Verdict("", decl.axis, decl.task, text, bool(hits), title=decl.title, cell=cell)


def _rho(row: ComparisonRow) -> str:
    return f"rho = {row.delta:.2f} (95% CI [{row.ci_low:.2f}, {row.ci_high:.2f}])"


def _rho_short(row: ComparisonRow) -> str:
    return f"{row.delta:.2f} [{row.ci_low:.2f}, {row.ci_high:.2f}]"


def _correlation_sentence(label: str, comp: Comparison, task: TaskData) -> Verdict | None:
    rows = [r for r in task.comparisons if task.declaration.units.get(r.metric) == CORRELATION]
    lists = [r for r in rows if r.group != "all" and r.model_b in comp.pair]
    pair = [r for r in rows if r.group == "all" and {r.model_a, r.model_b} == set(comp.pair)]
    if not lists and not pair:
        return None
    parts, cells = [], []
    reference = lists[-1].group if lists else ""
    chosen = {r.model_b: r for r in lists if r.group == reference}
    if chosen:
        models = [m for m in comp.pair if m in chosen]
        parts.append(f"country order vs {group_name(reference)}: "
                     + ", ".join(f"{short(m)} {_rho(chosen[m])}" for m in models))
        each = [_rho_short(chosen[m]) for m in models]
        cells.append(f"rho vs {group_name(reference)}: " + (" → ".join(each) if len(models) == 2 else
                                                           f"{short(models[0])} {each[0]}"))
    if pair:
        parts.append(f"{short(comp.model_a)} and {short(comp.model_b)} order all {pair[0].n} countries alike with "
                     f"{_rho(pair[0])}")
        cells.append(f"with each other {_rho_short(pair[0])}")
    decl = task.declaration
    return Verdict("", decl.axis, decl.task, f"{label} ({decl.title}): " + "; ".join(parts)
                   + " (rank correlations per model, not a test of the change).", False, title=decl.title,
                   cell="; ".join(cells) + " (rank correlations, not a test of the change).", tested=False)


def family_verdicts(inputs: ReportInputs) -> list[Verdict]:
    """Every family x task sentence, in the order family, then axis as the tasks come."""
    out = []
    for comp in headline_pairs(inputs):
        row = f"{short(comp.model_a)} -> {short(comp.model_b)}"
        label = f"{comp.family + ': ' if comp.family else ''}{row}"
        for task in inputs.tasks.values():
            decl = task.declaration
            rows = [r for r in task.comparisons if (r.model_a, r.model_b) == comp.pair]
            metrics = _metric_order(decl, list(dict.fromkeys(r.metric for r in rows)))
            if metrics:
                found = _delta_sentence(label, decl, metrics[0], [r for r in rows if r.metric == metrics[0]])
            else:
                found = _correlation_sentence(label, comp, task)
            if found is not None:
                out.append(replace(found, family=comp.family, row=row))
    out += _unpaired(inputs)
    return out


def _unpaired(inputs: ReportInputs) -> list[Verdict]:
    """Models in no compared pair (a reward model alone) that carry a correlation with a reference list."""
    paired = {m for c in [*inputs.comparisons, *headline_pairs(inputs)] for m in c.pair}
    out = []
    for task in inputs.tasks.values():
        decl = task.declaration
        rows = [r for r in task.comparisons if decl.units.get(r.metric) == CORRELATION
                and r.group != "all" and r.model_b not in paired]
        for model in dict.fromkeys(r.model_b for r in rows):
            mine = [r for r in rows if r.model_b == model]
            text = (f"{short(model)} ({decl.title}): country order vs "
                    + "; ".join(f"{group_name(r.group)} {_rho(r)}, p = {p_text(r.p_value)}" for r in mine) + ".")
            cell = (f"{short(model)}: rho vs "
                    + "; ".join(f"{group_name(r.group)} {_rho_short(r)}, p = {p_text(r.p_value)}" for r in mine) + ".")
            out.append(Verdict("", decl.axis, decl.task, text, False, title=decl.title, cell=cell, tested=False))
    return out


def nothing_significant(verdicts: Sequence[Verdict]) -> bool:
    return bool(verdicts) and not any(v.significant for v in verdicts)
