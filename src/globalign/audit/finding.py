"""Finding an audit's source files: a file, a folder searched recursively (regular files only: a FIFO,
socket or device would block the reader forever, so such entries are listed as skipped), or a Hugging
Face dataset id downloaded into the hub's cache. Reading them is sources.py's job."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from globalign.audit.sources import KNOWN_EXTENSIONS, file_kind, kind_or_none, not_regular
from globalign.errors import DataError, first_line

# Data-like files we cannot read: an error in a folder rather than a silent skip (README.md, LICENSE,
# .gitattributes and the like are skipped).
UNSUPPORTED_EXTENSIONS = (".arrow", ".feather", ".avro", ".orc", ".xlsx", ".xls", ".zst", ".bz2", ".xz", ".zip",
                          ".tar", ".lz4", ".gz", ".7z", ".h5", ".pkl", ".pickle")
# Metadata that `datasets` writes next to the data (save_to_disk, the hub's info files): not records.
NOT_DATA_FILES = frozenset({"dataset_info.json", "dataset_infos.json", "dataset_dict.json", "state.json"})
HUB_DATA_PATTERNS = ["*.jsonl", "*.ndjson", "*.json", "*.csv", "*.tsv", "*.parquet",
                     "*.jsonl.gz", "*.ndjson.gz", "*.json.gz", "*.csv.gz", "*.tsv.gz"]
HUB_IGNORE_PATTERNS = ["*dataset_info.json", "*dataset_infos.json", "*dataset_dict.json",
                       "state.json", "*/state.json"]

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(?:@[\w./-]+)?$")


@dataclass(frozen=True)
class Skipped:
    """An entry of a source folder that is not read, and why (a FIFO, a socket, a device, a broken link)."""

    path: str
    reason: str


@dataclass(frozen=True)
class Sources:
    files: list[Path]
    skipped: list[Skipped]


def source_files(source: str) -> list[Path]:
    """The data files of `source` (find_sources without the skipped entries)."""
    return find_sources(source).files


def find_sources(source: str) -> Sources:
    """The data files of `source`: a file, a folder (searched recursively, hidden entries skipped,
    sorted), or a Hugging Face dataset id `owner/name[@revision]` that is not a local path, whose data
    files are downloaded into the Hugging Face cache. Only regular files are read (symbolic links are
    followed); a folder's FIFOs, sockets, devices, broken links and links to folders are listed as
    skipped. DataError for a missing path, a source that is not a regular file or folder, a folder
    without data files, an unknown or unsupported file type, or a hub that cannot be reached."""
    path = Path(source).expanduser()
    if path.is_file():
        file_kind(path)
        return Sources([path], [])
    if path.is_dir():
        found = _data_files(path)
        if not found.files:
            also = f"; skipped {len(found.skipped)} that are not regular files" if found.skipped else ""
            raise DataError(f"{source}: no data files in this folder (looked for {KNOWN_EXTENSIONS}, also .gz{also})")
        return found
    if path.exists() or path.is_symlink():
        raise DataError(f"{source}: {not_regular(path)}, not a regular file or folder; "
                        "audit-data reads files only: save the data to a file first")
    if _HUB_ID.match(source) and not _looks_local(source):
        found = _data_files(_download(source))
        if not found.files:
            raise DataError(f"{source}: the Hugging Face dataset has no data files ({KNOWN_EXTENSIONS}, also .gz)")
        return found
    raise DataError(f"{source}: no such file or folder")


def _data_files(folder: Path) -> Sources:
    files: list[Path] = []
    skipped: list[Skipped] = []
    for root, dirs, names in os.walk(folder):
        for name in dirs:
            if not name.startswith(".") and (Path(root) / name).is_symlink():  # os.walk does not follow them
                skipped.append(Skipped(str(Path(root) / name), "a symbolic link to a folder (not followed)"))
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            path = Path(root) / name
            if name.startswith(".") or name.lower() in NOT_DATA_FILES:
                continue
            if not path.is_file():  # reading a FIFO, socket or device would wait forever or never end
                skipped.append(Skipped(str(path), not_regular(path)))
            elif kind_or_none(path) is not None:
                files.append(path)
            elif name.lower().endswith(UNSUPPORTED_EXTENSIONS):
                raise DataError(
                    f"{path}: unsupported data file type (supported: {KNOWN_EXTENSIONS}, .gz of a text kind); "
                    "convert it or move it out of the folder"
                )
    return Sources(sorted(files), sorted(skipped, key=lambda s: s.path))


def _looks_local(source: str) -> bool:
    """`data/train.jsonl` or `out/x` where `out` is a local folder: a missing path, not a hub id."""
    return kind_or_none(Path(source.split("@")[0])) is not None or Path(source.split("/")[0]).is_dir()


def _download(source: str) -> Path:
    from huggingface_hub import snapshot_download

    repo_id, _, revision = source.partition("@")
    try:
        folder = snapshot_download(
            repo_id, repo_type="dataset", revision=revision or None,
            allow_patterns=HUB_DATA_PATTERNS, ignore_patterns=HUB_IGNORE_PATTERNS,
        )
    except Exception as exc:  # offline, gated, missing: the hub client raises many types
        raise DataError(
            f"{source}: not a local file or folder, and the Hugging Face hub cannot provide it ({first_line(exc)}); "
            "the hub is unreachable or has no such dataset: pass a local file or folder instead"
        ) from exc
    return Path(folder)
