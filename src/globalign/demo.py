"""`globalign demo`: the packaged models on a small sample of every task, in a few minutes on 2 cores."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from globalign.config import parse_config
from globalign.models.packaged import PACKAGED_MODELS
from globalign.pipeline import run
from globalign.report.console import print_summary
from globalign.tasks.base import MetricRow

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
    summary = run(config, progress=progress,
                  extra_files=lambda metrics, work: drawn.extend(draw_demo_map(metrics, work, output)))
    print_summary(summary)
    for line in drawn:
        print(line)


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
