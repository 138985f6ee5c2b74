"""One run: config -> tasks -> engine (per model) -> records -> aggregates -> output folder."""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from globalign import __version__
from globalign.config import RunConfig
from globalign.data.locate import resolve_data_dir
from globalign.engine.reward_engine import RewardEngine
from globalign.engine.runner import Engine
from globalign.errors import ConfigError
from globalign.models.base import ModelInfo
from globalign.models.resolve import ModelSpec, load_model, locate_model
from globalign.models.reward import load_reward_model, locate_reward_folder
from globalign.paths import cache_dir
from globalign.store.output import check_output_dir, write_run_folder
from globalign.store.request_cache import RequestCache
from globalign.tasks.base import ComparisonRow, MetricRow, SampleRecord, Task, TaskSettings
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


def _check_reward_models(config: RunConfig, tasks: Sequence[Task]) -> None:
    """Reward models score (prompt, response) pairs: only the preference probes can use one."""
    reward_models = [m.name for m in config.models if m.is_reward_model]
    if not reward_models:
        return
    refusing = [t.name for t in tasks if not getattr(t, "accepts_reward_models", False)]
    if refusing:
        accepting = [t.name for t in tasks if getattr(t, "accepts_reward_models", False)] or ["where_from", "askreddit"]
        raise ConfigError(
            f"task '{refusing[0]}' needs a language model, and '{reward_models[0]}' is a reward model: "
            f"run reward models on {', '.join(accepting)} only (a separate run for the other tasks)"
        )


def _located_reward_spec(spec: ModelSpec) -> ModelSpec:
    locate_reward_folder(spec)  # fails fast on a missing folder or an unreachable hub id
    return spec


def run(config: RunConfig, *, progress: bool = True, extra_notes: Sequence[str] = ()) -> RunSummary:
    started = time.perf_counter()
    cpu = cpu_at_start()
    check_output_dir(config.output)
    data_dir = resolve_data_dir(config.data_dir)
    # Build every task (loads and validates its data) before any model is loaded: fail fast.
    tasks = [
        make_task(t.name, TaskSettings(t.limit or config.limit, config.seed, config.prompt_format, data_dir,
                                       config.stats, t.options))
        for t in config.tasks
    ]
    _check_reward_models(config, tasks)
    # Find every model's files before loading any, so a typo in the last model fails in seconds.
    located = [_located_reward_spec(spec) if spec.is_reward_model else locate_model(spec) for spec in config.models]
    warn_if_busy(cpu)
    cache = RequestCache(cache_dir() / "requests.sqlite") if config.cache else None
    records: dict[str, dict[str, list[SampleRecord]]] = {t.name: {} for t in tasks}
    infos: list[ModelInfo] = []
    seconds: dict[str, float] = {}
    engine_counts: dict[str, dict[str, int]] = {}
    try:
        for model_files in located:
            spec = model_files if isinstance(model_files, ModelSpec) else model_files.spec
            name = spec.name
            t0 = time.perf_counter()
            if spec.is_reward_model:
                kind = "auto" if spec.kind == "reward" else spec.kind
                model = load_reward_model(spec, kind, tokenizer=spec.tokenizer)
                engine = RewardEngine(model, cache, progress=progress)
            else:
                model = load_model(model_files)
                engine = Engine(model, cache, progress=progress)
            seconds[f"load:{name}"] = time.perf_counter() - t0
            infos.append(model.info)
            for task in tasks:
                t0 = time.perf_counter()
                records[task.name][name] = task.run(engine, config.prompt_format)
                seconds[f"{task.name}:{name}"] = time.perf_counter() - t0
            engine_counts[name] = {"computed": engine.computed, "from_cache": engine.reused}
            model.close()
    finally:
        if cache:
            cache.close()
    t0 = time.perf_counter()
    pairs = config.comparison_pairs()
    metrics = [row for task in tasks for row in task.metrics(records[task.name])]
    comparisons = [row for task in tasks for row in task.comparisons(records[task.name], pairs)]
    seconds["statistics"] = time.perf_counter() - t0
    notes = [*extra_notes, *family_notes(infos, pairs)]
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
        "tasks": {task.name: task.manifest() for task in tasks},
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
    write_run_folder(config.output, manifest, metrics, comparisons, samples)
    return RunSummary(config.output, metrics, comparisons, infos, notes, seconds)
