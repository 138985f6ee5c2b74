"""The short tables printed at the end of a run."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from globalign.records import ComparisonRow, MetricRow, TaskDeclaration
from globalign.text_safety import one_line


def _shown(declarations: Mapping[str, TaskDeclaration], task: str, group: str) -> bool:
    """Tasks with many groups (countries) show the groups they declare as headline (everything is in
    metrics.csv); a task that declares none shows all of its groups (the dialect task has a handful)."""
    chosen = declarations[task].headline_groups if task in declarations else ()
    return not chosen or group in chosen


def _group_order(declarations: Mapping[str, TaskDeclaration], task: str, groups: Sequence[str]) -> list[str]:
    chosen = declarations[task].headline_groups if task in declarations else ()
    if chosen:
        return [g for g in chosen if g in groups]
    return list(dict.fromkeys(groups))


def _pct(value: float) -> str:
    return "   n/a" if value is None or math.isnan(value) else f"{100 * value:6.1f}"


def format_metrics(rows: Sequence[MetricRow], declarations: Mapping[str, TaskDeclaration]) -> list[str]:
    lines = []
    keys = list(dict.fromkeys((r.task, r.metric) for r in rows))
    for task, metric in keys:
        chosen = [r for r in rows if r.task == task and r.metric == metric and _shown(declarations, task, r.group)]
        if not chosen:
            continue
        models = list(dict.fromkeys(r.model for r in chosen))
        lines.append(f"{task} / {metric} (x100, 95% CI)")
        groups = _group_order(declarations, task, [r.group for r in chosen])
        if len(models) > 3:
            lines += _model_rows(chosen, models, groups, with_ci=len(groups) <= 5)
            continue
        lines.append(f"  {'group':16}" + "".join(f"{m[:30]:>34}" for m in models))
        for group in groups:
            cells = []
            for model in models:
                match = [r for r in chosen if r.group == group and r.model == model]
                if match:
                    r = match[0]
                    cells.append(f"{_pct(r.value)} [{_pct(r.ci_low).strip()}, {_pct(r.ci_high).strip()}] n={r.n}")
                else:
                    cells.append("")
            lines.append(f"  {group:16}" + "".join(f"{c:>34}" for c in cells))
    return lines


def _model_rows(chosen: Sequence[MetricRow], models: list[str], groups: list[str], *, with_ci: bool) -> list[str]:
    """Many models (re-scoring a whole study): one line per model; CIs only when few groups fit."""
    width = max(len(m) for m in models)
    cell = 24 if with_ci else 8
    lines = [f"  {'model':{width}}" + "".join(f"{g:>{cell}}" for g in groups)]
    for model in models:
        cells = []
        for group in groups:
            match = [r for r in chosen if r.group == group and r.model == model]
            r = match[0] if match else None
            if r is None:
                cells.append("")
            elif with_ci:
                cells.append(f"{_pct(r.value)} [{_pct(r.ci_low).strip()}, {_pct(r.ci_high).strip()}]")
            else:
                cells.append(_pct(r.value))
        lines.append(f"  {model:{width}}" + "".join(f"{c:>{cell}}" for c in cells))
    if not with_ci:
        lines.append("  (95% CIs and n: metrics.csv)")
    return lines


def format_comparisons(rows: Sequence[ComparisonRow], declarations: Mapping[str, TaskDeclaration]) -> list[str]:
    lines = []
    for task, metric, a, b in dict.fromkeys((r.task, r.metric, r.model_a, r.model_b) for r in rows):
        chosen = [r for r in rows if (r.task, r.metric, r.model_a, r.model_b) == (task, metric, a, b)
                  and _shown(declarations, task, r.group)]
        if not chosen:
            continue
        what = ("Spearman rho, CI from resampling questions" if metric.startswith("spearman")
                else "paired, Holm-adjusted p")
        lines.append(f"{task} / {metric}: {b} vs {a} (x100, {what})" if metric.startswith("spearman")
                     else f"{task} / {metric}: {b} - {a} (x100, {what})")
        order = _group_order(declarations, task, [r.group for r in chosen])
        for r in sorted(chosen, key=lambda r: order.index(r.group)):
            lines.append(f"  {r.group:16} {_pct(r.delta)} [{_pct(r.ci_low).strip()}, {_pct(r.ci_high).strip()}]"
                         f"  p={r.p_value:.3g}  p_holm={r.p_adjusted:.3g}  n={r.n}")
    return lines


def print_summary(summary) -> None:
    # Model, group and country names may come from prediction files: never let them drive the terminal.
    print()
    print(one_line(f"Wrote {summary.output}/ (manifest.json, metrics.csv, comparisons.csv, samples.jsonl)"))
    declarations = summary.declarations
    lines = format_metrics(summary.metrics, declarations) + [""]
    for line in lines + format_comparisons(summary.comparisons, declarations):
        print(one_line(line))
    for note in summary.notes:
        print(one_line(f"Note: {note}"))
    print(f"Total time: {summary.seconds.get('total', float('nan')):.1f} s")
