"""One run: config -> tasks -> engine (per model) -> records -> aggregates -> output folder."""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from globalign import __version__
from globalign.config import RunConfig
from globalign.data.locate import resolve_data_dir
from globalign.engine.runner import Engine, RewardEngine
from globalign.errors import ConfigError, GlobalignError, first_line
from globalign.models.backends import reward_model_loader
from globalign.models.base import ModelInfo
from globalign.models.resolve import ModelSpec, load_model, locate_model
from globalign.models.reward import locate_reward_folder
from globalign.paths import cache_dir
from globalign.store.output import check_output_dir, write_run_folder
from globalign.store.request_cache import RequestCache
from globalign.tasks.base import ComparisonRow, MetricRow, SampleRecord, Task, TaskDeclaration, TaskSettings
from globalign.tasks.declarations import DECLARATIONS, declaration
from globalign.tasks.registry import make_task
from globalign.threads import cpu_at_start, cpu_threads, threads_source, warn_if_busy

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


def _accepts(task: Task, spec: ModelSpec) -> bool:
    """Reward models score (prompt, response) pairs: only the preference probes can use one."""
    return not spec.is_reward_model or getattr(task, "accepts_reward_models", False)


def _check_reward_models(config: RunConfig, tasks: Sequence[Task]) -> list[str]:
    """Reward models run the tasks that take them; a run where none does is an error. Returns the note."""
    reward_models = [m.name for m in config.models if m.is_reward_model]
    if not reward_models:
        return []
    accepting = [t.name for t in tasks if getattr(t, "accepts_reward_models", False)]
    refusing = [t.name for t in tasks if not getattr(t, "accepts_reward_models", False)]
    if not accepting:
        raise ConfigError(
            f"task '{refusing[0]}' needs a language model, and '{reward_models[0]}' is a reward model: "
            "run reward models on where_from or askreddit"
        )
    if not refusing:
        return []
    return [(f"reward model(s) {', '.join(reward_models)} ran {', '.join(accepting)} only: "
            f"{', '.join(refusing)} need(s) a language model")]


def build_tasks(config: RunConfig) -> tuple[Path | None, list[Task], list[str]]:
    """Check the output folder, then build every task (loads and validates its data) before any model is
    loaded: fail fast. (data folder, tasks, notes)"""
    check_output_dir(config.output)
    data_dir = resolve_data_dir(config.data_dir)
    tasks = [
        make_task(t.name, TaskSettings(t.limit or config.limit, config.seed, config.prompt_format, data_dir,
                                       config.stats, t.options))
        for t in config.tasks
    ]
    return data_dir, tasks, _check_reward_models(config, tasks)


def dry_run(config: RunConfig) -> list[str]:
    """The plan of a run (plan.py): everything `run` checks before loading a model, then the requests
    each model would get. Writes nothing and loads no model."""
    from globalign.plan import format_plan, plan_run

    _, tasks, notes = build_tasks(config)
    plans, counter = plan_run(config, tasks)
    return format_plan(config, plans, counter) + [f"Note: {n}" for n in notes]


def _located_reward_spec(spec: ModelSpec) -> ModelSpec:
    reward_model_loader(spec.backend, spec.name)  # fails fast on a backend without reward models
    locate_reward_folder(spec)  # and on a missing folder or an unreachable hub id
    return spec


