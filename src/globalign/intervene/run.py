"""`globalign intervene`: build each arm's mix -> audit it -> fine-tune the base with LoRA -> measure base and
arms as families on held-out items -> one folder with the report.

The intervention folder:
    intervention.json          what was done: config, split, each arm's mix, audit, training and stage times
    arms/<arm>/mix.jsonl       the arm's training examples (mix_chat.jsonl: the same, as audit-data reads them)
    arms/<arm>/audit/          the audit-data folder of the mix
    arms/<arm>/losses.jsonl    the training loss per step
    adapters/<arm>/            the trained LoRA adapter (a model spec everywhere: `run --model` takes it)
    run/                       the evaluation run folder (metrics, comparisons, samples, report.html)

Training happens in the cache (`~/.cache/globalign/adapters/<key>`, key = base content x mix x recipe x library
versions): a killed run resumes from its last checkpoint, and a rerun with the same config reuses the adapter.
Every stage is resumable; a rerun of a finished intervention recomputes nothing but the report.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from globalign import __version__
from globalign.data.locate import resolve_data_dir
from globalign.errors import GlobalignError
from globalign.intervene.config import InterventionConfig
from globalign.intervene.mix import Mix, build_mix, write_mix
from globalign.intervene.train import (
    RESULT_FILE,
    TrainResult,
    adapter_key,
    first_step_warning,
    train_adapter,
    training_versions,
)
from globalign.models.adapter import write_adapter_sidecar
from globalign.models.fingerprint import folder_sha256
from globalign.models.resolve import LocatedModel, locate_model
from globalign.paths import cache_dir
from globalign.store.atomic import write_json_atomically, write_text_atomically

MANIFEST = "intervention.json"
SCHEMA = "globalign.intervention"
SCHEMA_VERSION = 1
REPORT = "report.html"


@dataclass
class ArmOutcome:
    name: str
    mix: dict[str, Any]
    audit: dict[str, Any]
    training: dict[str, Any]
    adapter: str
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class InterventionSummary:
    output: Path
    arms: list[ArmOutcome]
    run_dir: Path
    seconds: dict[str, float]
    verdicts: list[str]

    def headline(self, max_verdicts: int = 12) -> list[str]:
        """What the command prints at the end: each arm's training, the verdicts, where the folder is."""
        lines = []
        for arm in self.arms:
            training, last = arm.training, arm.training["final_loss"]
            losses = f"{training['first_step_loss']:.3f} -> {last:.3f}" if last is not None else "not logged"
            lines.append(f"arm {arm.name}: {arm.mix['n']} examples, {training['steps']} steps, loss {losses}"
                         f"{' (adapter reused)' if training['reused'] else ''}; adapter {arm.adapter}")
        lines += self.verdicts[:max_verdicts]
        lines.append(f"wrote {self.output}/ (intervention.json, arms/, adapters/, run/, report.html) in "
                     f"{self.seconds['total']:.0f} s")
        return lines


def config_digest(config: InterventionConfig) -> str:
    """What decides the results: the config as written, less where it is written and how many threads, hashed."""
    raw = {k: v for k, v in config.raw.items() if k not in ("output", "threads")}
    return hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[:16]


