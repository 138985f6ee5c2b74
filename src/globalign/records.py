"""The rows a run produces (no protocol here): per-item records, metric rows and paired comparisons,
what each task declares about itself for readers, and `read_run`, which loads a run folder back.

The store, the console and the report read runs through this module and never import a task: a task
declares its axis, its groups, its headline metrics and their units (`TaskDeclaration`), the run's
manifest records the declarations, and readers take them from there.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from globalign.errors import GlobalignError
from globalign.text_safety import from_spreadsheet_safe

SCHEMA = "globalign.run"  # the manifest marker of a run folder (store/output.py writes it)
SHARD_SCHEMA = "globalign.shard"  # and of a shard folder (`run --shard i/n`; store/unit_store.py)
AUDIT_SCHEMA = "globalign.audit"  # and of an audit-data folder
# Run folders: version 2 keeps per-item metrics flat (`SampleRecord`); version 1 nested per-group
# values, and is upgraded on read. Audit folders have had one version.
RUN_SCHEMA_VERSION = 2
AUDIT_SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = (1, RUN_SCHEMA_VERSION)
GROUP_SEPARATOR = "@"


def group_metric_key(metric: str, group: str) -> str:
    """The flat per-item metric key of one group's value: ("similarity", "Nigeria") -> "similarity@Nigeria"."""
    return f"{metric}{GROUP_SEPARATOR}{group}"


def split_group_metric_key(key: str) -> tuple[str, str | None]:
    """"similarity@Nigeria" -> ("similarity", "Nigeria"); a key without a group -> (key, None)."""
    metric, separator, group = key.partition(GROUP_SEPARATOR)
    return (metric, group) if separator else (key, None)


def group_metric_values(metrics: dict[str, float], metric: str) -> dict[str, float]:
    """One per-group metric of an item: group -> value, in the record's order (absent groups left out)."""
    prefix = metric + GROUP_SEPARATOR
    return {key[len(prefix):]: value for key, value in metrics.items() if key.startswith(prefix)}


@dataclass(frozen=True)
class SampleRecord:
    """One row of samples.jsonl: one item scored by one model.

    `metrics` is flat for every task: metric name -> finite float. A metric with one value per group of
    the item (a similarity per country) is stored under `group_metric_key(metric, group)`, e.g.
    "similarity@Nigeria"; an undefined value (NaN) is absent. Anything else (gold answers, the kind of
    a probe's scores, raw NLLs) goes to `extra`.
    """

    task: str
    model: str
    item_id: str
    group: str
    prompt_hash: str
    prediction: str
    distribution: list[float] | None
    metrics: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MetricRow:
    task: str
    model: str
    group: str
    metric: str
    value: float
    ci_low: float
    ci_high: float
    n: int


@dataclass(frozen=True)
class ComparisonRow:
    task: str
    group: str
    metric: str
    model_a: str
    model_b: str
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float
    test: str
    n: int


@dataclass(frozen=True)
class TaskDeclaration:
    """What a task says about itself so that readers need not know it: its axis of the study, what its
    groups are, which metrics answer its question (first = the headline), their unit, and which
    direction is better."""

    task: str
    axis: str  # dialects | languages | opinions | country preferences
    title: str
    group_kind: str  # dialect | language | country | gallup list
    headline_metrics: tuple[str, ...]
    units: dict[str, str]  # metric -> "fraction" | "rank" | "nats" | "correlation" | "reward"
    headline_groups: tuple[str, ...] = ()  # the groups a short summary shows (empty: all)
    higher_is_better: dict[str, bool] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "headline_metrics": list(self.headline_metrics),
                "headline_groups": list(self.headline_groups)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskDeclaration:
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["headline_metrics"] = tuple(values.get("headline_metrics", ()))
        values["headline_groups"] = tuple(values.get("headline_groups", ()))
        return cls(**values)


@dataclass(frozen=True)
class Run:
    """A run folder read back: what `globalign report` and other readers work from."""

    path: Path
    manifest: dict[str, Any]
    metrics: list[MetricRow]
    comparisons: list[ComparisonRow]
    samples: list[SampleRecord]

    @property
    def declarations(self) -> dict[str, TaskDeclaration]:
        out = {}
        for name, task in (self.manifest.get("tasks") or {}).items():
            if isinstance(task, dict) and isinstance(task.get("declaration"), dict):
                out[name] = TaskDeclaration.from_json(task["declaration"])
        return out

    @property
    def tasks(self) -> list[str]:
        return list(dict.fromkeys([*(self.manifest.get("tasks") or {}), *(r.task for r in self.metrics)]))


def _float(text: str, where: str) -> float:
    if text == "":
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise GlobalignError(f"{where}: not a number ({text[:30]!r})") from None


def _rows(path: Path, row_type: type) -> list[Any]:
    if not path.is_file():
        raise GlobalignError(f"{path}: missing; the run folder is incomplete (rerun the command that wrote it)")
    names = [f.name for f in fields(row_type)]
    kinds = {f.name: f.type for f in fields(row_type)}
    rows = []
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header != names:
                raise GlobalignError(f"{path}: columns {header} are not {names} (not a globalign file, or another "
                                     "version's)")
            for lineno, cells in enumerate(reader, 2):
                where = f"{path}:{lineno}"
                if len(cells) != len(names):
                    raise GlobalignError(f"{where}: {len(cells)} fields, expected {len(names)}")
                values: dict[str, Any] = {}
                for name, cell in zip(names, cells):
                    kind = kinds[name]
                    if kind == "float":
                        values[name] = _float(cell, where)
                    elif kind == "int":
                        values[name] = int(_float(cell, where)) if cell else 0
                    else:
                        values[name] = from_spreadsheet_safe(cell)
                rows.append(row_type(**values))
    except UnicodeDecodeError:
        raise GlobalignError(f"{path}: not UTF-8 text") from None
    return rows


