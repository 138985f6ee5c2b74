"""The last step of a run (and of `globalign merge`): finished units' records -> metrics, comparisons,
the manifest -> the run folder. It reads only the units (store/unit_store.py), never a model, so a run
computed in one process, on several GPUs, on a Ray cluster or as merged shards gives the same bytes."""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from globalign import __version__
from globalign.config import RunConfig
from globalign.errors import GlobalignError, first_line
from globalign.models.base import ModelInfo
from globalign.store.output import write_run_folder
from globalign.store.unit_store import UnitResult
from globalign.tasks.base import ComparisonRow, MetricRow, SampleRecord, Task, TaskDeclaration
from globalign.tasks.declarations import DECLARATIONS, declaration
from globalign.threads import CpuAtStart, cpu_threads, threads_source
from globalign.units import WorkUnit

_VERSIONED_PACKAGES = ("torch", "transformers", "tokenizers", "safetensors", "gguf", "accelerate", "numpy", "scipy",
                       "huggingface_hub")


@dataclass
class RunSummary:
    output: Path
    metrics: list[MetricRow]
    comparisons: list[ComparisonRow]
    models: list[ModelInfo]
    notes: list[str]
    seconds: dict[str, float] = field(default_factory=dict)
    declarations: dict[str, TaskDeclaration] = field(default_factory=dict)  # what each task's rows mean
    units: int = 0  # work units of the run (model x task)
    resumed_units: int = 0  # of them, finished by an earlier, interrupted run


@dataclass(frozen=True)
class RunContext:
    """What the manifest records about how the run was started (the driver's side)."""

    data_dir: Path | None
    cpu: CpuAtStart
    started: float  # time.perf_counter() at the start
    notes: Sequence[str] = ()  # the caller's and the reward-model notes, before the tasks'
    units: Mapping[str, Any] = field(default_factory=dict)  # the manifest's "units" entry


def package_versions() -> dict[str, str]:
    versions = {"globalign": __version__, "python": platform.python_version()}
    for name in _VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def family_notes(models: Sequence[ModelInfo], pairs: Sequence[tuple[str, str]]) -> list[str]:
    """Say so when a comparison crosses model families: family, size, data and alignment are confounded."""
    by_name = {m.name: m for m in models}
    notes = []
    for a, b in pairs:
        fa, fb = by_name[a].family, by_name[b].family
        if fa and fb and fa != fb:
            notes.append(
                f"{a} ({fa}) and {b} ({fb}) are of different model families: a difference between them mixes "
                "family, size, training data and alignment, not the effect of alignment alone"
            )
    return notes


def _model_infos(config: RunConfig, by_model: Mapping[str, list[UnitResult]]) -> list[ModelInfo]:
    """Each model's info, in the config's order; its units must agree on it (one set of weights)."""
    infos = []
    for spec in config.models:
        seen = {(r.info["model_info"]["fingerprint"], r.info.get("host", "")) for r in by_model[spec.name]}
        if len({fingerprint for fingerprint, _ in seen}) > 1:
            shown = ", ".join(f"{fp[:12]} on {host or 'an unnamed host'}" for fp, host in sorted(seen))
            raise GlobalignError(f"model '{spec.name}': its units were computed with different weights or code "
                                 f"(fingerprints {shown}); run them again on one installation")
        # the last unit's: a backend may add to its details as it runs (a served model's HTTP counts)
        infos.append(ModelInfo(**by_model[spec.name][-1].info["model_info"]))
    return infos


def _engine_counts(results: Sequence[UnitResult]) -> dict[str, int]:
    counts = {"computed": 0, "from_cache": 0}
    damaged = 0
    for result in results:
        counts["computed"] += result.info["engine"]["computed"]
        counts["from_cache"] += result.info["engine"]["from_cache"]
        damaged += result.info["engine"].get("damaged", 0)
    return {**counts, "damaged": damaged} if damaged else counts  # cached answers that could not be read