def check_intervention_output(config: InterventionConfig) -> None:
    """An existing folder must be this intervention's (a rerun resumes it); anything else is refused."""
    out = config.output
    if out.exists() and (not out.is_dir() or out.is_symlink()):
        raise GlobalignError(f"output {out} exists and is not a folder; choose another --output")
    if not out.is_dir() or not any(out.iterdir()):
        return
    try:
        manifest = json.loads((out / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        raise GlobalignError(f"output {out} holds files that are not a globalign intervention; choose another --output") \
            from None
    if not isinstance(manifest, dict) or manifest.get("schema") != SCHEMA:
        raise GlobalignError(f"output {out}: {MANIFEST} is not a globalign intervention manifest; choose another --output")
    if manifest.get("config_digest") != config_digest(config):
        raise GlobalignError(f"output {out} holds an intervention with another config; choose another --output "
                             "(or delete the folder to start again)")


def _write_manifest(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomically(path, value)


def _copy_adapter(source: Path, target: Path) -> None:
    """The trained adapter into the intervention folder, replaced only when its content differs."""
    if target.is_dir() and folder_sha256(target) == folder_sha256(source):
        return
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)


def _audit(mix_chat: Path, folder: Path, mix_sha: str, progress: bool) -> dict[str, Any]:
    """audit-data on the mix (languages under each rule, countries), redone only when the mix changed."""
    from globalign.audit.run import AuditOptions, audit

    marker = folder / "manifest.json"
    done = folder / ".mix-sha256"
    if marker.is_file() and done.is_file() and done.read_text("utf-8").strip() == mix_sha:
        manifest = json.loads(marker.read_text("utf-8"))
        return {"folder": str(folder.resolve()), "reused": True, "non_english_share": manifest.get("non_english_share"),
                "messages": manifest.get("messages")}
    result = audit(AuditOptions(source=str(mix_chat), output=folder, workers=1, progress=progress))
    done.write_text(mix_sha + "\n", "utf-8")
    manifest = json.loads(marker.read_text("utf-8"))
    return {"folder": str(folder.resolve()), "reused": False, "non_english_share": manifest.get("non_english_share"),
            "messages": manifest.get("messages"), "seconds": round(result.seconds, 2)}


def _train(config: InterventionConfig, arm_name: str, base: LocatedModel, mix: Mix, mix_file: Path,
           progress: bool) -> tuple[TrainResult, str, bool]:
    """(result, adapter key, reused): a finished adapter of the same key is returned without training."""
    arm = next(a for a in config.arms if a.name == arm_name)
    key = adapter_key(base.content_hash, mix.sha256, arm.recipe, training_versions())
    work = cache_dir() / "adapters" / key
    reused = (work / RESULT_FILE).is_file()
    result = train_adapter(base, mix_file, arm.recipe, work, threads=config.threads, progress=progress)
    return result, key, reused


def _training_entry(result: TrainResult, key: str, reused: bool, method: str) -> dict[str, Any]:
    entry = {k: v for k, v in asdict(result).items() if k != "adapter_dir"}  # losses: one row per step
    losses = [row["loss"] for row in result.losses if isinstance(row.get("loss"), int | float)]
    entry.update(adapter_key=key, reused=reused, cache_dir=str(result.adapter_dir.parent),
                 final_loss=losses[-1] if losses else None, tokens_per_second=round(result.tokens_per_second, 1))
    entry["first_step_check"] = first_step_warning(result, method) or "ok"
    return entry


def intervene(config: InterventionConfig, *, progress: bool = True, say=print) -> InterventionSummary:
    """Every stage of the intervention, each resumable (module docstring)."""
    from globalign.pipeline import build_tasks, run

    started = time.perf_counter()
    check_intervention_output(config)
    data_dir = resolve_data_dir(config.data_dir)
    eval_config = config.eval_config()
    build_tasks(eval_config)  # the evaluation's data and tasks are checked before any training
    base = locate_model(config.base)
    digest = config_digest(config)
    manifest: dict[str, Any] = {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION, "globalign_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"), "config_digest": digest,
        "config": json.loads(json.dumps(config.raw, default=str)),
        "base": {"name": config.base.name, "source": base.source, "content_hash": base.content_hash},
        "split": config.split.to_json(), "data_dir": str(data_dir) if data_dir else None,
        "versions": training_versions(), "arms": {}, "seconds": {},
    }
    config.output.mkdir(parents=True, exist_ok=True)
    _write_manifest(config.output / MANIFEST, manifest)  # marks the folder as this intervention's (resume)
    outcomes = []
    for arm in config.arms:
        folder = config.arm_dir(arm.name)
        seconds: dict[str, float] = {}
        t = time.perf_counter()
        say(f"[{arm.name}] building the mix ({arm.mix.size} examples)")
        mix = build_mix(arm.mix, data_dir, config.split)
        paths = write_mix(mix, folder)
        seconds["mix"] = time.perf_counter() - t
        t = time.perf_counter()
        say(f"[{arm.name}] auditing the mix")
        audit_entry = _audit(paths["chat"], folder / "audit", mix.sha256, progress)
        seconds["audit"] = time.perf_counter() - t
        t = time.perf_counter()
        say(f"[{arm.name}] fine-tuning {config.base.name} with LoRA ({arm.recipe.method})")
        result, key, reused = _train(config, arm.name, base, mix, paths["mix"], progress)
        seconds["train"] = time.perf_counter() - t
        adapter = config.adapter_dir(arm.name)
        adapter.parent.mkdir(parents=True, exist_ok=True)
        _copy_adapter(result.adapter_dir, adapter)
        write_adapter_sidecar(adapter, config.base.name)
        write_text_atomically(folder / "losses.jsonl", "".join(json.dumps(row) + "\n" for row in result.losses))
        training = _training_entry(result, key, reused, arm.recipe.method)
        outcome = ArmOutcome(arm.name, mix.to_json(), audit_entry, training, str(adapter),
                             {k: round(v, 2) for k, v in seconds.items()})
        outcomes.append(outcome)
        manifest["arms"][arm.name] = {"mix": outcome.mix, "audit": outcome.audit, "recipe": arm.recipe.to_json(),
                                      "training": training, "adapter": outcome.adapter,
                                      "adapter_content_hash": locate_model(_adapter_spec(config, arm.name)).content_hash,
                                      "seconds": outcome.seconds}
        _write_manifest(config.output / MANIFEST, manifest)
        if training["first_step_check"] != "ok":
            say(f"Warning [{arm.name}]: {training['first_step_check']}")
    t = time.perf_counter()
    tasks = ", ".join(task.name for task in eval_config.tasks)
    say(f"measuring {config.base.name} and {len(config.arms)} arm(s) on {tasks}")
    verdicts: list[str] = []
    audits = [Path(o.audit["folder"]) for o in outcomes]

    def add_files(metrics, work: Path, run_manifest: dict[str, Any]) -> None:
        beside = {**manifest, "run": str(config.run_dir)}
        _write_manifest(work / MANIFEST, beside)
        verdicts.extend(_write_report(work, config.run_dir, run_manifest, audits, beside))

    run(eval_config, progress=progress, extra_files=add_files,
        extra_notes=[(f"intervention: {len(config.arms)} LoRA arm(s) of {config.base.name}; TyDi QA evaluated on "
                     f"held-out articles only ({MANIFEST} beside the run)")])
    manifest["seconds"] = {"evaluation": round(time.perf_counter() - t, 2),
                           "total": round(time.perf_counter() - started, 2)}
    manifest["run"] = str(config.run_dir)
    _write_manifest(config.output / MANIFEST, manifest)
    shutil.copyfile(config.run_dir / REPORT, config.output / REPORT)
    return InterventionSummary(config.output, outcomes, config.run_dir, manifest["seconds"], verdicts)


def _adapter_spec(config: InterventionConfig, arm: str):
    from globalign.models.resolve import ModelSpec

    return ModelSpec(str(config.adapter_dir(arm)), dtype=config.base.dtype)


def _write_report(work: Path, name: Path, run_manifest: dict[str, Any], audits: Sequence[Path],
                  intervention: dict[str, Any]) -> list[str]:
    from globalign.records import read_rows
    from globalign.report.html import build_html, write_report
    from globalign.report.inputs import combine_runs, read_audit

    page, verdicts = build_html(combine_runs([read_rows(work, run_manifest, name=name)],
                                             [read_audit(a) for a in audits], [intervention]))
    write_report(page, work / REPORT)
    return [v.text for v in verdicts]
