"""One run: config -> work units (units.py) -> computed here, on this machine's GPUs or on a Ray cluster
(workers/), each kept as it finishes (store/unit_store.py) -> aggregated from the kept units only
(aggregate.py) -> the run folder. `--shard i/n` stops before the aggregate and writes its units as a
shard folder; `globalign merge` (merge.py) aggregates shard folders."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from globalign.aggregate import RunContext, RunSummary, aggregate
from globalign.config import RunConfig
from globalign.data.locate import resolve_data_dir
from globalign.errors import ConfigError, GlobalignError, first_line
from globalign.models.backends import reward_model_loader
from globalign.models.resolve import LocatedModel, ModelSpec, locate_model
from globalign.models.reward import locate_reward_folder
from globalign.paths import cache_dir
from globalign.store.output import RUN_FOLDER, SHARD_FOLDER, FolderKind, check_output_dir
from globalign.store.request_cache import RequestCache
from globalign.store.unit_store import RECORDS, UnitResult, WorkFolder, write_shard_folder
from globalign.tasks.base import MetricRow, Task
from globalign.tasks.registry import make_task
from globalign.threads import cpu_at_start, warn_if_busy
from globalign.units import ShardSpec, WorkUnit, by_model, config_hash, plan_units, shard_units
from globalign.workers.model_units import run_model_units, task_settings

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class Execution:
    """Where and which of a run's units are computed; none of it changes a result."""

    shard: ShardSpec | None = None  # only this share of the units, written as a shard folder
    gpus_per_model: int | None = None  # one worker process per group of this many GPUs (or Ray's num_gpus)
    engine: str = "local"  # or "ray"
    ray_address: str | None = None  # a Ray cluster to join (else a local Ray instance)


@dataclass
class ShardSummary:
    output: Path
    shard: ShardSpec
    config_hash: str
    units: int  # this shard's
    resumed_units: int
    total_units: int  # the whole run's


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


def build_tasks(config: RunConfig, kind: FolderKind = RUN_FOLDER, *,
                data_dir: str | None = None) -> tuple[Path | None, list[Task], list[str]]:
    """Check the output folder, then build every task (loads and validates its data; `data_dir`: where the
    data is, when not the config's) before any model is loaded: fail fast. (data folder, tasks, notes)"""
    check_output_dir(config.output, kind)
    resolved = resolve_data_dir(data_dir if data_dir is not None else config.data_dir)
    tasks = [make_task(t.name, task_settings(config, t, resolved)) for t in config.tasks]
    return resolved, tasks, _check_reward_models(config, tasks)


def dry_run(config: RunConfig, shard: ShardSpec | None = None) -> list[str]:
    """The plan of a run (plan.py): everything `run` checks before loading a model, then the requests
    each model would get, and its work units (with `shard`: which shard runs which). Writes nothing and
    loads no model."""
    from globalign.plan import format_plan, format_units, plan_run

    _, tasks, notes = build_tasks(config, SHARD_FOLDER if shard else RUN_FOLDER)
    plans, counter = plan_run(config, tasks)
    return (format_plan(config, plans, counter) + format_units(config, plan_units(config), shard)
            + [f"Note: {n}" for n in notes])


def _located(spec: ModelSpec) -> ModelSpec | LocatedModel:
    """A model's files found (converted, downloaded) before any model loads. A reward model stays a spec:
    its loader finds its folder; here its backend and folder are checked."""
    if not spec.is_reward_model:
        return locate_model(spec)
    reward_model_loader(spec.backend, spec.name)  # fails fast on a backend without reward models
    locate_reward_folder(spec)  # and on a missing folder or an unreachable hub id
    return spec


def _compute(config: RunConfig, tasks: Sequence[Task], pending: Sequence[WorkUnit], work: WorkFolder,
             data_dir: Path | None, execution: Execution, progress: bool,
             located: Mapping[str, ModelSpec | LocatedModel], cache: RequestCache | None) -> None:
    """Compute the `pending` units where `execution` says, saving each in `work` as it finishes."""
    jobs = by_model(pending)
    if execution.engine == "ray":
        from globalign.workers.ray_tasks import run_on_ray

        for result in run_on_ray(config, jobs, data_dir, address=execution.ray_address,
                                 gpus_per_model=execution.gpus_per_model, progress=progress):
            _save(work, result, config.output)
    elif execution.gpus_per_model:
        from globalign.workers.gpu_groups import run_on_gpu_groups

        run_on_gpu_groups(config, jobs, work, data_dir, execution.gpus_per_model, progress=progress)
    else:
        by_name = {t.name: t for t in tasks}
        for spec, units in jobs:
            for result in run_model_units(config, by_name, located[spec.name], units, cache, progress=progress):
                _save(work, result, config.output)


