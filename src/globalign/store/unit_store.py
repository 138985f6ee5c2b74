"""Where finished work units are kept: the work folder beside the output (resume), and shard folders.

The work folder is the hidden sibling `.NAME.units/` of the output folder `NAME`. Each finished unit
is two files there: `<unit id>.jsonl`, its records exactly as samples.jsonl will hold them, then
`<unit id>.unit.json`, the unit's manifest (the hash of the config that computed it, model info, engine
counts, seconds, the records' count and SHA-256). Each is written to a temporary name and renamed, the
manifest last: a unit counts as done only when its manifest is there and names the records file's hash,
so a kill at any point loses at most the units in flight. The work folder survives a killed or failed
run (a rerun skips its finished units) and is removed once the run folder (or the shard folder) is
written.

A shard folder (`run --shard i/n --output DIR`) is written like every output folder (store/output.py:
a hidden partial folder swapped into place): manifest.json (schema `globalign.shard`: the config, its
hash, the shard, and each unit's manifest) and one `<unit id>.jsonl` per unit.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from globalign.errors import GlobalignError
from globalign.records import SHARD_SCHEMA, SampleRecord, parse_samples, read_folder_manifest, sample_line
from globalign.store.output import SHARD_FOLDER, write_folder

RECORDS = ".jsonl"
MANIFEST = ".unit.json"


@dataclass(frozen=True)
class UnitResult:
    """A finished unit: its records as JSONL text and its manifest (`info`)."""

    unit_id: str
    lines: str
    info: dict[str, Any]

    @classmethod
    def of(cls, unit_id: str, records: Sequence[SampleRecord], info: Mapping[str, Any]) -> UnitResult:
        lines = "".join(sample_line(r) for r in records)
        return cls(unit_id, lines, {**info, "unit": unit_id, "records": len(records), "sha256": _sha256(lines)})

    def records(self, where: str) -> list[SampleRecord]:
        return parse_samples(self.lines.splitlines(), where)

    @property
    def model(self) -> str:
        return self.info["model"]

    @property
    def task(self) -> str:
        return self.info["task"]


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _checked(unit_id: str, lines: str, info: Any) -> UnitResult | None:
    """The unit when its manifest is one of this unit's and names these records' hash, else None."""
    if not isinstance(info, dict) or info.get("unit") != unit_id or info.get("sha256") != _sha256(lines):
        return None
    return UnitResult(unit_id, lines, info)


def work_folder(output: Path) -> Path:
    return output.parent / f".{output.name}.units"


class WorkFolder:
    """The finished units of a run in progress (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def beside(cls, output: Path) -> WorkFolder:
        return cls(work_folder(output))

    def finished(self, unit_ids: Iterable[str]) -> dict[str, UnitResult]:
        """The units of `unit_ids` finished earlier; a torn or foreign pair of files does not count."""
        done = {}
        for unit_id in unit_ids:
            try:
                info = json.loads((self.path / f"{unit_id}{MANIFEST}").read_text("utf-8"))
                lines = (self.path / f"{unit_id}{RECORDS}").read_text("utf-8")
            except (OSError, ValueError):  # missing, torn, not UTF-8: computed again
                continue
            result = _checked(unit_id, lines, info)
            if result is not None:
                done[unit_id] = result
        return done

    def save(self, result: UnitResult) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        _write_atomically(self.path / f"{result.unit_id}{RECORDS}", result.lines)
        _write_atomically(self.path / f"{result.unit_id}{MANIFEST}",
                          json.dumps(result.info, indent=1, ensure_ascii=False) + "\n")

    def holds_units(self) -> bool:
        return self.path.is_dir() and any(p.name.endswith(MANIFEST) for p in self.path.iterdir())

    def remove(self) -> None:
        """Delete globalign's files only; a folder that holds anything else is kept."""
        if not self.path.is_dir() or self.path.is_symlink():
            return
        for entry in self.path.iterdir():
            if entry.is_file() and entry.name.endswith((RECORDS, MANIFEST, ".tmp")):
                entry.unlink(missing_ok=True)
        try:
            self.path.rmdir()
        except OSError:
            pass


# ---------------------------------------------------------------- shard folders
def write_shard_folder(path: Path, manifest: dict[str, Any], results: Sequence[UnitResult]) -> None:
    def write_files(work: Path) -> None:
        for result in results:
            (work / f"{result.unit_id}{RECORDS}").write_text(result.lines, "utf-8")

    write_folder(path, SHARD_FOLDER, {**manifest, "units": {r.unit_id: r.info for r in results}}, write_files)


def read_shard_folder(path: Path) -> tuple[dict[str, Any], list[UnitResult]]:
    """A shard folder's manifest and its units, each checked against the hash its manifest records."""
    manifest = read_folder_manifest(path, SHARD_SCHEMA, "shard folder")
    units = manifest.get("units")
    if not isinstance(units, dict) or not isinstance(manifest.get("config_hash"), str):
        raise GlobalignError(f"{path}/manifest.json: no units or config hash (not written by this globalign?)")
    results = []
    for unit_id, info in units.items():
        file = path / f"{unit_id}{RECORDS}"
        try:
            lines = file.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise GlobalignError(f"{file}: unreadable ({type(exc).__name__}); the shard folder is incomplete "
                                 "(run its shard again)") from None
        result = _checked(unit_id, lines, info)
        if result is None:
            raise GlobalignError(f"{file}: does not match the SHA-256 in {path}/manifest.json (changed after it "
                                 "was written); run its shard again")
        results.append(result)
    return manifest, results

