"""What `globalign report` reads: run folders combined by task, and audit folders; every check of the
inputs happens here, before anything is drawn, so bad input is one line and no report.

Combining rule (docs/report.md): folders are combined by task. A task may come from several folders
when they hold different models (md3 of the base models in one folder, of the aligned ones in
another); the same (task, model) in two folders is an error, since the report could not say which
numbers it shows. A model named differently in two folders (the same fingerprint, or the same
source, under two names) is an error too: its comparisons would silently drop.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from globalign.errors import GlobalignError
from globalign.families import Comparison, Family
from globalign.records import (
    AUDIT_SCHEMA,
    ComparisonRow,
    MetricRow,
    Run,
    SampleRecord,
    TaskDeclaration,
    read_folder_manifest,
    read_run,
)
from globalign.report.intervention import read_intervention


@dataclass(frozen=True)
class TaskData:
    """One task's rows, from every folder that holds it."""

    declaration: TaskDeclaration
    metrics: list[MetricRow]
    comparisons: list[ComparisonRow]
    samples: list[SampleRecord]
    folders: tuple[Path, ...]

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(r.model for r in self.metrics))


@dataclass(frozen=True)
class AuditData:
    path: Path
    manifest: dict[str, Any]
    languages: list[dict[str, str]]
    countries: list[dict[str, str]]
    map_svg: str | None


@dataclass(frozen=True)
class ReportInputs:
    runs: list[Run]
    tasks: dict[str, TaskData]
    families: list[Family]
    comparisons: list[Comparison]
    audits: list[AuditData] = field(default_factory=list)
    interventions: list[dict[str, Any]] = field(default_factory=list)  # intervention.json of `intervene` runs

    @property
    def models(self) -> list[str]:
        """Every model, family stages first (in family order), then the rest in the order they appear."""
        staged = [m for f in self.families for m in f.models]
        rest = [m for t in self.tasks.values() for m in t.models]
        return list(dict.fromkeys([*staged, *rest]))


def _fallback_declaration(task: str) -> TaskDeclaration:
    """A task whose manifest declares nothing (an older or foreign task) is still shown, as its own axis."""
    return TaskDeclaration(task, task, task, "group", (), {})


def _model_identities(run: Run) -> dict[str, str]:
    """model name -> what identifies its weights (fingerprint, else source) as the manifest records it."""
    out = {}
    for entry in run.manifest.get("models") or []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            ident = entry.get("fingerprint") or entry.get("source")
            if isinstance(ident, str) and ident:
                out[entry["name"]] = ident
    return out


def _check_names(runs: Sequence[Run]) -> None:
    seen: dict[str, tuple[str, Path]] = {}
    for run in runs:
        for name, ident in _model_identities(run).items():
            if ident in seen and seen[ident][0] != name:
                other, where = seen[ident]
                raise GlobalignError(f"{run.path / 'manifest.json'}: model '{name}' is '{other}' in {where} (same "
                                     "weights under two names); rerun one of them with the same --model name")
            seen.setdefault(ident, (name, run.path))


def _combine(runs: Sequence[Run]) -> dict[str, TaskData]:
    owner: dict[tuple[str, str], Path] = {}
    tasks: dict[str, TaskData] = {}
    for run in runs:
        declared = run.declarations
        for task in run.tasks:
            metrics = [r for r in run.metrics if r.task == task]
            for model in dict.fromkeys(r.model for r in metrics):
                if (task, model) in owner:
                    raise GlobalignError(f"{run.path / 'metrics.csv'}: task '{task}' of model '{model}' is also in "
                                         f"{owner[(task, model)]}; give each (task, model) once")
                owner[(task, model)] = run.path
            decl = declared.get(task) or _fallback_declaration(task)
            comps = [r for r in run.comparisons if r.task == task]
            samples = [s for s in run.samples if s.task == task]
            if task in tasks:
                old = tasks[task]
                tasks[task] = TaskData(old.declaration, old.metrics + metrics, old.comparisons + comps,
                                       old.samples + samples, (*old.folders, run.path))
            else:
                tasks[task] = TaskData(decl, metrics, comps, samples, (run.path,))
    return tasks


