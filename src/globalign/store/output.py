"""Output folders (the output contract in DESIGN.md), written all at once and replaced safely.

Files are written into a hidden sibling folder and swapped into place at the end, so an interrupted
or failed run never leaves a half-written output folder (resuming is the request cache's job).

An existing folder is replaced only when globalign wrote everything in it: its manifest.json carries
globalign's schema marker (`"schema": "globalign.run"` or `"globalign.audit"`, with `schema_version`)
and lists the files it wrote (`"output_files"`). A folder holding anything else, or a manifest.json of
somebody else's, is refused before any work starts, and the replace deletes only the listed files.
"""

from __future__ import annotations

import csv
import fnmatch
import glob
import json
import math
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from globalign.errors import GlobalignError, first_line
from globalign.records import (
    AUDIT_SCHEMA,
    AUDIT_SCHEMA_VERSION,
    RUN_SCHEMA_VERSION,
    SCHEMA,
    SHARD_SCHEMA,
    ComparisonRow,
    MetricRow,
    SampleRecord,
    sample_line,
)
from globalign.text_safety import spreadsheet_safe

MANIFEST = "manifest.json"
FILES_KEY = "output_files"  # the manifest's list of the files globalign wrote in the folder
# What a partial folder holds before its manifest is written (tables, records, maps, the demo's report).
_PARTIAL_FILES = ("*.csv", "*.jsonl", "*.png", "*.svg", "*.html", "*.json", "*.tmp")


@dataclass(frozen=True)
class FolderKind:
    schema: str  # the manifest's "schema" marker
    version: int  # and its "schema_version"
    what: str  # "run folder", for messages
    legacy_files: tuple[str, ...]  # name patterns written before the marker existed (globalign 0.1 folders)


RUN_FOLDER = FolderKind(SCHEMA, RUN_SCHEMA_VERSION, "run folder",
                        (MANIFEST, "metrics.csv", "comparisons.csv", "samples.jsonl", "map_*.png"))
AUDIT_FOLDER = FolderKind(AUDIT_SCHEMA, AUDIT_SCHEMA_VERSION, "audit folder",
                          (MANIFEST, "languages.csv", "countries.csv", "countries_by_role.csv", "metadata.csv",
                           "countries_map.png", "countries_map.svg"))
# a shard of a run (`run --shard i/n`): manifest.json and one <unit id>.jsonl per unit (store/unit_store.py)
# (its records are a run's, so it shares the run folders' schema version)
SHARD_FOLDER = FolderKind(SHARD_SCHEMA, RUN_SCHEMA_VERSION, "shard folder", ())
FOLDER_KINDS = (RUN_FOLDER, AUDIT_FOLDER, SHARD_FOLDER)


# ---------------------------------------------------------------- checks (before any work starts)
def check_output_dir(path: Path, kind: FolderKind = RUN_FOLDER) -> None:
    """Refuse, before any model runs, an output that could not be written or whose replacement would
    delete something globalign did not write. GlobalignError names the folder and the fix."""
    where = f"output {path}"
    resolved = path.expanduser().resolve()
    if path.name in ("", ".", "..") or resolved == Path(resolved.anchor) or Path.cwd().resolve().is_relative_to(resolved):
        raise GlobalignError(f"{where}: name a new folder to write (e.g. --output out/run1), not the current folder or one "
                             "above it")
    if path.exists() or path.is_symlink():
        if path.is_symlink() or not path.is_dir():
            raise GlobalignError(f"{where} exists and is not a folder (a file or a link); choose another --output")
        replaceable_files(path, kind)
    ancestor = path.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise GlobalignError(f"{where}: {ancestor} is a file, not a folder; choose another --output")
    _check_writable(ancestor, where)


