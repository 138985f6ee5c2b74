"""Where the shards are counted: in this process, in a local process pool over all cores, or on a
Ray cluster (Ray Data). Every engine calls analyse.audit_shard on each job and hands back
(shard key, counts) as shards finish, in any order; tallies add up the same in every order."""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict
from typing import Any

from globalign.audit.analyse import ShardJob, audit_shard
from globalign.audit.counts import AuditCounts
from globalign.audit.formats import FieldNames
from globalign.audit.records import Shard
from globalign.errors import DataError, GlobalignError

ENGINES = ("local", "ray")


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _warm_up(job: ShardJob) -> None:
    # Build the identifier tables and the gazetteer once before forking: workers share their pages.
    from globalign.audit.gazetteer import default_gazetteer
    from globalign.audit.langid import identify

    identify("warm up")
    if job.countries:
        default_gazetteer()


def run_local(jobs: Sequence[ShardJob], workers: int) -> Iterator[tuple[str, AuditCounts]]:
    if not jobs:
        return
    _warm_up(jobs[0])
    if workers <= 1:
        for job in jobs:
            yield job.shard.key, audit_shard(job)
        return
    # fork: workers inherit the warmed-up tables copy-on-write instead of rebuilding them
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        # At most 2 shards per worker in flight: the pending queue stays small for any corpus size.
        queue = iter(jobs)
        running = {}
        for job in queue:
            running[pool.submit(audit_shard, job)] = job
            if len(running) >= 2 * workers:
                break
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                job = running.pop(future)
                counts = future.result()  # a worker's DataError is raised here, as a one-line error
                next_job = next(queue, None)
                if next_job is not None:
                    running[pool.submit(audit_shard, next_job)] = next_job
                yield job.shard.key, counts


# -- Ray ---------------------------------------------------------------------------------------------
def _job_to_json(job: ShardJob) -> str:
    return json.dumps({"shard": asdict(job.shard), "record_format": job.record_format,
                       "fields": {"format": job.fields.format, "fields": list(job.fields.fields)},
                       "countries": job.countries})


def _job_from_json(text: str) -> ShardJob:
    data = json.loads(text)
    fields = FieldNames(data["fields"]["format"], tuple(tuple(pair) for pair in data["fields"]["fields"]))
    return ShardJob(Shard(**data["shard"]), data["record_format"], fields, data["countries"])


def _ray_audit(row: dict[str, Any]) -> dict[str, Any]:
    job = _job_from_json(row["job"])
    try:
        return {"key": job.shard.key, "counts": audit_shard(job).dumps(), "error": ""}
    except GlobalignError as exc:  # carried back as text: the driver raises it as one line
        return {"key": job.shard.key, "counts": "", "error": str(exc)}


def run_ray(jobs: Sequence[ShardJob], *, address: str | None, workers: int | None) -> Iterator[tuple[str, AuditCounts]]:
    """One Ray task per shard (Ray Data `map`). With `address` (e.g. "auto" on a cluster node) the
    audit joins that cluster; without, it starts a local Ray instance with `workers` CPUs. Source files
    must be readable at the same paths on every node (a shared file system)."""
    if not jobs:
        return
    try:
        import ray
        import ray.data
    except ImportError:
        raise GlobalignError("--engine ray needs Ray: pip install 'globalign[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise GlobalignError(f"cannot start or join Ray at {address or 'a local instance'} ({exc})") from None
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        dataset = ray.data.from_items([{"job": _job_to_json(job)} for job in jobs], override_num_blocks=len(jobs))
        for row in dataset.map(_ray_audit, num_cpus=1).iter_rows():
            if row["error"]:
                raise DataError(row["error"])
            yield row["key"], AuditCounts.from_json(json.loads(row["counts"]))
    finally:
        if started_here:
            ray.shutdown()
