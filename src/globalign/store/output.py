"""The run folder (the output contract in DESIGN.md), written all at once.

Files are written into a hidden sibling folder and swapped into place at the end, so an interrupted
or failed run never leaves a half-written output folder (resuming is the request cache's job).
"""

from __future__ import annotations

import csv
import glob
import json
import math
import os
import shutil
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from globalign.errors import GlobalignError
from globalign.tasks.base import ComparisonRow, MetricRow, SampleRecord

MANIFEST = "manifest.json"


def check_output_dir(path: Path) -> None:
    """Refuse early (before any model runs) to replace a folder that is not a globalign output."""
    if path.exists() and (not path.is_dir() or (any(path.iterdir()) and not (path / MANIFEST).is_file())):
        raise GlobalignError(f"output {path} exists and is not a globalign run folder; choose another --output")


def _number(value: float) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else repr(float(value))


def write_rows(path: Path, row_type: type, rows: Iterable[Any], columns: Sequence[str] | None = None) -> None:
    """A CSV of dataclass rows: every field in order, or `columns` only; floats written exactly (NaN as "")."""
    names = list(columns) if columns else [f.name for f in fields(row_type)]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        for row in rows:
            values = asdict(row)
            writer.writerow([_number(values[n]) if isinstance(values[n], float) else values[n] for n in names])


def write_run_folder(
    path: Path,
    manifest: dict[str, Any],
    metrics: Sequence[MetricRow],
    comparisons: Sequence[ComparisonRow],
    samples: Iterable[SampleRecord],
) -> None:
    check_output_dir(path)
    work = partial_folder(path)
    try:
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n", "utf-8")
        write_rows(work / "metrics.csv", MetricRow, metrics)
        write_rows(work / "comparisons.csv", ComparisonRow, comparisons)
        with (work / "samples.jsonl").open("w", encoding="utf-8") as handle:
            for record in samples:
                handle.write(json.dumps(record.to_json(), ensure_ascii=False, allow_nan=False) + "\n")
        swap_into_place(work, path)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def partial_folder(path: Path) -> Path:
    """A new hidden sibling of `path` to write it in, named with this process's id. The siblings a
    process killed while writing left (`.NAME.partial-PID-*`, `.NAME.old-PID`: PID no longer runs)
    are removed first, so that they do not pile up over killed runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for leftover in [*path.parent.glob(f".{glob.escape(path.name)}.partial-*"),
                     *path.parent.glob(f".{glob.escape(path.name)}.old-*")]:
        pid = leftover.name[len(path.name) + 2:].split("-")[1]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)
    # mkdir (not mkdtemp, which is private: 0700) so the folder gets the user's usual permissions.
    work = path.parent / f".{path.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    work.mkdir()
    return work


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def swap_into_place(work: Path, path: Path) -> None:
    """Move a finished `work` folder to `path`, replacing an earlier one only once the new one is there."""
    if path.exists():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        os.replace(path, old)
        os.replace(work, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(work, path)