def _check_writable(folder: Path, where: str) -> None:
    # A real write, not os.access: root passes os.access everywhere, yet a read-only mount still fails.
    try:
        handle, probe = tempfile.mkstemp(prefix=".globalign-probe-", dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise GlobalignError(f"{where}: cannot write in {folder} ({first_line(exc)}); choose another --output") from None


def _read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads((path / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def replaceable_files(path: Path, kind: FolderKind) -> list[str]:
    """The entries of an existing output folder, all of them globalign's own (listed by its manifest).
    GlobalignError when the folder holds anything else, or is not a globalign folder of this kind."""
    entries = sorted(os.listdir(path))
    if not entries:
        return []
    where = f"output {path}"
    manifest = _read_manifest(path)
    schema = manifest.get("schema") if manifest else None
    if manifest is not None and schema == kind.schema and isinstance(manifest.get(FILES_KEY), list):
        allowed = [f for f in manifest[FILES_KEY] if isinstance(f, str)] + [MANIFEST]
    elif manifest is not None and schema is None and "globalign_version" in manifest:
        allowed = list(kind.legacy_files)  # written by globalign 0.1, before the marker
    else:
        other = next((k for k in FOLDER_KINDS if manifest and schema == k.schema), None)
        if other is not None:
            raise GlobalignError(f"{where} is a globalign {other.what}, not a {kind.what}; choose another --output")
        raise GlobalignError(f"{where} exists and is not a globalign {kind.what} (its manifest.json is missing or "
                             "not globalign's); choose another --output, or empty the folder")
    foreign = [e for e in entries if not _is_own(path / e, allowed)]
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise GlobalignError(f"{where} holds {len(foreign)} entr{'y' if len(foreign) == 1 else 'ies'} that globalign "
                             f"did not write ({shown}); move them out or choose another --output (a {kind.what} is "
                             "replaced only when everything in it is globalign's)")
    return entries


def _is_own(entry: Path, allowed: Sequence[str]) -> bool:
    return (entry.is_file() and not entry.is_symlink()
            and any(fnmatch.fnmatchcase(entry.name, pattern) for pattern in allowed if "/" not in pattern))


# ---------------------------------------------------------------- writing
def _number(value: float) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else repr(float(value))


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return _number(value)
    return spreadsheet_safe(value) if isinstance(value, str) else value


def write_rows(path: Path, row_type: type, rows: Iterable[Any], columns: Sequence[str] | None = None) -> None:
    """A CSV of dataclass rows: every field in order, or `columns` only; floats written exactly (NaN as "");
    text cells a spreadsheet would run as a formula get a leading apostrophe (text_safety.spreadsheet_safe)."""
    names = list(columns) if columns else [f.name for f in fields(row_type)]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        for row in rows:
            values = asdict(row)
            writer.writerow([_cell(values[n]) for n in names])


def write_folder(path: Path, kind: FolderKind, manifest: dict[str, Any], write_files: Callable[[Path], None]) -> None:
    """Write a whole output folder: `write_files(work)` fills a hidden sibling folder, then the manifest
    (with the schema marker and the list of files) is written last, and the folder swapped into place."""
    check_output_dir(path, kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(path, kind)
    # mkdir (not mkdtemp, which is private: 0700) so the folder gets the user's usual permissions.
    work = path.parent / f".{path.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    work.mkdir()
    had = path.exists()
    try:
        write_files(work)
        files = sorted(p.name for p in work.iterdir() if p.name != MANIFEST)
        stamped = {"schema": kind.schema, "schema_version": kind.version, **manifest, FILES_KEY: files}
        (work / MANIFEST).write_text(json.dumps(stamped, indent=2, ensure_ascii=False, default=str) + "\n", "utf-8")
        swap_into_place(work, path, kind)
    except OSError as exc:  # a full disk, a file-size limit, a folder gone read-only
        before = "the previous folder is unchanged" if had else "nothing was written"
        raise GlobalignError(f"could not write the {kind.what} {path} ({first_line(exc)}); {before}") from exc
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def write_run_folder(
    path: Path,
    manifest: dict[str, Any],
    metrics: Sequence[MetricRow],
    comparisons: Sequence[ComparisonRow],
    samples: Iterable[SampleRecord],
    extra_files: Callable[[Path], None] | None = None,
) -> None:
    """The run folder of the output contract; `extra_files(work)` may add files (the demo's map)."""

    def write_files(work: Path) -> None:
        write_rows(work / "metrics.csv", MetricRow, metrics)
        write_rows(work / "comparisons.csv", ComparisonRow, comparisons)
        with (work / "samples.jsonl").open("w", encoding="utf-8") as handle:
            for record in samples:
                handle.write(sample_line(record))
        if extra_files is not None:
            extra_files(work)

    write_folder(path, RUN_FOLDER, manifest, write_files)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's process
        return True
    return True


def remove_stale_siblings(path: Path, kind: FolderKind) -> None:
    """What a globalign process killed while writing `path` left beside it: its hidden `.partial-PID-*`
    folder (globalign's files only) and, killed during the swap, the `.old-PID-*` folder of the folder it
    replaced. Only folders of processes that are gone; an `.old` folder loses only its own files."""
    for sibling in path.parent.glob(f".{glob.escape(path.name)}.*-*-*"):
        stage, _, rest = sibling.name[len(path.name) + 2:].partition("-")
        pid = rest.partition("-")[0]
        if stage not in ("partial", "old") or not pid.isdigit() or _alive(int(pid)) or not sibling.is_dir():
            continue
        try:
            own = replaceable_files(sibling, kind) if (sibling / MANIFEST).exists() else None
        except GlobalignError:
            continue  # not only globalign's files: never delete them
        if own is None and stage == "old":
            continue
        if own is None:  # a partial folder without its manifest yet: only the files globalign writes
            own = [e.name for e in sibling.iterdir() if _is_own(e, _PARTIAL_FILES)]
        for name in own:
            (sibling / name).unlink(missing_ok=True)
        try:
            sibling.rmdir()
        except OSError:
            pass


def swap_into_place(work: Path, path: Path, kind: FolderKind = RUN_FOLDER) -> None:
    """Move a finished `work` folder to `path`. An earlier folder is moved aside first (checked again:
    it may have changed during a long run), then only its globalign files are deleted."""
    if not path.exists():
        os.replace(work, path)
        return
    own = replaceable_files(path, kind)
    old = path.with_name(f".{path.name}.old-{os.getpid()}-{uuid.uuid4().hex[:12]}")
    os.replace(path, old)
    os.replace(work, path)
    for name in own:
        try:
            (old / name).unlink()
        except OSError:
            pass
    try:
        old.rmdir()
    except OSError:  # something was added between the check and the swap: keep it, never delete it
        print(f"globalign: warning: files added to {path} while globalign worked were kept in {old}",
              file=sys.stderr)