def _request_cache(results: Sequence[UnitResult]) -> str | list[str] | None:
    """The cache file the units used: one path as before, or each worker's (a Ray cluster's nodes)."""
    paths = list(dict.fromkeys(r.info.get("request_cache") for r in results if r.info.get("request_cache")))
    return paths[0] if len(paths) == 1 else (paths or None)


def aggregate(config: RunConfig, tasks: Sequence[Task], units: Sequence[WorkUnit], results: Mapping[str, UnitResult],
              context: RunContext, *, where: Callable[[str], str], kept: str,
              extra_files: Callable[[Sequence[MetricRow], Path, dict[str, Any]], None] | None = None) -> RunSummary:
    """Metrics, comparisons and the manifest from the finished `results` of every unit, written as the
    run folder `config.output`. `where(unit id)` names a unit's records in errors; `kept` says, when the
    write fails, where the finished work is kept."""
    by_model: dict[str, list[UnitResult]] = {spec.name: [] for spec in config.models}
    for unit in units:
        by_model[unit.model_name].append(results[unit.id])
    infos = _model_infos(config, by_model)
    records: dict[str, dict[str, list[SampleRecord]]] = {t.name: {} for t in tasks}
    for task in tasks:  # models in the config's order within each task, as samples.jsonl lists them
        for unit in units:
            if unit.task.name == task.name:
                records[task.name][unit.model_name] = results[unit.id].records(where(unit.id))
    seconds: dict[str, float] = {}
    for name, model_results in by_model.items():
        seconds[f"load:{name}"] = sum(r.info["seconds"]["load"] for r in model_results)
        seconds.update({f"{r.task}:{name}": r.info["seconds"]["task"] for r in model_results})
    started = time.perf_counter()
    chosen = config.comparisons()
    pairs = [c.pair for c in chosen]
    metrics = [row for task in tasks for row in task.metrics(records[task.name])]
    # a pair is compared on a task only where both models ran it (reward models skip the LM tasks)
    comparisons = [row for task in tasks for row in task.comparisons(
        records[task.name], [p for p in pairs if p[0] in records[task.name] and p[1] in records[task.name]])]
    seconds["statistics"] = time.perf_counter() - started
    task_notes = [note for task in tasks for note in getattr(task, "notes", list)()]
    notes = [*context.notes, *task_notes, *family_notes(infos, pairs)]
    seconds["total"] = time.perf_counter() - context.started
    all_results = [results[u.id] for u in units]
    manifest: dict[str, Any] = {
        "globalign_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": sys.argv,
        "config": config.to_json(),
        "models": [asdict(info) for info in infos],
        "prompt_format": config.prompt_format,
        "seed": config.seed,
        "data_dir": str(context.data_dir) if context.data_dir else "hub",
        "families": [f.to_json() for f in config.model_families()],
        "comparisons": [c.to_json() for c in chosen],
        "tasks": {task.name: {**task.manifest(), "declaration": declaration(task.name)} for task in tasks},
        "engine": {name: _engine_counts(model_results) for name, model_results in by_model.items()},
        "request_cache": _request_cache(all_results),
        "units": dict(context.units),
        "notes": notes,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "packages": package_versions(),
        "machine": {"platform": platform.platform(), "processor": platform.machine()},
        "cpu": {**asdict(context.cpu), "threads": {spec.name: {"count": cpu_threads(spec.threads),
                                                               "from": threads_source(spec.threads)}
                                                   for spec in config.models}},
    }
    samples = (r for task in tasks for model_records in records[task.name].values() for r in model_records)
    add = (lambda work: extra_files(metrics, work, manifest)) if extra_files else None
    try:
        write_run_folder(config.output, manifest, metrics, comparisons, samples, add)
    except (OSError, GlobalignError) as exc:
        # Hours of model work must not look lost: say where it is and how to get the folder written.
        raise GlobalignError(f"{first_line(exc)}; {kept}") from exc
    return RunSummary(config.output, metrics, comparisons, infos, notes, seconds,
                      {t.name: DECLARATIONS[t.name] for t in tasks if t.name in DECLARATIONS},
                      len(units), int(context.units.get("resumed", 0)))
