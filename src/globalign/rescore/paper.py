"""`globalign import-paper`: the study's raw outputs, every axis, as one run folder (docs/usage.md).

Each output folder of the study goes through its task's `rescore` reader, metrics and comparisons;
the comparison pairs are the study's family steps. A folder that is absent is left out and named in
the manifest and the summary; none of them present is an error.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from globalign import __version__
from globalign.aggregate import RunSummary, package_versions
from globalign.errors import DataError
from globalign.families import comparisons as comparisons_of
from globalign.families import restricted
from globalign.rescore.predictions import Predictions
from globalign.rescore.run import RESCORERS
from globalign.store.output import check_output_dir, write_run_folder
from globalign.study_models import study_families
from globalign.tasks.base import ComparisonRow, MetricRow, SampleRecord, StatsSettings, TaskSettings
from globalign.tasks.declarations import DECLARATIONS, declaration


@dataclass(frozen=True)
class PaperInput:
    """One output folder of the study and the task that re-scores it."""

    task: str
    folder: str  # under outputs/
    what: str


PAPER_INPUTS: tuple[PaperInput, ...] = (
    PaperInput("md3", "md3-game", "MD3 word game (13 LMs)"),
    PaperInput("tydiqa", "tydiqa-goldp", "TyDi QA GoldP generations (13 LMs)"),
    PaperInput("global_opinions", "globalopinionsqa", "GlobalOpinionsQA option probabilities (13 LMs)"),
    PaperInput("askreddit", "ask-reddit-perplexity-testing", "AskReddit LM probe: country NLLs (13 LMs)"),
    PaperInput("askreddit", "ask-reddit-reward-testing", "AskReddit reward probe (Starling-RM-7B-alpha)"),
    PaperInput("where_from", "reward-testing", "'Where are you from?' reward probe (Starling-RM-7B-alpha)"),
)


def outputs_folder(path: Path) -> Path:
    """`paper_outputs/` or its `outputs/` subfolder -> the folder holding the per-axis subfolders."""
    if not path.is_dir():
        raise DataError(f"import-paper {path}: no such folder")
    if (path / "outputs").is_dir():
        return path / "outputs"
    return path


def _merge(parts: Sequence[Predictions], task: str) -> Predictions:
    records: dict[str, list[SampleRecord]] = {}
    files: dict[str, list[str]] = {}
    notes: list[str] = []
    for part in parts:
        for model, model_records in part.records.items():
            if model in records:
                raise DataError(f"import-paper {task}: model '{model}' appears in two folders "
                                f"({files[model][0]} and {part.files[model][0]})")
            records[model], files[model] = model_records, part.files[model]
        notes += part.notes
    return Predictions(records, files, notes)


def import_paper(source: Path, output: Path, *, data_dir: Path | None = None, study_parser: bool = False,
                 stats: StatsSettings | None = None, progress: bool = True) -> tuple[RunSummary, dict[str, Any]]:
    """Re-score every axis found under `source` into one run folder; returns the summary and the manifest."""
    started = time.perf_counter()
    root = outputs_folder(source)
    present = [i for i in PAPER_INPUTS if (root / i.folder).is_dir()]
    missing = [i for i in PAPER_INPUTS if i not in present]
    if not present:
        raise DataError(f"import-paper {source}: none of the study's output folders is there (expected under "
                        f"{root}: {', '.join(i.folder for i in PAPER_INPUTS)})")
    check_output_dir(output)
    settings = TaskSettings(stats=stats or StatsSettings(), data_dir=data_dir)
    metrics: list[MetricRow] = []
    comparisons: list[ComparisonRow] = []
    samples: list[SampleRecord] = []
    tasks: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    seconds: dict[str, float] = {}
    for task in dict.fromkeys(i.task for i in present):
        task_started = time.perf_counter()
        inputs = [i for i in present if i.task == task]
        rescorer = RESCORERS[task]
        options: Mapping[str, Any] = {"study_parser": True} if study_parser and "study_parser" in rescorer.options else {}
        if progress:
            print(f"import-paper: {task} from {', '.join(i.folder for i in inputs)} ...", file=sys.stderr, flush=True)
        read = _merge([rescorer.read(root / i.folder, data_dir, **options) for i in inputs], task)
        chosen = comparisons_of(restricted(study_families(), read.records))  # families.py: the one source of pairs
        pairs = [c.pair for c in chosen]
        metrics += rescorer.metrics(read.records, settings)
        comparisons += rescorer.comparisons(read.records, pairs, settings)
        samples += [r for m in read.records for r in read.records[m]]
        seconds[task] = time.perf_counter() - task_started
        tasks[task] = {
            "inputs": [{"folder": str(root / i.folder), "what": i.what} for i in inputs],
            "models": [{"name": m, "files": read.files[m], "n_items": len(read.records[m])} for m in read.records],
            "options": dict(options),
            "compare": [list(p) for p in pairs],
            "comparisons": [c.to_json() for c in chosen],
            "declaration": declaration(task),
            "notes": read.notes,
        }
        notes += read.notes
    if missing:
        notes.append("not imported (folder absent): " + ", ".join(f"{i.folder} ({i.task})" for i in missing))
    seconds["total"] = time.perf_counter() - started
    models = list(dict.fromkeys(m["name"] for t in tasks.values() for m in t["models"]))
    manifest: dict[str, Any] = {
        "globalign_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": sys.argv,
        "mode": "import-paper",
        "source": str(source),
        "data_dir": str(data_dir) if data_dir else None,
        "study_parser": study_parser,
        "models": [{"name": m, "tasks": [t for t, v in tasks.items() if any(x["name"] == m for x in v["models"])]}
                   for m in models],
        "families": [f.to_json() for f in study_families()],
        # every task's comparisons, each pair once (a task compares the pairs whose models it has)
        "comparisons": list({(c["model_a"], c["model_b"]): c for t in tasks.values() for c in t["comparisons"]}.values()),
        "tasks": tasks,
        "missing": [{"folder": i.folder, "task": i.task} for i in missing],
        "stats": vars(settings.stats),
        "notes": notes,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "packages": package_versions(),
    }
    write_run_folder(output, manifest, metrics, comparisons, samples)
    return RunSummary(output, metrics, comparisons, [], notes, seconds,
                      {t: DECLARATIONS[t] for t in tasks if t in DECLARATIONS}), manifest
