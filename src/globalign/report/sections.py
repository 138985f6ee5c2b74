"""The report's evidence sections, one per axis of the study, chosen from what each task declares (its
axis, group kind, headline metrics, units) and what its rows hold, never from task names:

- bars of each declared fraction metric by group and model, with 95% CI error bars;
- forest plots of paired deltas (each compared pair a panel), gap changes apart;
- world maps of a directional per-country metric (country tasks);
- rank correlations: scatter against each reference list, and the model x model heatmap.

Every string from data goes through `esc` (html.escape) or matplotlib's SVG writer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

import numpy as np

from globalign.families import Comparison
from globalign.records import MetricRow
from globalign.report import charts
from globalign.report.charts import SIGNIFICANT, Interval
from globalign.report.inputs import AuditData, ReportInputs, TaskData
from globalign.report.labels import group_name, metric_name, scale
from globalign.report.verdict import CORRELATION, GAP_CHANGE, short

MAX_BAR_GROUPS = 20
MAX_MAPS_PER_TASK = 8
MAP_RESOLUTION = 0.3  # degrees: ~0.35 MB per map instead of ~0.7 MB, still under a pixel at report width
MAP_MIN_COUNTRIES = 20


def esc(text: object) -> str:
    return escape(str(text), quote=True)


def figure(svg: str, caption: str, kind: str = "chart") -> str:
    return f'<figure class="{kind}">{svg}<figcaption>{esc(caption)}</figcaption></figure>'


def _groups(task: TaskData, rows: Sequence[object]) -> list[str]:
    present = list(dict.fromkeys(r.group for r in rows))
    chosen = task.declaration.headline_groups
    if chosen:
        return [g for g in chosen if g in present]
    return present if len(present) <= MAX_BAR_GROUPS else []


def _ordered_models(inputs: ReportInputs, models: Sequence[str]) -> list[str]:
    order = inputs.models
    return sorted(set(models), key=lambda m: order.index(m) if m in order else len(order))


def metric_bars(inputs: ReportInputs, task: TaskData) -> list[str]:
    decl = task.declaration
    out = []
    for metric in decl.headline_metrics:
        if decl.units.get(metric) != "fraction" or metric.endswith("_gap"):
            continue
        rows = [r for r in task.metrics if r.metric == metric]
        groups = _groups(task, rows)
        if not rows or not groups:
            continue
        series = {m: [Interval(group_name(r.group), r.value, r.ci_low, r.ci_high) for r in rows if r.model == m]
                  for m in _ordered_models(inputs, [r.model for r in rows])}
        svg = charts.grouped_bars(series, [group_name(g) for g in groups],
                                  title=f"{decl.title}: {metric_name(metric)} by {decl.group_kind} and model",
                                  ylabel=f"{metric_name(metric)} (x100)", scale=100.0)
        out.append(figure(svg, f"{metric_name(metric)} per {decl.group_kind} (bars) with 95% bootstrap CIs; "
                               "models in family order, base first."))
    return out


def _pair_label(comp: Comparison) -> str:
    stages = f" ({comp.stage_a} -> {comp.stage_b})" if comp.stage_a else ""
    return f"{short(comp.model_a)} -> {short(comp.model_b)}{stages}"


def _pairs(inputs: ReportInputs, task: TaskData) -> list[Comparison]:
    present = dict.fromkeys((r.model_a, r.model_b) for r in task.comparisons)
    known = [c for c in inputs.comparisons if c.pair in present]
    named = {c.pair for c in known}
    return known + [Comparison("", a, b, "", "", "chosen") for a, b in present if (a, b) not in named
                    and task.declaration.units.get(next(r.metric for r in task.comparisons
                                                        if (r.model_a, r.model_b) == (a, b))) != CORRELATION]


def delta_forests(inputs: ReportInputs, task: TaskData) -> list[str]:
    decl = task.declaration
    compared = list(dict.fromkeys(r.metric for r in task.comparisons if decl.units.get(r.metric) != CORRELATION))
    gaps = [m for m in compared if m.endswith(GAP_CHANGE)]
    plain = [m for m in decl.headline_metrics if m in compared][:1] or [m for m in compared if m not in gaps][:1]
    out = []
    for metric in [*gaps[:1], *plain]:
        rows = [r for r in task.comparisons if r.metric == metric]
        groups = list(dict.fromkeys(r.group for r in rows))
        if decl.headline_groups and not metric.endswith(GAP_CHANGE):
            groups = [g for g in decl.headline_groups if g in groups] or groups
        groups = groups[:MAX_BAR_GROUPS]
        panels = {}
        for comp in _pairs(inputs, task):
            mine = {r.group: r for r in rows if (r.model_a, r.model_b) == comp.pair}
            if mine:
                panels[_pair_label(comp)] = [Interval(group_name(g), mine[g].delta, mine[g].ci_low, mine[g].ci_high,
                                                      mine[g].p_adjusted < SIGNIFICANT) for g in groups if g in mine]
        if not panels:
            continue
        unit = decl.units.get(metric) or decl.units.get(metric.removesuffix(GAP_CHANGE) + "_gap") or "fraction"
        factor, word = scale(unit)
        what = "change in the gap" if metric.endswith(GAP_CHANGE) else "paired difference"
        svg = charts.forest(panels, title=f"{decl.title}: {metric_name(metric)}, later stage minus earlier",
                            xlabel=f"{what} ({word or unit})", scale=factor)
        out.append(figure(svg, f"{metric_name(metric)}: model_b - model_a on the same items per {decl.group_kind}, "
                               "95% CI; filled red = significant after Holm (p_holm < 0.05), open = not."))
    return out


def _map_models(inputs: ReportInputs, models: Sequence[str]) -> list[str]:
    """The last stage of each family, then models in no family (a reward model), capped."""
    last = [f.models[-1] for f in inputs.families]
    staged = {m for f in inputs.families for m in f.models}
    chosen = [m for m in dict.fromkeys([*last, *(m for m in models if m not in staged)]) if m in models]
    return (chosen or list(models))[:MAX_MAPS_PER_TASK]


def country_maps(inputs: ReportInputs, task: TaskData) -> list[str]:
    decl = task.declaration
    if decl.group_kind != "country":
        return []
    metric = next((m for m in decl.headline_metrics if m in decl.higher_is_better
                   and len({r.group for r in task.metrics if r.metric == m}) >= MAP_MIN_COUNTRIES), None)
    if metric is None:
        return []
    rows = [r for r in task.metrics if r.metric == metric]
    out = []
    for model in _map_models(inputs, _ordered_models(inputs, [r.model for r in rows])):
        values = {r.group: r.value for r in rows if r.model == model and math.isfinite(r.value)}
        svg, note = draw_map(values, title=f"{short(model)}: {metric_name(metric)} ({decl.title})",
                             label=metric_name(metric) + (" (1 = most favoured)" if decl.units.get(metric) == "rank"
                                                          else ""),
                             reverse=not decl.higher_is_better[metric])
        if svg:
            out.append(figure(svg, f"{model}: {metric_name(metric)} for {len(values)} country labels{note}", "map"))
    return out


def draw_map(values: dict[str, float], *, title: str, label: str, reverse: bool = False) -> tuple[str, str]:
    """(svg, note on unmatched names); no svg when no name matched."""
    import matplotlib

    from globalign.report.maps import choropleth

    if not values:
        return "", ""
    try:
        with matplotlib.rc_context({"text.parse_math": False}):
            result = choropleth(values, title=title, label=label, output_png=None, resolution=MAP_RESOLUTION,
                                cmap="viridis_r" if reverse else "viridis")
    except ValueError:
        return "", ""
    missing = result.unmatched
    note = f"; {len(missing)} names without a map shape: {', '.join(missing[:8])}" if missing else ""
    return result.svg_text, note


def _rank_of(rows: Sequence[MetricRow], model: str, countries: Sequence[str]) -> list[float] | None:
    values = {r.group: r.value for r in rows if r.model == model}
    if not all(c in values for c in countries):
        return None
    order = np.argsort(np.argsort([values[c] for c in countries], kind="stable"), kind="stable")
    return [float(i + 1) for i in order]


def correlations(inputs: ReportInputs, task: TaskData) -> list[str]:
    decl = task.declaration
    rows = [r for r in task.comparisons if decl.units.get(r.metric) == CORRELATION]
    if not rows:
        return []
    out = []
    rank_metric = next((m for m in decl.headline_metrics if decl.units.get(m) == "rank"), None)
    ranks = [r for r in task.metrics if r.metric == rank_metric]
    from globalign.data.reward_probe import GALLUP_ORDERS  # reference lists: data, not a protocol

    for group in dict.fromkeys(r.group for r in rows if r.group != "all"):
        order = GALLUP_ORDERS.get(group)
        if order is None or not ranks:
            continue
        panels = {}
        for r in (r for r in rows if r.group == group):
            model_ranks = _rank_of(ranks, r.model_b, order)
            if model_ranks is not None:
                panels[r.model_b] = (order, model_ranks, r.delta)
        if panels:
            svg = charts.rank_scatter(panels, title=f"{decl.title}: country order vs {group_name(group)}",
                                      reference=group_name(group))
            out.append(figure(svg, f"Each model's rank of the {len(order)} countries of {group_name(group)} (by "
                                   f"{metric_name(rank_metric)}) against the list's order; rho = Spearman."))
    pairwise = [r for r in rows if r.group == "all"]
    if pairwise:
        models = _ordered_models(inputs, [m for r in pairwise for m in (r.model_a, r.model_b)])
        index = {m: i for i, m in enumerate(models)}
        matrix = np.full((len(models), len(models)), np.nan)
        np.fill_diagonal(matrix, 1.0)
        for r in pairwise:
            matrix[index[r.model_a], index[r.model_b]] = matrix[index[r.model_b], index[r.model_a]] = r.delta
        svg = charts.heatmap(matrix, models, title=f"{decl.title}: model x model Spearman of country mean ranks",
                             colourbar="Spearman rho")
        out.append(figure(svg, "Spearman correlation between two models' country orders (mean rank over "
                               "questions); blank = not compared."))
    return out


def task_section(inputs: ReportInputs, task: TaskData) -> str:
    decl = task.declaration
    parts = [*metric_bars(inputs, task), *delta_forests(inputs, task), *country_maps(inputs, task),
             *correlations(inputs, task)]
    folders = ", ".join(str(f) for f in task.folders)
    body = "".join(parts) or "<p>No rows to draw for this task.</p>"
    return (f'<section class="task" id="task-{esc(decl.task)}"><h3>{esc(decl.title)}</h3>'
            f'<p class="src">task <code>{esc(decl.task)}</code>, {len(task.models)} models, from {esc(folders)}</p>'
            f"{body}</section>")


def audit_section(audit: AuditData) -> str:
    rows = [r for r in audit.languages if r.get("role") == "all"]
    parts = []

    def share(r: dict[str, str]) -> float:
        try:
            return float(r["share"])
        except (KeyError, ValueError):
            return math.nan

    kept = [r for r in rows if not r["rule"].startswith("dropped_")]
    top = sorted({r["language"] for r in kept if r["rule"] == "agree"},
                 key=lambda lang: -sum(int(float(r["count"] or 0)) for r in kept if r["language"] == lang))[:12]
    if top:
        series = {rule: {r["language"]: share(r) for r in kept if r["rule"] == rule}
                  for rule in dict.fromkeys(r["rule"] for r in kept)}
        parts.append(figure(charts.hbars(series, top, title="Language shares under each rule (all roles)",
                                         xlabel="share of messages (%)"),
                            "agree = both identifiers name the language (the study's rule); each identifier alone."))
    dropped = [r for r in rows if r["rule"].startswith("dropped_")]
    if dropped:
        langs = sorted({r["language"] for r in dropped}, key=lambda lang: -max(
            int(float(r["count"] or 0)) for r in dropped if r["language"] == lang))[:12]
        series = {r_rule: {r["language"]: share(r) for r in dropped if r["rule"] == r_rule}
                  for r_rule in dict.fromkeys(r["rule"] for r in dropped)}
        parts.append(figure(charts.hbars(series, langs, title="What the agreement rule drops",
                                         xlabel="share of the identifier's messages dropped (%)"),
                            "Part of each language (as one identifier labels it) that the agreement rule loses."))
    countries = {r["country"]: float(r["share"]) for r in audit.countries
                 if r.get("role", "all") == "all" and r.get("share") not in (None, "")}
    svg, note = draw_map(countries, title="Country mentions", label="share of country mentions")
    if svg:
        parts.append(figure(svg, f"Share of country mentions per country{note}", "map"))
    source = audit.manifest.get("source") or audit.path
    return (f'<section class="task"><h3>Data audit: {esc(source)}</h3><p class="src">{esc(audit.path)}</p>'
            + ("".join(parts) or "<p>No language rows.</p>") + "</section>")
