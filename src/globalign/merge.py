"""`globalign merge SHARD_DIR... --output RUN_DIR`: the shard folders of one run (`run --shard i/n`)
aggregated into the run folder an unsplit run writes, byte for byte (aggregate.py reads only units).

Refused, as one line, before anything is written: shards of different configs (their config hashes
differ; the message names the first field that does), shards written by another globalign version, a
unit in two shard folders (the same shard given twice), a unit of the run in none (a shard missing), or a
unit's records changed since its shard was written (their SHA-256). The evaluation data must be on this
machine as for a run (the tasks' manifests and statistics come from it): `--data-dir` when its path
differs from the shards'."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from globalign import __version__
from globalign.aggregate import RunContext, RunSummary, aggregate
from globalign.config import config_from_json
from globalign.errors import GlobalignError
from globalign.store.unit_store import UnitResult, read_shard_folder
from globalign.threads import cpu_at_start
from globalign.units import config_json_hash, plan_units


def _difference(a: dict[str, Any], b: dict[str, Any]) -> str:
    """The first config field that differs, for the message."""
    for key in dict.fromkeys([*a, *b]):
        if key not in ("output", "cache") and a.get(key) != b.get(key):
            shown = [str(v) if len(str(v)) <= 60 else str(v)[:57] + "..." for v in (a.get(key), b.get(key))]
            return f"{key}: {shown[0]} vs {shown[1]}"
    return "globalign versions differ"


def merge(folders: Sequence[Path], output: Path, *, data_dir: str | None = None) -> RunSummary:
    from globalign.pipeline import build_tasks

    started = time.perf_counter()
    cpu = cpu_at_start()
    shards = [(folder, *read_shard_folder(folder)) for folder in folders]
    first_folder, first, _ = shards[0]
    for folder, manifest, _ in shards[1:]:
        if manifest["config_hash"] != first["config_hash"]:
            raise GlobalignError(f"{folder} is a shard of another run than {first_folder} (config hash "
                                 f"{manifest['config_hash']} vs {first['config_hash']}; "
                                 f"{_difference(first['config'], manifest['config'])}); merge the shards of one run")
    if config_json_hash(first["config"]) != first["config_hash"]:
        raise GlobalignError(f"{first_folder}: written by globalign {first.get('globalign_version')}, this is "
                             f"{__version__}; merge with the version that ran the shards")
    where = f"{first_folder}/manifest.json config"
    # the shards' data folder is part of the units' ids; where the data is here is --data-dir's business
    config = config_from_json({**first["config"], "data_dir": None, "output": str(output)}, where)
    config = replace(config, data_dir=first["config"].get("data_dir"))
    units = plan_units(config)
    planned = {u.id for u in units}
    found: dict[str, tuple[Path, UnitResult]] = {}
    for folder, _, results in shards:
        for result in results:
            if result.unit_id not in planned:
                raise GlobalignError(f"{folder}: unit {result.unit_id} is not a unit of this run's config "
                                     "(the shard folder was changed after it was written?)")
            if result.unit_id in found:
                raise GlobalignError(f"unit {result.unit_id} is in both {found[result.unit_id][0]} and {folder}: "
                                     "give each shard folder once")
            found[result.unit_id] = (folder, result)
    missing = [u.id for u in units if u.id not in found]
    if missing:
        count = int(str(first["shard"]).partition("/")[2])
        given = {str(m["shard"]) for _, m, _ in shards}
        absent = [f"{i}/{count}" for i in range(1, count + 1) if f"{i}/{count}" not in given]
        raise GlobalignError(f"{len(missing)} of {len(units)} unit(s) are in none of the shard folders (e.g. "
                             f"{missing[0]}); missing shard(s): {', '.join(absent) or 'none by name'}: merge every "
                             f"shard of the run")
    data, tasks, reward_notes = build_tasks(config, data_dir=data_dir)
    entry = {"total": len(units), "resumed": 0, "engine": "merge", "gpus_per_model": None,
             "shards": [{"folder": str(folder), "shard": manifest["shard"]} for folder, manifest, _ in shards]}
    context = RunContext(data, cpu, started, reward_notes, entry)
    return aggregate(config, tasks, units, {k: r for k, (_, r) in found.items()}, context,
                     where=lambda unit_id: str(found[unit_id][0] / f"{unit_id}.jsonl"),
                     kept="the shard folders are unchanged: merge them again")
