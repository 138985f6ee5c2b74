"""`globalign demo`: the packaged models on a small sample of every task, in a few minutes on 2 cores."""

from __future__ import annotations

from pathlib import Path

from globalign.config import parse_config
from globalign.models.packaged import PACKAGED_MODELS
from globalign.pipeline import run
from globalign.report.console import print_summary

# Base first: every other model is compared against it.
DEMO_MODELS = ("gemma-3-270m", "smollm2-135m-instruct")
# Sample sizes chosen so the whole demo stays under 5 minutes on 2 cores (measured: docs/usage.md).
# tydiqa: 2 questions per language, on short passages (a Telugu passage is ~2.5 byte-level tokens per
# character for SmolLM2, so long ones cost seconds each on CPU).
DEMO_TASKS = {
    "global_opinions": {"limit": 80},
    "md3": {"limit": 36},
    "tydiqa": {"limit": 18, "max_context_chars": 300},
}
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
    print_summary(run(config, progress=progress))