# Version-1 country probes kept {"kind": "reward" | "lm_nll", "values": {country: value}}; the flat
# metric is named as its metrics.csv rows are (tasks/country_preference.py raw_metric).
_V1_PROBE_METRICS = {"reward": "reward", "lm_nll": "nll_mean"}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def upgrade_v1_sample(row: dict[str, Any]) -> dict[str, Any]:
    """A version-1 samples.jsonl row in the version-2 shape: nested per-group values become
    "<metric>@<group>" keys (None and NaN left out), a probe's `kind` moves to extra["probe_kind"]."""
    metrics, extra = row.get("metrics"), dict(row.get("extra") or {})
    if not isinstance(metrics, dict):
        return row
    flat: dict[str, Any] = {}
    for name, value in metrics.items():
        if name == "kind" and isinstance(value, str):
            extra["probe_kind"] = value
        elif isinstance(value, dict):
            metric = _V1_PROBE_METRICS.get(metrics.get("kind"), name) if name == "values" else name
            flat.update((group_metric_key(metric, group), v) for group, v in value.items() if _number(v))
        elif isinstance(value, bool) or _number(value):
            flat[name] = float(value)
    return {**row, "metrics": flat, "extra": extra}


def sample_line(record: SampleRecord) -> str:
    """One line of samples.jsonl (and of a work unit's records): the same bytes wherever it is written."""
    return json.dumps(record.to_json(), ensure_ascii=False, allow_nan=False) + "\n"


def parse_samples(lines: Iterable[str], where: str, version: int = RUN_SCHEMA_VERSION) -> list[SampleRecord]:
    """Sample records from JSONL lines of a folder of schema `version` (version 1 is upgraded); `where`
    names the file in errors (with the line number)."""
    records = []
    names = [f.name for f in fields(SampleRecord)]
    for lineno, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise GlobalignError(f"{where}:{lineno}: malformed JSON ({exc})") from None
        if not isinstance(row, dict) or not set(names[:-1]) <= set(row):
            raise GlobalignError(f"{where}:{lineno}: not a globalign sample record")
        if version == 1:
            row = upgrade_v1_sample(row)
        metrics = row["metrics"]
        if not isinstance(metrics, dict) or not all(_number(v) for v in metrics.values()):
            raise GlobalignError(f"{where}:{lineno}: metrics must map names to finite numbers "
                                 f"(run folder schema version {version})")
        row["metrics"] = {k: float(v) for k, v in metrics.items()}
        records.append(SampleRecord(**{k: row[k] for k in names if k in row}))
    return records


def _samples(path: Path, version: int) -> list[SampleRecord]:
    if not path.is_file():
        return []  # a run may be read without its per-item records (they are large)
    try:
        with path.open(encoding="utf-8") as handle:
            return parse_samples(handle, str(path), version)
    except UnicodeDecodeError:
        raise GlobalignError(f"{path}: not UTF-8 text") from None


def read_folder_manifest(path: Path, schema: str, what: str) -> dict[str, Any]:
    """The manifest of a globalign output folder of one kind (`schema`, e.g. "globalign.audit"), checked to
    be globalign's; `what` names the kind in messages ("audit folder")."""
    if not path.is_dir():
        raise GlobalignError(f"{path}: no such {what}")
    file = path / "manifest.json"
    try:
        manifest = json.loads(file.read_text("utf-8"))
    except FileNotFoundError:
        raise GlobalignError(f"{path}: not a globalign {what} (no manifest.json)") from None
    except (ValueError, OSError) as exc:
        raise GlobalignError(f"{file}: unreadable ({type(exc).__name__})") from None
    if not isinstance(manifest, dict) or manifest.get("schema") != schema:
        found = manifest.get("schema") if isinstance(manifest, dict) else None
        raise GlobalignError(f"{path}: not a globalign {what} "
                             f"({'a ' + str(found) + ' folder' if found else 'no ' + schema + ' schema'})")
    return manifest


def read_manifest(path: Path) -> dict[str, Any]:
    """A run folder's manifest, checked to be globalign's and of a version this code reads."""
    manifest = read_folder_manifest(path, SCHEMA, "run folder")
    version = manifest.get("schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise GlobalignError(f"{path}: run folder schema version {version!r}; this globalign reads "
                             f"{', '.join(map(str, SUPPORTED_SCHEMA_VERSIONS))} (rerun it with this version)")
    return manifest


def read_run(path: Path, *, samples: bool = True) -> Run:
    """Load a run folder (the output contract) back into typed rows; GlobalignError names what is wrong."""
    return read_rows(path, read_manifest(path), samples=samples)


def read_rows(path: Path, manifest: dict[str, Any], *, samples: bool = True, name: Path | None = None) -> Run:
    """A run's rows from the files in `path`, with a manifest already in hand (a folder still being written
    has none on disk yet, and no schema version: the current one); `name`: the path the Run reports
    (default `path`). Samples of an older schema version are upgraded to the current shape."""
    version = manifest.get("schema_version", RUN_SCHEMA_VERSION)
    return Run(name or path, manifest, _rows(path / "metrics.csv", MetricRow),
               _rows(path / "comparisons.csv", ComparisonRow),
               _samples(path / "samples.jsonl", version) if samples else [])