def run(config: RunConfig, *, progress: bool = True, extra_notes: Sequence[str] = (),
        extra_files: Callable[[Sequence[MetricRow], Path, dict[str, Any]], None] | None = None) -> RunSummary:
    """`extra_files(metrics, folder, manifest)` may add files to the run folder (its metrics, comparisons and
    samples already written there) before it is swapped into place; the manifest is the one being written."""
    started = time.perf_counter()
    cpu = cpu_at_start()
    data_dir, tasks, reward_notes = build_tasks(config)
    # The request cache is checked (a damaged file is one line) before any model is converted or loaded.
    cache = RequestCache(cache_dir() / "requests.sqlite") if config.cache else None
    records: dict[str, dict[str, list[SampleRecord]]] = {t.name: {} for t in tasks}
    infos: list[ModelInfo] = []
    seconds: dict[str, float] = {}
    engine_counts: dict[str, dict[str, int]] = {}
    try:
        # Find every model's files before loading any, so a typo in the last model fails in seconds.
        located = [_located_reward_spec(spec) if spec.is_reward_model else locate_model(spec)
                   for spec in config.models]
        warn_if_busy(cpu)  # after the fail-fast checks, so that a user error stays one line
        for model_files in located:
            spec = model_files if isinstance(model_files, ModelSpec) else model_files.spec
            name = spec.name
            t0 = time.perf_counter()
            if spec.is_reward_model:
                model = reward_model_loader(spec.backend, spec.name)(spec)
                engine = RewardEngine(model, cache, progress=progress)
            else:
                model = load_model(model_files)
                engine = Engine(model, cache, progress=progress)
            seconds[f"load:{name}"] = time.perf_counter() - t0
            infos.append(model.info)
            for task in (t for t in tasks if _accepts(t, spec)):
                t0 = time.perf_counter()
                records[task.name][name] = task.run(engine, config.prompt_format)
                seconds[f"{task.name}:{name}"] = time.perf_counter() - t0
            engine_counts[name] = {"computed": engine.computed, "from_cache": engine.reused}
            if engine.damaged:  # cached answers that could not be read (computed again, overwritten)
                engine_counts[name]["damaged"] = engine.damaged
            model.close()
    finally:
        if cache:
            cache.close()
    t0 = time.perf_counter()
    chosen = config.comparisons()
    pairs = [c.pair for c in chosen]
    metrics = [row for task in tasks for row in task.metrics(records[task.name])]
    # a pair is compared on a task only where both models ran it (reward models skip the LM tasks)
    comparisons = [row for task in tasks for row in task.comparisons(
        records[task.name], [p for p in pairs if p[0] in records[task.name] and p[1] in records[task.name]])]
    seconds["statistics"] = time.perf_counter() - t0
    task_notes = [note for task in tasks for note in getattr(task, "notes", list)()]
    notes = [*extra_notes, *reward_notes, *task_notes, *family_notes(infos, pairs)]
    seconds["total"] = time.perf_counter() - started
    manifest: dict[str, Any] = {
        "globalign_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": sys.argv,
        "config": config.to_json(),
        "models": [vars(info) for info in infos],
        "prompt_format": config.prompt_format,
        "seed": config.seed,
        "data_dir": str(data_dir) if data_dir else "hub",
        "families": [f.to_json() for f in config.model_families()],
        "comparisons": [c.to_json() for c in chosen],
        "tasks": {task.name: {**task.manifest(), "declaration": declaration(task.name)} for task in tasks},
        "engine": engine_counts,
        "request_cache": str(cache.path) if cache else None,
        "notes": notes,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "packages": package_versions(),
        "machine": {"platform": platform.platform(), "processor": platform.machine()},
        "cpu": {**asdict(cpu), "threads": {spec.name: {"count": cpu_threads(spec.threads),
                                                       "from": threads_source(spec.threads)}
                                           for spec in config.models}},
    }
    samples = (r for task in tasks for model_records in records[task.name].values() for r in model_records)
    add = (lambda work: extra_files(metrics, work, manifest)) if extra_files else None
    try:
        write_run_folder(config.output, manifest, metrics, comparisons, samples, add)
    except (OSError, GlobalignError) as exc:
        # Hours of model work must not look lost: say where it is and how to get the folder written.
        kept = (f"every model answer is kept in the request cache {cache.path}: rerun the same command (with a "
                "writable --output) to write the run folder without recomputing" if cache else
                "nothing was cached (--no-cache), so a rerun computes everything again")
        raise GlobalignError(f"{first_line(exc)}; {kept}") from exc
    return RunSummary(config.output, metrics, comparisons, infos, notes, seconds,
                      {t.name: DECLARATIONS[t.name] for t in tasks if t.name in DECLARATIONS})