def _families(runs: Sequence[Run]) -> tuple[list[Family], list[Comparison]]:
    families: dict[str, Family] = {}
    comparisons: dict[tuple[str, str], Comparison] = {}
    for run in runs:
        where = run.path / "manifest.json"
        try:
            for raw in run.manifest.get("families") or []:
                family = Family.from_json(raw)
                if family.name in families and families[family.name] != family:
                    # two folders with different stages under one family name: keep them apart
                    family = Family(f"{family.name} ({run.path.name})", family.stages)
                families.setdefault(family.name, family)
            for raw in run.manifest.get("comparisons") or []:
                comp = Comparison.from_json(raw)
                comparisons.setdefault(comp.pair, comp)
        except (KeyError, TypeError, AttributeError):
            raise GlobalignError(f"{where}: its 'families' or 'comparisons' are not globalign's (rerun the "
                                 "command that wrote the folder with this version)") from None
    return list(families.values()), list(comparisons.values())


def _csv_rows(path: Path, columns: Sequence[str]) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in columns if c not in (reader.fieldnames or [])]
            if missing:
                raise GlobalignError(f"{path}: no column {missing[0]!r} (not a globalign audit file)")
            return list(reader)
    except UnicodeDecodeError:
        raise GlobalignError(f"{path}: not UTF-8 text") from None


def read_audit(path: Path) -> AuditData:
    """An `audit-data` folder: its language and country tables and its map."""
    manifest = read_folder_manifest(path, AUDIT_SCHEMA, "audit folder")
    languages = _csv_rows(path / "languages.csv", ("language", "role", "count", "share", "rule"))
    if not languages and not (path / "languages.csv").is_file():
        raise GlobalignError(f"{path / 'languages.csv'}: missing; the audit folder is incomplete")
    countries = _csv_rows(path / "countries.csv", ("country", "count", "share"))
    svg_file = path / "countries_map.svg"
    svg = svg_file.read_text("utf-8") if svg_file.is_file() else None
    if svg is not None and not svg.lstrip().startswith("<svg"):
        raise GlobalignError(f"{svg_file}: not an SVG map written by globalign")
    return AuditData(path, manifest, languages, countries, svg)


def read_inputs(run_dirs: Sequence[Path], audit_dirs: Sequence[Path] = ()) -> ReportInputs:
    """Read and check every folder; GlobalignError (one line, naming the file) on anything unusable."""
    if not run_dirs:
        raise GlobalignError("give at least one run folder")
    resolved = [p.resolve() for p in run_dirs]
    for i, p in enumerate(resolved):
        if p in resolved[:i]:
            raise GlobalignError(f"{run_dirs[i]}: given twice")
    runs, interventions = [], []
    for path in run_dirs:
        try:
            runs.append(read_run(Path(path)))
        except GlobalignError:
            if Path(path).is_dir() and _is_audit(Path(path)):
                raise GlobalignError(f"{path}: an audit folder; pass it with --audit") from None
            raise
        found = read_intervention(Path(path))
        if found is not None:
            interventions.append(found)
    audits = [read_audit(Path(a)) for a in audit_dirs]
    given = {a.path.resolve() for a in audits}
    for manifest in interventions:  # each arm's mix audit, when its folder is still there
        for arm in manifest["arms"].values():
            folder = Path(str((arm.get("audit") or {}).get("folder", "")))
            if folder.name and folder.is_dir() and folder.resolve() not in given:
                audits.append(read_audit(folder))
                given.add(folder.resolve())
    return combine_runs(runs, audits, interventions)


def combine_runs(runs: Sequence[Run], audits: Sequence[AuditData] = (),
                 interventions: Sequence[dict[str, Any]] = ()) -> ReportInputs:
    """Runs already read (the demo's, while its folder is written) combined by task, and checked."""
    _check_names(runs)
    tasks = _combine(runs)
    if not tasks:
        raise GlobalignError(f"{runs[0].path / 'metrics.csv'}: no metric rows; nothing to report")
    families, comparisons = _families(runs)
    return ReportInputs(list(runs), tasks, families, comparisons, list(audits), list(interventions))


def _is_audit(path: Path) -> bool:
    try:
        read_folder_manifest(path, AUDIT_SCHEMA, "audit folder")
    except GlobalignError:
        return False
    return True
