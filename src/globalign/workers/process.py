"""The worker process of `--gpus-per-model` (gpu_groups.py): reads its job (the run's config, a model,
its unit ids, the work folder) as JSON on stdin, computes the units on the GPUs in its
CUDA_VISIBLE_DEVICES, and saves each in the work folder. A user error is written, as one line, to the
job's error file; the exit status is then 2."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _end_with_parent(parent: int) -> None:
    """End when the run's process does, a kill -9 included (else a worker would hold its GPU)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the run's process ended before prctl took effect
        os._exit(1)


def work(job: dict[str, Any]) -> None:
    from globalign.config import config_from_json
    from globalign.paths import cache_dir
    from globalign.store.request_cache import RequestCache
    from globalign.store.unit_store import WorkFolder
    from globalign.units import by_model, plan_units
    from globalign.workers.model_units import build_unit_tasks, run_model_units

    config = config_from_json(job["config"], "the run's config")
    wanted = set(job["units"])
    units = [u for u in plan_units(config) if u.id in wanted and u.model_name == job["model"]]
    if len(units) != len(wanted):
        raise RuntimeError("the worker's plan differs from the run's (another globalign version?)")
    data_dir = Path(job["data_dir"]) if job["data_dir"] else None
    tasks = build_unit_tasks(config, units, data_dir)
    folder = WorkFolder(Path(job["work"]))
    cache = RequestCache(cache_dir() / "requests.sqlite") if config.cache else None
    try:
        ((spec, model_units),) = by_model(units)
        for result in run_model_units(config, tasks, spec, model_units, cache, progress=job["progress"]):
            folder.save(result)
    finally:
        if cache:
            cache.close()


def main() -> int:
    job = json.load(sys.stdin)
    _end_with_parent(job["parent"])
    from globalign.threads import apply_runtime_defaults

    apply_runtime_defaults()  # before torch loads, as the CLI does
    from globalign.cli import _quiet_libraries
    from globalign.errors import GlobalignError
    from globalign.text_safety import one_line

    _quiet_libraries()
    try:
        work(job)
    except (GlobalignError, OSError) as exc:
        Path(job["error_file"]).write_text(one_line(str(exc)) + "\n", "utf-8")
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
