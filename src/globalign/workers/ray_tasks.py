"""`--engine ray`: each model's units as one Ray task holding `num_gpus=K` (K = --gpus-per-model, else
1 on a cluster with GPUs and 0 without), so the model loads once on whichever node has room. The task
streams back each unit's result as soon as it is done (a Ray generator); the driver saves it in its
work folder, so outputs need no shared file system and a killed driver resumes from the saved units.

Each node keeps its own request cache, `<cache dir>/requests-<host name>.sqlite`: one SQLite file is
never shared between machines (SQLite's locks do not hold over a network file system). The nodes need
globalign, the models and the evaluation data at the same paths as the driver (or the hub)."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from globalign.config import RunConfig
from globalign.errors import GlobalignError, first_line
from globalign.models.resolve import ModelSpec
from globalign.store.unit_store import UnitResult
from globalign.units import WorkUnit


def node_cache_name() -> str:
    return f"requests-{socket.gethostname()}.sqlite"


def _model_task(job: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Runs on a Ray worker: one model's units, one result (or one error) at a time."""
    from globalign.config import config_from_json
    from globalign.paths import cache_dir
    from globalign.store.request_cache import RequestCache
    from globalign.units import by_model, plan_units
    from globalign.workers.model_units import build_unit_tasks, run_model_units

    where = f"model '{job['model']}' on {socket.gethostname()}"
    cache = None
    try:
        config = config_from_json(job["config"], "the run's config")
        wanted = set(job["units"])
        units = [u for u in plan_units(config) if u.id in wanted and u.model_name == job["model"]]
        if len(units) != len(wanted):
            raise GlobalignError("the node's plan differs from the driver's (another globalign version there?)")
        tasks = build_unit_tasks(config, units, Path(job["data_dir"]) if job["data_dir"] else None)
        cache = RequestCache(cache_dir() / node_cache_name()) if config.cache else None
        ((spec, model_units),) = by_model(units)
        for result in run_model_units(config, tasks, spec, model_units, cache, progress=False):
            yield {"unit_id": result.unit_id, "lines": result.lines, "info": result.info, "error": ""}
    except (GlobalignError, OSError) as exc:  # carried back as text: the driver raises it as one line
        yield {"error": f"{where}: {first_line(exc)}"}
    finally:
        if cache:
            cache.close()


def run_on_ray(config: RunConfig, jobs: Sequence[tuple[ModelSpec, list[WorkUnit]]], data_dir: Path | None, *,
               address: str | None, gpus_per_model: int | None, progress: bool) -> Iterator[UnitResult]:
    """Every job (a model and its units) as a Ray task; each unit's result as it arrives, in any order."""
    if not jobs:
        return
    from globalign.ray_session import ray_session

    with ray_session(address) as ray:
        gpus = ray.cluster_resources().get("GPU", 0)
        per_model = gpus_per_model if gpus_per_model is not None else (1 if gpus else 0)
        if per_model > gpus:
            raise GlobalignError(f"--gpus-per-model {per_model}: the Ray cluster has {gpus:g} GPU(s)")
        task = ray.remote(num_gpus=per_model, num_cpus=1, max_retries=0)(_model_task)
        streams = {task.options(name=f"globalign {spec.name}").remote(
            {"config": config.to_json(), "model": spec.name, "units": [u.id for u in units],
             "data_dir": str(data_dir) if data_dir else None}): spec.name for spec, units in jobs}
        done, total = 0, sum(len(units) for _, units in jobs)
        while streams:
            ready, _ = ray.wait(list(streams), num_returns=1)
            for stream in ready:
                try:
                    item = ray.get(next(stream))
                except StopIteration:
                    del streams[stream]
                    continue
                except ray.exceptions.RayError as exc:
                    raise GlobalignError(f"model '{streams[stream]}': its Ray task failed ({first_line(exc)})") from exc
                if item["error"]:
                    raise GlobalignError(item["error"])
                done += 1
                if progress:
                    print(f"ray: {item['unit_id']} done ({done}/{total} units)", file=sys.stderr)
                yield UnitResult(item["unit_id"], item["lines"], item["info"])
