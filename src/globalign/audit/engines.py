"""Where the shards are counted: in this process, in a local process pool over the usable CPUs, or on a
Ray cluster (Ray Data). Every engine calls analyse.audit_shard on each job and hands back
(shard key, counts) as shards finish, in any order; tallies add up the same in every order."""

from __future__ import annotations

import ctypes
import itertools
import json
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict
from typing import Any

from globalign.audit.analyse import RowsJob, ShardJob, audit_chunk, audit_shard
from globalign.audit.counts import AuditCounts
from globalign.audit.formats import FieldNames
from globalign.audit.records import Shard
from globalign.audit.sources import read_shard
from globalign.errors import DataError, GlobalignError
from globalign.ray_session import ray_session

ENGINES = ("local", "ray")
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _warm_up(job: ShardJob) -> None:
    # Build the identifier tables and the gazetteer once before forking: workers share their pages.
    from globalign.audit.gazetteer import default_gazetteer
    from globalign.audit.langid import identify

    identify("warm up")
    if job.countries:
        default_gazetteer()


def _end_with_parent(parent: int) -> None:
    """Pool initializer: a worker ends when the audit process does, a kill -9 included (else it would
    wait for work forever, holding its memory). Linux; the processes are started by the main thread."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the audit process ended before prctl took effect
        os._exit(1)


def _batched(items: Iterable[Any], size: int) -> Iterator[tuple[Any, ...]]:
    """itertools.batched of Python 3.12."""
    iterator = iter(items)
    while chunk := tuple(itertools.islice(iterator, size)):
        yield chunk


def chunk_key(shard_key: str, index: int) -> str:
    return f"{shard_key}@{index}"


def _units(jobs: Sequence[ShardJob], done: Collection[str], chunk_rows: int) -> Iterator[tuple[str, Callable, Any]]:
    """(key, function, argument) for each unit of work not in `done`. Shards with a row range are read
    by the workers themselves; a file that is one whole shard is read here and cut into RowsJobs of
    `chunk_rows` records (chunks done earlier are read past, not counted again)."""
    for job in jobs:
        if job.shard.stop >= 0:
            if job.shard.key not in done:
                yield job.shard.key, audit_shard, job
            continue
        rows = read_shard(job.shard)
        for index, chunk in enumerate(_batched(rows, chunk_rows)):
            key = chunk_key(job.shard.key, index)
            if key not in done:
                yield key, audit_chunk, RowsJob(key, job.shard.path, job.record_format, job.fields, job.countries,
                                                tuple(chunk))


def run_local(jobs: Sequence[ShardJob], workers: int, *, done: Collection[str] = (),
              chunk_rows: int = 2000) -> Iterator[tuple[str, AuditCounts]]:
    if not jobs:
        return
    _warm_up(jobs[0])
    units = _units(jobs, done, chunk_rows)
    if workers <= 1:
        for key, function, argument in units:
            yield key, function(argument)
        return
    # fork: workers inherit the warmed-up tables copy-on-write instead of rebuilding them
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_end_with_parent,
                             initargs=(os.getpid(),)) as pool:
        # At most 2 units per worker in flight: the pending queue (and the chunks of rows read ahead)
        # stay small for any corpus size.
        running = {}
        for key, function, argument in units:
            running[pool.submit(function, argument)] = key
            if len(running) >= 2 * workers:
                break
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                key = running.pop(future)
                counts = future.result()  # a worker's DataError is raised here, as a one-line error
                following = next(units, None)
                if following is not None:
                    running[pool.submit(following[1], following[2])] = following[0]
                yield key, counts


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
    with ray_session(address, workers):
        import ray.data

        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        dataset = ray.data.from_items([{"job": _job_to_json(job)} for job in jobs], override_num_blocks=len(jobs))
        for row in dataset.map(_ray_audit, num_cpus=1).iter_rows():
            if row["error"]:
                raise DataError(row["error"])
            yield row["key"], AuditCounts.from_json(json.loads(row["counts"]))
