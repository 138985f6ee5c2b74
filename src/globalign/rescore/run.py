"""`globalign rescore`: read predictions, compute the task's metrics and comparisons, write a run folder."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import globalign.families as families_module
from globalign import __version__
from globalign.aggregate import RunSummary, package_versions
from globalign.errors import ConfigError, unknown_name
from globalign.rescore import global_opinions, md3, reward_probe, tydiqa
from globalign.rescore.predictions import Rescorer
from globalign.store.output import check_output_dir, write_run_folder
from globalign.study_models import default_families
from globalign.tasks.base import StatsSettings, TaskSettings, check_task_options
from globalign.tasks.declarations import DECLARATIONS, declaration

RESCORERS: dict[str, Rescorer] = {
    "md3": md3.RESCORER,
    "tydiqa": tydiqa.RESCORER,
    "where_from": reward_probe.WHERE_FROM,
    "askreddit": reward_probe.ASKREDDIT,
    "global_opinions": global_opinions.RESCORER,
}


def rescore(
    task: str,
    predictions: Path,
    output: Path,
    *,
    pairs: Sequence[tuple[str, str]] | None = None,
    stats: StatsSettings | None = None,
    data_dir: Path | None = None,
    options: Mapping[str, Any] | None = None,
) -> RunSummary:
    started = time.perf_counter()
    if task not in RESCORERS:
        raise unknown_name("task for rescore", task, RESCORERS)
    rescorer = RESCORERS[task]
    options = dict(options or {})
    check_task_options(f"{task} (rescore)", options, rescorer.options)
    check_output_dir(output)
    read = rescorer.read(predictions, data_dir, **options)
    models = list(read.records)
    if pairs:
        for pair in pairs:
            for name in pair:
                if name not in read.records:
                    raise unknown_name("model in --compare", name, models)
    families = default_families(models)
    chosen_comparisons = families_module.explicit(list(pairs), families) if pairs else families_module.comparisons(families)
    chosen = [c.pair for c in chosen_comparisons]
    settings = TaskSettings(stats=stats or StatsSettings(), data_dir=data_dir)
    metrics = rescorer.metrics(read.records, settings)
    comparisons = rescorer.comparisons(read.records, chosen, settings)
    seconds = {"total": time.perf_counter() - started}
    manifest: dict[str, Any] = {
        "globalign_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": sys.argv,
        "mode": "rescore",
        "task": task,
        "tasks": {task: {"declaration": declaration(task)}},
        "predictions": str(predictions),
        "data_dir": str(data_dir) if data_dir else None,
        "options": options,
        "models": [{"name": m, "files": read.files[m], "n_items": len(read.records[m])} for m in models],
        "families": [f.to_json() for f in families],
        "comparisons": [c.to_json() for c in chosen_comparisons],
        "compare": [list(p) for p in chosen],
        "stats": vars(settings.stats),
        "notes": read.notes,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "packages": package_versions(),
    }
    samples = (r for m in models for r in read.records[m])
    write_run_folder(output, manifest, metrics, comparisons, samples)
    return RunSummary(output, metrics, comparisons, [], read.notes, seconds,
                      {task: DECLARATIONS[task]} if task in DECLARATIONS else {})


def parse_pair(text: str) -> tuple[str, str]:
    """`BASE:ALIGNED` -> (BASE, ALIGNED). Model ids hold '/', never ':'."""
    parts = text.split(":")
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise ConfigError(f"--compare {text!r}: expected BASE:ALIGNED (two model names separated by ':')")
    return parts[0].strip(), parts[1].strip()
