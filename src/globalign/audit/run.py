"""`globalign audit-data SOURCE --output DIR`: plan shards, count them on an engine, save each
finished shard's tallies to a progress file (a killed audit resumes from it), then write the audit
folder all at once: languages.csv, countries.csv, countries_by_role.csv, metadata.csv, manifest.json,
and a world map of country mentions."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import resource
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from globalign import __version__
from globalign.audit.analyse import ShardJob
from globalign.audit.bounded_json import MAX_NESTING
from globalign.audit.counts import AuditCounts
from globalign.audit.engines import ENGINES, run_local, run_ray
from globalign.audit.finding import Skipped, find_sources
from globalign.audit.formats import FieldNames, detect_format
from globalign.audit.gazetteer import gazetteer_version
from globalign.audit.langid import MAX_CHARS, identifier_versions
from globalign.audit.records import MAX_MESSAGE_CHARS
from globalign.audit.sources import plan_shards, read_shard
from globalign.audit.tables import (
    CountryRow,
    LanguageRow,
    MetadataRow,
    country_rows,
    language_rows,
    metadata_rows,
    non_english_share,
    summary_lines,
)
from globalign.errors import ConfigError, DataError, GlobalignError, first_line
from globalign.store.output import AUDIT_FOLDER, check_output_dir, write_folder, write_rows
from globalign.threads import cpu_at_start, warn_if_busy

PROGRESS_VERSION = 2  # 2: counts carry truncated_messages


@dataclass(frozen=True)
class AuditOptions:
    source: str
    output: Path
    fields: FieldNames = field(default_factory=FieldNames)
    engine: str = "local"
    workers: int | None = None  # default: the usable CPUs (affinity mask, cgroup quota)
    ray_address: str | None = None
    rows_per_shard: int = 2000
    countries: bool = True
    world_map: bool = True
    restart: bool = False  # ignore a saved progress file
    progress: bool = True


@dataclass
class AuditResult:
    output: Path
    counts: AuditCounts
    summary: list[str]
    resumed_shards: int
    seconds: float


def check_audit_output(path: Path) -> None:
    check_output_dir(path, AUDIT_FOLDER)


def _progress_dir(output: Path) -> Path:
    return output.parent / f".{output.name}.audit-progress"


def _plan(options: AuditOptions) -> tuple[list[Path], list[ShardJob], dict[str, str], list[Skipped]]:
    # An audit folder (or its progress) inside the source folder is not data: a rerun would read it.
    ours = [options.output.resolve(), _progress_dir(options.output).resolve()]
    found = find_sources(options.source)
    files = [f for f in found.files if not any(f.resolve().is_relative_to(o) for o in ours)]
    if not files:
        raise DataError(f"{options.source}: no data files besides the audit's own output")
    shards = plan_shards(files, rows_per_shard=options.rows_per_shard)
    formats: dict[str, str] = {}
    jobs = []
    for shard in shards:
        if shard.path not in formats:
            formats[shard.path] = _file_format(shard.path, shards, options.fields)
        if formats[shard.path]:
            jobs.append(ShardJob(shard, formats[shard.path], options.fields, options.countries))
    if not jobs:
        raise DataError(f"{options.source}: no records in {len(files)} file(s)")
    return files, jobs, formats, found.skipped


def _file_format(path: str, shards, names: FieldNames) -> str:
    """The record format of a file, from its first row ("" for a file without rows)."""
    if names.format:
        return names.format
    first = next(s for s in shards if s.path == path)
    for locator, row in read_shard(first):
        return detect_format(row, locator, names)
    return ""


def _fingerprint(options: AuditOptions, files: list[Path]) -> str:
    """What the saved progress is valid for: the same files (size, mtime), shard plan and labelling."""
    # the engine too: the local engine saves chunks of unsplittable files, Ray whole files
    parts: list[Any] = [PROGRESS_VERSION, __version__, options.engine, options.rows_per_shard, asdict(options.fields),
                        options.countries, identifier_versions(), MAX_CHARS, MAX_MESSAGE_CHARS, MAX_NESTING,
                        gazetteer_version()]
    for path in files:
        stat = path.stat()
        parts.append([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class _Progress:
    """done.jsonl: one line per finished shard, {"key", "counts"}; a torn last line (a kill while
    writing) is ignored on resume, so at most the shards in flight are counted again."""

    def __init__(self, folder: Path, fingerprint: str, restart: bool) -> None:
        self.folder = folder
        self.done: dict[str, AuditCounts] = {}
        plan = folder / "plan.json"
        if folder.exists() and (restart or _saved_fingerprint(plan) != fingerprint):
            shutil.rmtree(folder)
        # made by this audit (not kept from an interrupted one): removed again if the audit fails
        self.created = not folder.exists()
        self.path = folder / "done.jsonl"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            plan.write_text(json.dumps({"fingerprint": fingerprint}) + "\n", "utf-8")
            if self.path.is_file():
                for line in self.path.read_text("utf-8", errors="replace").splitlines():
                    try:
                        entry = json.loads(line)
                        self.done[entry["key"]] = AuditCounts.from_json(entry["counts"])
                    except (ValueError, KeyError, TypeError):
                        continue
            self._handle = self.path.open("a", encoding="utf-8")
        except Exception:
            if self.created:
                shutil.rmtree(folder, ignore_errors=True)
            raise

    def save(self, key: str, counts: AuditCounts) -> None:
        self._handle.write(json.dumps({"key": key, "counts": counts.to_json()}, ensure_ascii=False) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.done[key] = counts

    def close(self) -> None:
        self._handle.close()

    def discard_if_created(self) -> None:
        self.close()
        if self.created:
            shutil.rmtree(self.folder, ignore_errors=True)


def _saved_fingerprint(plan: Path) -> str | None:
    try:
        return json.loads(plan.read_text("utf-8")).get("fingerprint")
    except (OSError, ValueError, AttributeError):  # missing or damaged: the progress is not reused
        return None


def _peak_rss_mb() -> dict[str, float]:
    # ru_maxrss is in KiB on Linux; "children" is the largest finished worker process
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"main_process": round(own, 1), "largest_worker": round(children, 1)}


def _count(options: AuditOptions, jobs: list[ShardJob], workers: int,
           progress: _Progress) -> tuple[AuditCounts, list[str], int, float]:
    """The tallies of all jobs (resumed ones from `progress`, the rest counted and saved there), the
    resumed keys, the messages counted now, and the seconds counting took."""
    planned = {job.shard.key for job in jobs}
    # saved units of this plan: whole shards, and chunks ("<shard key>@<n>") of files read in one piece
    resumed = [key for key in progress.done if key in planned or key.rpartition("@")[0] in planned]
    total = AuditCounts()
    for key in resumed:
        total.add(progress.done[key])
    counting_started = time.perf_counter()
    new_messages = 0
    try:
        if options.engine == "ray":
            todo = [job for job in jobs if job.shard.key not in progress.done]
            results = run_ray(todo, address=options.ray_address, workers=workers)
        else:
            results = run_local(jobs, workers, done=set(resumed), chunk_rows=options.rows_per_shard)
        # Records are known up front when every file is JSONL split by lines (a Parquet shard's range
        # is of row groups, and the other kinds are read in one piece).
        known = all(job.shard.kind == "jsonl" and job.shard.stop >= 0 for job in jobs)
        rows = sum(job.shard.stop - job.shard.start for job in jobs) if known else None
        with tqdm(total=rows, initial=total.records, unit=" records", desc="auditing", file=sys.stderr,
                  disable=not options.progress, dynamic_ncols=True, unit_scale=True) as bar:
            for key, counts in results:
                progress.save(key, counts)
                total.add(counts)
                new_messages += counts.messages
                rate = new_messages / max(1e-9, time.perf_counter() - counting_started)
                bar.set_postfix_str(f"{total.messages:,} messages, {rate:,.0f} msg/s")
                bar.update(counts.records)
    finally:
        progress.close()
    return total, resumed, new_messages, time.perf_counter() - counting_started


def audit(options: AuditOptions) -> AuditResult:
    if options.engine not in ENGINES:
        raise ConfigError(f"unknown engine '{options.engine}'; use one of {', '.join(ENGINES)}")
    if options.rows_per_shard < 1:
        raise ConfigError(f"--rows-per-shard must be at least 1, got {options.rows_per_shard}")
    started = time.perf_counter()
    cpu = cpu_at_start()
    check_audit_output(options.output)
    files, jobs, formats, skipped = _plan(options)
    workers = options.workers or cpu.usable_cpus
    warn_if_busy(cpu)
    progress = _Progress(_progress_dir(options.output), _fingerprint(options, files), options.restart)
    try:
        total, resumed, new_messages, counting_seconds = _count(options, jobs, workers, progress)
    except Exception:  # a bad record, an unreadable file, a bug: leave nothing of this audit behind
        progress.discard_if_created()
        raise
    # An interruption (KeyboardInterrupt, SystemExit, a kill) is no Exception: the progress stays and
    # the rerun resumes.
    manifest = {
        "globalign_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": sys.argv,
        "source": options.source,
        "files": [{"path": str(p), "record_format": formats.get(str(p), ""),
                   "records": sum(n for (path, _), n in total.formats.items() if path == str(p))} for p in files],
        "fields": asdict(options.fields),
        "engine": options.engine,
        "workers": None if options.engine == "ray" and options.ray_address else workers,  # a cluster sizes itself
        "ray_address": options.ray_address,
        "shards": {"total": len(jobs), "resumed": len(resumed), "rows_per_shard": options.rows_per_shard},
        "records": total.records,
        "empty_records": total.empty_records,
        "messages": total.messages,
        "characters": total.characters,
        "truncated_messages": total.truncated_messages,
        "limits": {"max_message_chars": MAX_MESSAGE_CHARS, "max_nesting": MAX_NESTING},
        "skipped": [asdict(entry) for entry in skipped],
        "non_english_share": {rule: non_english_share(total, rule) for rule in ("agree", "cld2", "py3langid")},
        "metadata_fields": sorted({name for name, _ in total.metadata}),
        "identifiers": {**identifier_versions(), "max_chars": MAX_CHARS},
        "gazetteer": gazetteer_version() if options.countries else None,
        "rules": {"agree": "both identifiers name the same language (the study's rule); share of agreed messages",
                  "cld2/py3langid": "one identifier alone; share of all messages in the role",
                  "dropped_<identifier>": "labelled by that identifier, dropped by the agreement rule; "
                                          "share of the identifier's own count for the language"},
        "seconds": {"total": round(time.perf_counter() - started, 3), "counting": round(counting_seconds, 3)},
        "messages_per_second": round(new_messages / counting_seconds, 1) if counting_seconds > 0 and new_messages else None,
        "peak_rss_mb": _peak_rss_mb(),
        "machine": {"platform": platform.platform(), "cpus": cpu.usable_cpus},
        "cpu": asdict(cpu),
    }
    summary = summary_lines(total) + _limit_lines(total, skipped)
    try:
        _write_folder(options, total, manifest)
    except (OSError, GlobalignError) as exc:  # the counting is done: keep it for the rerun
        raise GlobalignError(f"{first_line(exc)}; the counts are saved in {progress.folder}: "
                             "rerun the same command to write the audit folder without counting again") from exc
    shutil.rmtree(progress.folder, ignore_errors=True)
    return AuditResult(options.output, total, summary, len(resumed), time.perf_counter() - started)


def _limit_lines(counts: AuditCounts, skipped: list[Skipped]) -> list[str]:
    """Summary lines for what the audit did not read in full: long messages, and skipped entries."""
    lines = []
    if counts.truncated_messages:
        lines.append(f"truncated: {counts.truncated_messages:,} message(s) longer than {MAX_MESSAGE_CHARS:,} "
                     "characters were read up to that length")
    if skipped:
        shown = "; ".join(f"{entry.path} ({entry.reason})" for entry in skipped[:5])
        more = f"; ... ({len(skipped) - 5} more in manifest.json)" if len(skipped) > 5 else ""
        lines.append(f"skipped {len(skipped)} entr{'y' if len(skipped) == 1 else 'ies'} that are not regular files: "
                     f"{shown}{more}")
    return lines


def _write_folder(options: AuditOptions, counts: AuditCounts, manifest: dict[str, Any]) -> None:
    def write_files(work: Path) -> None:
        write_rows(work / "languages.csv", LanguageRow, language_rows(counts))
        countries = country_rows(counts)
        write_rows(work / "countries.csv", CountryRow, [r for r in countries if r.role == "all"],
                    ["country", "count", "share", "alpha3", "per_1000_messages"])
        write_rows(work / "countries_by_role.csv", CountryRow, countries,
                    ["role", "country", "count", "share", "alpha3", "per_1000_messages"])
        write_rows(work / "metadata.csv", MetadataRow, metadata_rows(counts))
        manifest["map"] = _draw_map(work, countries) if options.world_map else None

    write_folder(options.output, AUDIT_FOLDER, manifest, write_files)


def _draw_map(folder: Path, countries: list[CountryRow]) -> dict[str, Any] | None:
    values = {r.country: r.per_1000_messages for r in countries if r.role == "all"}
    if not values:
        return None
    from globalign.report.maps import choropleth

    result = choropleth(values, title="Country mentions per 1,000 messages", label="mentions per 1,000 messages",
                        output_png=folder / "countries_map.png", cmap="viridis")
    (folder / "countries_map.svg").write_text(result.svg_text, "utf-8")
    return {"png": "countries_map.png", "svg": "countries_map.svg", "unmatched": result.unmatched}
