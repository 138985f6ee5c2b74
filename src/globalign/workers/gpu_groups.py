"""`--gpus-per-model K` on one machine: the visible GPUs cut into groups of K, one worker process per
group (its CUDA_VISIBLE_DEVICES set to the group before it starts). Each worker takes the next model
that has units to run, loads it once, runs its units and saves each in the work folder, then ends; the
group takes the next model. Models run in parallel, one per group; a model's units never split.

The worker is `python -m globalign.workers.process`, handed its job as JSON on stdin. It ends with this
process, a kill -9 included (prctl PR_SET_PDEATHSIG), so a killed run leaves no worker holding a GPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path

from globalign.config import RunConfig
from globalign.errors import ConfigError, GlobalignError
from globalign.models.resolve import ModelSpec
from globalign.store.unit_store import WorkFolder
from globalign.units import WorkUnit

POLL_S = 0.2


def visible_gpus(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The GPUs this process may use: CUDA_VISIBLE_DEVICES when it is set (indices or UUIDs, up to the first
    invalid entry such as -1, as CUDA reads it), else every device CUDA counts."""
    value = environ.get("CUDA_VISIBLE_DEVICES")
    if value is not None:
        gpus = []
        for entry in (e.strip() for e in value.split(",")):
            if not entry or entry.startswith("-"):
                break
            gpus.append(entry)
        return gpus
    try:
        import torch
    except ImportError:
        return []
    return [str(i) for i in range(torch.cuda.device_count())]


def gpu_groups(gpus: Sequence[str], per_model: int) -> list[tuple[str, ...]]:
    """Groups of `per_model` GPUs in the order they are visible; GPUs left over are not used."""
    if per_model < 1:
        raise ConfigError(f"--gpus-per-model must be at least 1, got {per_model}")
    if len(gpus) < per_model:
        seen = f"{len(gpus)} visible ({', '.join(gpus)})" if gpus else "none visible"
        raise GlobalignError(f"--gpus-per-model {per_model}: this machine has {seen}; set CUDA_VISIBLE_DEVICES "
                             "or ask for fewer GPUs per model (a CPU-only run needs no --gpus-per-model)")
    return [tuple(gpus[i:i + per_model]) for i in range(0, len(gpus) - per_model + 1, per_model)]


def _start(config: RunConfig, spec: ModelSpec, units: Sequence[WorkUnit], group: tuple[str, ...], work: WorkFolder,
           data_dir: Path | None, progress: bool) -> tuple[subprocess.Popen[bytes], Path]:
    handle, error_file = tempfile.mkstemp(prefix="globalign-worker-", suffix=".error")
    os.close(handle)
    job = {"config": config.to_json(), "model": spec.name, "units": [u.id for u in units], "work": str(work.path),
           "data_dir": str(data_dir) if data_dir else None, "progress": progress, "error_file": error_file,
           "parent": os.getpid()}
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ",".join(group)}
    process = subprocess.Popen([sys.executable, "-m", "globalign.workers.process"], stdin=subprocess.PIPE, env=env)
    assert process.stdin is not None
    process.stdin.write(json.dumps(job).encode())
    process.stdin.close()
    return process, Path(error_file)


def _failure(process: subprocess.Popen[bytes], error_file: Path, model: str, group: tuple[str, ...]) -> str | None:
    try:
        message = error_file.read_text("utf-8").strip()
    except OSError:
        message = ""
    error_file.unlink(missing_ok=True)
    if process.returncode == 0:
        return None
    reason = message or f"the worker process ended with status {process.returncode}"
    return f"model '{model}' on GPU(s) {','.join(group)}: {reason}"


def run_on_gpu_groups(config: RunConfig, jobs: Sequence[tuple[ModelSpec, list[WorkUnit]]], work: WorkFolder,
                      data_dir: Path | None, per_model: int, *, progress: bool) -> None:
    """Run every job (a model and its units) in a worker process on a free GPU group, until all are done.
    After a worker fails no new model starts; the running ones finish (their units are kept), then the
    first failure is raised."""
    free = deque(gpu_groups(visible_gpus(), per_model))
    pending = deque(jobs)
    running: dict[subprocess.Popen[bytes], tuple[tuple[str, ...], str, Path]] = {}
    failures: list[str] = []
    try:
        while pending or running:
            while pending and free and not failures:
                group = free.popleft()
                spec, units = pending.popleft()
                process, error_file = _start(config, spec, units, group, work, data_dir, progress)
                running[process] = (group, spec.name, error_file)
            time.sleep(POLL_S)
            for process in [p for p in running if p.poll() is not None]:
                group, model, error_file = running.pop(process)
                free.append(group)
                failure = _failure(process, error_file, model, group)
                if failure:
                    failures.append(failure)
            if failures and not running:
                break
    finally:
        for process, (_, _, error_file) in running.items():  # interrupted: end the workers, then tidy up
            process.terminate()
            process.wait()
            error_file.unlink(missing_ok=True)
    if failures:
        more = f" (and {len(failures) - 1} more failed worker(s))" if len(failures) > 1 else ""
        raise GlobalignError(failures[0] + more)
