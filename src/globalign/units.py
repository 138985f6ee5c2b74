"""A run as work units: one (model x task) pair each, planned in a fixed order, split into shards.

A unit is the grain of resume, of `--shard i/n` and of parallel workers: when a unit is done its
records are saved (store/unit_store.py), so a killed run, another machine or another GPU never redoes
it. Units are planned models-first in the config's order (each model's tasks in the config's order);
a reward model gets only the tasks that take one.

A unit's id names its model and task and hashes everything its records depend on (the model's
settings, the task and its options, limit, seed, prompt format, data folder, globalign's version):
a rerun with other settings never reuses a stale unit. The config hash covers the whole config but
its output folder and cache switch: shards of one run share it, and `globalign merge` requires it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from globalign import __version__
from globalign.config import RunConfig, TaskConfig
from globalign.errors import ConfigError
from globalign.models.resolve import ModelSpec

UNITS_FORMAT = 1  # bump when what a unit's records mean changes without a version change
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


def _digest(value: Any, length: int) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:length]


def model_json(spec: ModelSpec) -> dict[str, Any]:
    return {**vars(spec), "backend_options": dict(spec.backend_options)}


@dataclass(frozen=True)
class WorkUnit:
    """One model on one task."""

    model: ModelSpec
    task: TaskConfig
    key: str  # hash of what the unit's records depend on (see the module docstring)

    @property
    def id(self) -> str:
        """Stable and file-name safe: `<task>--<model>--<key>` (the model name cut to 60 characters)."""
        return f"{self.task.name}--{_SLUG.sub('_', self.model.name)[:60]}--{self.key}"

    @property
    def model_name(self) -> str:
        return self.model.name


def _accepts_reward_models(task: str) -> bool:
    """Reward models score (prompt, response) pairs: only the preference probes can use one."""
    from globalign.tasks.registry import TASKS

    return bool(getattr(TASKS.get(task), "accepts_reward_models", False))


def plan_units(config: RunConfig) -> list[WorkUnit]:
    """Every unit of the run, models first in the config's order, each model's tasks in the config's."""
    shared = {"format": UNITS_FORMAT, "version": __version__, "limit": config.limit, "seed": config.seed,
              "prompt_format": config.prompt_format, "data_dir": config.data_dir}
    units = []
    for spec in config.models:
        for task in config.tasks:
            if spec.is_reward_model and not _accepts_reward_models(task.name):
                continue
            key = _digest([shared, model_json(spec), task.name, task.options, task.limit], 12)
            units.append(WorkUnit(spec, task, key))
    return units


def config_hash(config: RunConfig) -> str:
    """What shards of one run share: the whole config but where it is written and whether it caches."""
    return config_json_hash(config.to_json())


def config_json_hash(data: dict[str, Any]) -> str:
    """config_hash of a config's `to_json()` (as a shard folder records it)."""
    kept = {k: v for k, v in data.items() if k not in ("output", "cache")}
    return _digest([UNITS_FORMAT, __version__, kept], 16)


# ---------------------------------------------------------------- shards: --shard i/n
@dataclass(frozen=True)
class ShardSpec:
    """Shard `index` of `count`, 1-based as written on the command line (`--shard 1/8` .. `8/8`)."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> ShardSpec:
    index, sep, count = text.strip().partition("/")
    if sep and index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count):
        return ShardSpec(int(index), int(count))
    raise ConfigError(f"--shard {text!r}: expected I/N with 1 <= I <= N, e.g. --shard 1/8 .. --shard 8/8 "
                      "(1-based)")


def shard_of(position: int, total: int, count: int) -> int:
    """The shard (1-based) that runs the unit at `position` of `total` planned units: shard i takes the
    i-th of `count` contiguous runs of the plan, their sizes differing by at most one. Contiguous, so a
    model's units mostly stay on one machine (each machine loads the model once)."""
    size, extra = divmod(total, count)
    # the first `extra` shards take size + 1 units
    cut = extra * (size + 1)
    return position // (size + 1) + 1 if position < cut else extra + (position - cut) // max(size, 1) + 1


def shard_units(units: Sequence[WorkUnit], shard: ShardSpec) -> list[WorkUnit]:
    return [u for i, u in enumerate(units) if shard_of(i, len(units), shard.count) == shard.index]


def by_model(units: Sequence[WorkUnit]) -> list[tuple[ModelSpec, list[WorkUnit]]]:
    """Units grouped by model, in plan order: what one worker loads once and runs."""
    groups: dict[str, tuple[ModelSpec, list[WorkUnit]]] = {}
    for unit in units:
        groups.setdefault(unit.model.name, (unit.model, []))[1].append(unit)
    return list(groups.values())
