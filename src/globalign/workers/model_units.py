"""One model's work units, computed here: load the model once, run each unit's task, hand back each
unit's records and manifest as soon as the unit is done."""

from __future__ import annotations

import platform
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

from globalign.config import RunConfig, TaskConfig
from globalign.engine.runner import Engine, RewardEngine
from globalign.models.backends import reward_model_loader
from globalign.models.resolve import LocatedModel, ModelSpec, load_model, locate_model
from globalign.store.request_cache import RequestCache
from globalign.store.unit_store import UnitResult
from globalign.tasks.base import Task, TaskSettings
from globalign.tasks.registry import make_task
from globalign.units import WorkUnit, config_hash


def task_settings(config: RunConfig, task: TaskConfig, data_dir: Path | None) -> TaskSettings:
    return TaskSettings(task.limit or config.limit, config.seed, config.prompt_format, data_dir, config.stats,
                        task.options)


def build_unit_tasks(config: RunConfig, units: Sequence[WorkUnit], data_dir: Path | None) -> dict[str, Task]:
    """The tasks of `units` (each loads and checks its data), by name."""
    wanted = {u.task.name for u in units}
    return {t.name: make_task(t.name, task_settings(config, t, data_dir)) for t in config.tasks if t.name in wanted}


def run_model_units(config: RunConfig, tasks: Mapping[str, Task], model: ModelSpec | LocatedModel,
                    units: Sequence[WorkUnit], cache: RequestCache | None, *, progress: bool) -> Iterator[UnitResult]:
    """Load `model` once and run its `units` in order, yielding each unit's result when it is done.
    A reward model is a ModelSpec (its folder is found by its loader), a language model may come located."""
    spec = model.spec if isinstance(model, LocatedModel) else model
    started = time.perf_counter()
    if spec.is_reward_model:
        loaded = reward_model_loader(spec.backend, spec.name)(spec)
        engine: Engine | RewardEngine = RewardEngine(loaded, cache, progress=progress)
    else:
        loaded = load_model(model if isinstance(model, LocatedModel) else locate_model(spec))
        engine = Engine(loaded, cache, progress=progress)
    load_seconds = time.perf_counter() - started
    digest = config_hash(config)
    try:
        for unit in units:
            before = engine.computed, engine.reused, engine.damaged
            started = time.perf_counter()
            records = tasks[unit.task.name].run(engine, config.prompt_format)
            counts = {"computed": engine.computed - before[0], "from_cache": engine.reused - before[1],
                      "damaged": engine.damaged - before[2]}
            info = {"model": spec.name, "task": unit.task.name, "config_hash": digest,
                    "model_info": asdict(loaded.info), "engine": counts,
                    "seconds": {"load": load_seconds, "task": time.perf_counter() - started},
                    "request_cache": str(cache.path) if cache else None, "host": platform.node()}
            load_seconds = 0.0  # the model was loaded once, for its first unit
            yield UnitResult.of(unit.id, records, info)
    finally:
        loaded.close()
