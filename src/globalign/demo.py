"""`globalign demo`: the packaged models on a small sample of every task, in a few minutes on 2 cores."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from globalign.config import parse_config
from globalign.models.packaged import PACKAGED_MODELS
from globalign.pipeline import run
from globalign.records import read_rows
from globalign.tasks.base import MetricRow
from globalign.text_safety import one_line

# Base first: every other model is compared against it.
DEMO_MODELS = ("gemma-3-270m", "smollm2-135m-instruct")
# Sample sizes chosen so the whole demo stays under 5 minutes on 2 cores (measured: docs/usage.md).
# tydiqa: 2 questions per language, on short passages (a Telugu passage is ~2.5 byte-level tokens per
# character for SmolLM2, so long ones cost seconds each on CPU).
DEMO_TASKS = {
    "global_opinions": {"limit": 80},
    "md3": {"limit": 36},
    "tydiqa": {"limit": 18, "max_context_chars": 300},
    # country preferences: the LM probe on 4 AskReddit questions x 254 countries (shared-prompt path),
    # and the model as a judge-style reward model on "Where are you from?" for the 24 countries of the
    # two Gallup lists and the USA
    "askreddit": {"limit": 4},
    "where_from": {"scorer": "judge", "countries": "gallup"},
}
MAP_TASK, MAP_METRIC = "askreddit", "mean_rank"
DEMO_STATS = {"n_boot": 2000, "n_perm": 2000}
REPORT = "report.html"
MAX_VERDICT_LINES = 12  # the headline stays under ~25 lines


def run_demo(output: Path, *, data_dir: str | None = None, progress: bool = True) -> None:
    families = ", ".join(f"{m} = {PACKAGED_MODELS[m].family}" for m in DEMO_MODELS)
    notice = (
        f"the demo models are of different families ({families}): differences between them mix family, size, "
        "data and alignment; compare a base and its own aligned checkpoint to measure alignment"
    )
    print(f"globalign demo: {', '.join(DEMO_MODELS)} on {', '.join(DEMO_TASKS)} (small samples)")
    print(f"Note: {notice}")
    # One run with every task, so the run folder holds all of them (each task has its own sample size).
    config = parse_config(
        {
            "models": list(DEMO_MODELS),
            "tasks": [{"name": task, **settings} for task, settings in DEMO_TASKS.items()],
            "output": str(output),
            "data_dir": data_dir,
            "stats": DEMO_STATS,
        },
        "demo",
    )
    drawn: list[str] = []
    verdicts: list[str] = []

    def add_files(metrics: Sequence[MetricRow], work: Path, manifest: dict[str, Any]) -> None:
        drawn.extend(draw_demo_map(metrics, work, output))
        verdicts.extend(write_demo_report(work, output, manifest))

    summary = run(config, progress=progress, extra_files=add_files)
    print_headline(summary, verdicts, drawn)


def write_demo_report(work: Path, output: Path, manifest: dict[str, Any]) -> list[str]:
    """report.html inside the run folder while it is written (so the manifest lists it and a rerun may
    replace it); returns the verdict sentences."""
    from globalign.report.html import build_html, write_report
    from globalign.report.inputs import combine_runs

    page, verdicts = build_html(combine_runs([read_rows(work, manifest, name=output)]))
    write_report(page, work / REPORT)
    return [v.text for v in verdicts]


def print_headline(summary, verdicts: Sequence[str], drawn: Sequence[str]) -> None:
    """The short end of the demo: the verdicts and where the evidence is (tables: the CSVs and the report)."""
    print()
    print(one_line(f"Wrote {summary.output}/ (manifest.json, metrics.csv, comparisons.csv, samples.jsonl, {REPORT})"))
    for note in summary.notes:
        if "different model families" in note:
            print(one_line(f"Note: {note}"))
    print("Verdict (demo sample; the numbers, CIs and every group are in the report and the CSVs):")
    for line in verdicts[:MAX_VERDICT_LINES]:
        print(one_line(f"- {line}"))
    for line in drawn:
        print(one_line(line))
    print(one_line(f"Report: {summary.output / REPORT} (open it in a browser; it needs no network)"))
    print(f"Total time: {summary.seconds.get('total', float('nan')):.1f} s")


def draw_demo_map(metrics: Sequence[MetricRow], folder: Path, output: Path) -> list[str]:
    """A world map of the aligned model's AskReddit mean rank (1 = most favoured), drawn into the run
    folder while it is written (`folder`, so the manifest lists it; `output` once in place); returns the
    line to print."""
    from globalign.report.maps import choropleth

    model = DEMO_MODELS[-1]
    values = {r.group: r.value for r in metrics
              if r.task == MAP_TASK and r.metric == MAP_METRIC and r.model == model}
    if not values:
        return []
    name = f"map_{MAP_TASK}_{MAP_METRIC}_{model}.png"
    png = folder / name
    result = choropleth(values, title=f"{model}: mean rank of each country on {len(values)} countries "
                                      "(AskReddit LM probe, demo sample)",
                        label="mean rank (1 = most favoured)", output_png=png, cmap="viridis_r")
    unmatched = f"; names without a map shape: {', '.join(result.unmatched)}" if result.unmatched else ""
    return [f"Map: {output / name} ({len(result.matched)} countries drawn{unmatched})"]
