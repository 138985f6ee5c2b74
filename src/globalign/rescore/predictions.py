"""What a prediction reader returns, and how a re-scoring task plugs in."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from globalign.errors import DataError
from globalign.tasks.base import ComparisonRow, MetricRow, SampleRecord, TaskSettings


@dataclass(frozen=True)
class Predictions:
    """Per-item records for each model, read from prediction files."""

    records: dict[str, list[SampleRecord]]  # model name -> records
    files: dict[str, list[str]]  # model name -> the files its predictions came from
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Rescorer:
    # (predictions path, data folder for gold answers, **options): options are those named in `options`
    read: Callable[..., Predictions]
    metrics: Callable[[Mapping[str, Sequence[SampleRecord]], TaskSettings], list[MetricRow]]
    comparisons: Callable[
        [Mapping[str, Sequence[SampleRecord]], Sequence[tuple[str, str]], TaskSettings], list[ComparisonRow]
    ]
    formats: str  # one line for --help and errors: what files the reader accepts
    options: Mapping[str, str] = field(default_factory=dict)  # option name -> help (passed to `read`)


def prediction_files(path: Path, suffix: str) -> list[Path]:
    """`path` itself, or the `suffix` files directly in the folder `path`, sorted by name."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"--predictions {path}: no such file or folder")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() == suffix)
    if not files:
        raise DataError(f"--predictions {path}: no {suffix} files in this folder")
    return files


def model_from_column(rows: Sequence[tuple[str, Mapping[str, str]]], column: str, path: Path) -> str:
    """The one model name a prediction file's `column` holds (a file per model), else the file's stem."""
    names = {row.get(column, "").strip() for _, row in rows} - {""}
    if len(names) > 1:
        raise DataError(f"{path}: the {column} column holds {len(names)} different names; give one file per model")
    return names.pop() if names else path.stem