def _save(work: WorkFolder, result: UnitResult, output: Path) -> None:
    try:
        work.save(result)
    except OSError as exc:  # a full disk, a file-size limit: said like a failed output write
        previous = "the previous folder is unchanged" if output.exists() else "no output folder was written"
        raise GlobalignError(f"could not write the finished unit {result.unit_id} to {work.path} "
                             f"({first_line(exc)}); {previous}") from exc


def run(config: RunConfig, *, progress: bool = True, extra_notes: Sequence[str] = (),
        extra_files: Callable[[Sequence[MetricRow], Path, dict[str, Any]], None] | None = None,
        execution: Execution = Execution()) -> RunSummary | ShardSummary:
    """Compute the run's units not finished yet (a killed run's are reused), then aggregate them into the
    run folder; with `execution.shard`, only that shard's units, written as a shard folder.
    `extra_files(metrics, folder, manifest)` may add files to the run folder (its metrics, comparisons and
    samples already written there) before it is swapped into place; the manifest is the one being written."""
    started = time.perf_counter()
    cpu = cpu_at_start()
    shard = execution.shard
    data_dir, tasks, reward_notes = build_tasks(config, SHARD_FOLDER if shard else RUN_FOLDER)
    local = execution.engine != "ray"  # a Ray cluster's workers find their models and keep their caches
    if local and execution.gpus_per_model:
        from globalign.workers.gpu_groups import gpu_groups, visible_gpus

        gpu_groups(visible_gpus(), execution.gpus_per_model)  # enough GPUs, said before any model work
    units = plan_units(config)
    mine = shard_units(units, shard) if shard else units
    work = WorkFolder.beside(config.output)
    resumed = work.finished(u.id for u in mine)
    pending = [u for u in mine if u.id not in resumed]
    # The request cache is checked (a damaged file is one line) before any model is converted or loaded.
    cache = RequestCache(cache_dir() / "requests.sqlite") if config.cache and local else None
    try:
        # Find every model's files before loading any, so a typo in the last model fails in seconds.
        located = {spec.name: _located(spec) for spec, _ in by_model(pending)} if local else {}
        warn_if_busy(cpu)  # after the fail-fast checks, so that a user error stays one line
        if cache and execution.gpus_per_model:
            cache.close()  # the worker processes open it themselves
            cache = None
        _compute(config, tasks, pending, work, data_dir, execution, progress, located, cache)
    except Exception:
        if not work.holds_units():  # nothing finished: leave nothing behind
            work.remove()
        raise  # else the finished units stay for the rerun (an interruption or a kill keeps them too)
    finally:
        if cache:
            cache.close()
    results = work.finished(u.id for u in mine)
    missing = [u.id for u in mine if u.id not in results]
    if missing:
        raise GlobalignError(f"{len(missing)} unit(s) did not finish ({missing[0]}); rerun the same command")
    entry = {"total": len(units), "resumed": len(resumed), "engine": execution.engine,
             "gpus_per_model": execution.gpus_per_model}
    if shard:
        return _write_shard(config, shard, mine, results, work, {**entry, "total": len(mine)}, len(units))
    kept = (f"the finished units are kept in {work.path}: rerun the same command (same --output, made writable) "
            "to write the run folder without recomputing")
    context = RunContext(data_dir, cpu, started, [*extra_notes, *reward_notes], entry)
    summary = aggregate(config, tasks, units, results, context, kept=kept, extra_files=extra_files,
                        where=lambda unit_id: str(work.path / f"{unit_id}{RECORDS}"))
    work.remove()
    return summary


def _write_shard(config: RunConfig, shard: ShardSpec, mine: Sequence[WorkUnit], results: Mapping[str, UnitResult],
                 work: WorkFolder, entry: dict[str, Any], total: int) -> ShardSummary:
    from datetime import UTC, datetime

    from globalign import __version__
    from globalign.aggregate import package_versions

    digest = config_hash(config)
    manifest = {"globalign_version": __version__, "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "shard": str(shard), "config_hash": digest, "config": config.to_json(), "units_in_run": total,
                "execution": entry, "packages": package_versions()}
    try:
        write_shard_folder(config.output, manifest, [results[u.id] for u in mine])
    except (OSError, GlobalignError) as exc:
        raise GlobalignError(f"{first_line(exc)}; the finished units are kept in {work.path}: rerun the same "
                             "command to write the shard folder without recomputing") from exc
    work.remove()
    return ShardSummary(config.output, shard, digest, len(mine), int(entry["resumed"]), total)
