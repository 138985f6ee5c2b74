"""The short tables printed at the end of a run."""

from __future__ import annotations

import math
from collections.abc import Sequence

from globalign.tasks.base import ComparisonRow, MetricRow
from globalign.tasks.opinion_metrics import study_countries

# Groups shown in the terminal (everything is in metrics.csv): the whole task and the study's countries.
HEADLINE_GROUPS = ("all", *study_countries())


def _pct(value: float) -> str:
    return "   n/a" if value is None or math.isnan(value) else f"{100 * value:6.1f}"


def format_metrics(rows: Sequence[MetricRow]) -> list[str]:
    lines = []
    keys = sorted({(r.task, r.metric) for r in rows})
    for task, metric in keys:
        chosen = [r for r in rows if r.task == task and r.metric == metric and r.group in HEADLINE_GROUPS]
        if not chosen:
            continue
        models = list(dict.fromkeys(r.model for r in chosen))
        lines.append(f"{task} / {metric} (x100, 95% CI)")
        lines.append(f"  {'group':16}" + "".join(f"{m[:30]:>34}" for m in models))
        for group in [g for g in HEADLINE_GROUPS if any(r.group == g for r in chosen)]:
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


def format_comparisons(rows: Sequence[ComparisonRow]) -> list[str]:
    lines = []
    for task, metric, a, b in dict.fromkeys((r.task, r.metric, r.model_a, r.model_b) for r in rows):
        chosen = [r for r in rows if (r.task, r.metric, r.model_a, r.model_b) == (task, metric, a, b)
                  and r.group in HEADLINE_GROUPS]
        if not chosen:
            continue
        lines.append(f"{task} / {metric}: {b} - {a} (x100, paired, Holm-adjusted p)")
        for r in sorted(chosen, key=lambda r: HEADLINE_GROUPS.index(r.group)):
            lines.append(f"  {r.group:16} {_pct(r.delta)} [{_pct(r.ci_low).strip()}, {_pct(r.ci_high).strip()}]"
                         f"  p={r.p_value:.3g}  p_holm={r.p_adjusted:.3g}  n={r.n}")
    return lines


def print_summary(summary) -> None:
    print(f"\nWrote {summary.output}/ (manifest.json, metrics.csv, comparisons.csv, samples.jsonl)")
    for line in format_metrics(summary.metrics) + [""] + format_comparisons(summary.comparisons):
        print(line)
    for note in summary.notes:
        print(f"Note: {note}")
    print(f"Total time: {summary.seconds.get('total', float('nan')):.1f} s")
