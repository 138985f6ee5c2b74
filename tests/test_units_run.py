"""A run as work units, on the packaged models: the same bytes as the single-process run it replaced,
whether it runs in one process, as shards merged afterwards, in parallel worker processes
(`--gpus-per-model` with a stand-in GPU list: this machine has no GPU), on a local Ray instance, or is
killed between units and resumed. Merge refuses shards that do not make one run."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest
from faults import Command, KillPoint, kill_at, run_to_end, stable_manifest

from globalign.cli import main
from globalign.config import RunConfig, parse_config
from globalign.data.locate import resolve_data_dir
from globalign.engine.runner import Engine
from globalign.models.resolve import load_model, locate_model
from globalign.paths import cache_dir
from globalign.store.output import write_run_folder
from globalign.store.request_cache import RequestCache
from globalign.store.unit_store import MANIFEST, work_folder
from globalign.tasks.base import TaskSettings
from globalign.tasks.registry import make_task

pytestmark = pytest.mark.slow
DATA_FILES = ("metrics.csv", "comparisons.csv", "samples.jsonl")
MODELS = ("smollm2-135m-instruct", "gemma-3-270m")
TASKS = ("md3", "global_opinions", "where_from")


def _args(data_dir: Path, output: Path, models=MODELS, tasks=TASKS, limit: int = 3) -> list[str]:
    return ["run", *(a for m in models for a in ("--model", m)), *(a for t in tasks for a in ("--task", t)),
            "--limit", str(limit), "--n-boot", "200", "--threads", "1", "--quiet", "--data-dir", str(data_dir),
            "--output", str(output)]


def _manifest(folder: Path, *drop: str) -> dict:
    """The manifest without what differs by nature (faults.VOLATILE_MANIFEST_FIELDS), where the folder was
    written, and `drop`."""
    manifest = stable_manifest(folder / "manifest.json")
    manifest["config"].pop("output")
    for key in drop:
        manifest.pop(key, None)
    return manifest


def assert_same_run(folder: Path, reference: Path, *drop: str) -> None:
    for name in DATA_FILES:
        assert (folder / name).read_bytes() == (reference / name).read_bytes(), folder / name
    assert _manifest(folder, "units", *drop) == _manifest(reference, "units", *drop)
    assert not work_folder(folder).exists(), "the work folder is removed once the run folder is written"


def _cli(*argv) -> None:
    assert main([str(a) for a in argv]) == 0


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory):
    """An empty request cache for this module that links the converted models (as conftest's private_cache)."""
    real = cache_dir()
    folder = tmp_path_factory.mktemp("units-cache")
    for name in ("converted", "gguf"):
        (real / name).mkdir(parents=True, exist_ok=True)
        os.symlink(real / name, folder / name)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GLOBALIGN_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture(scope="module")
def plain(module_cache, data_dir, tmp_path_factory) -> Path:
    """`globalign run` of two models on three tasks, every answer computed (an empty cache)."""
    output = tmp_path_factory.mktemp("plain") / "run"
    _cli(*_args(data_dir, output))
    return output


def _single_process_run(config: RunConfig, output: Path) -> None:
    """The run as globalign did it before work units (commit 5aa917e's pipeline.run): each model loaded in
    turn, every task run, every record kept in memory, then metrics and comparisons written."""
    data_dir = resolve_data_dir(config.data_dir)
    tasks = [make_task(t.name, TaskSettings(config.limit, config.seed, config.prompt_format, data_dir, config.stats,
                                            t.options)) for t in config.tasks]
    cache = RequestCache(cache_dir() / "requests.sqlite")
    records: dict[str, dict] = {t.name: {} for t in tasks}
    infos = []
    for spec in config.models:
        model = load_model(locate_model(spec))
        engine = Engine(model, cache, progress=False)
        infos.append(model.info)
        for task in tasks:
            records[task.name][spec.name] = task.run(engine, config.prompt_format)
        model.close()
    cache.close()
    pairs = config.comparison_pairs()
    metrics = [row for task in tasks for row in task.metrics(records[task.name])]
    comparisons = [row for task in tasks for row in task.comparisons(records[task.name], pairs)]
    samples = [r for task in tasks for model_records in records[task.name].values() for r in model_records]
    manifest = {"models": [asdict(i) for i in infos], "tasks": {t.name: t.manifest() for t in tasks}}
    write_run_folder(output, manifest, metrics, comparisons, samples)


def test_a_run_of_units_writes_the_bytes_of_the_single_process_run(plain, data_dir, tmp_path):
    config = parse_config({"models": list(MODELS), "tasks": list(TASKS), "limit": 3, "threads": 1,
                           "stats": {"n_boot": 200}, "data_dir": str(data_dir), "output": str(tmp_path / "old")},
                          "test")
    _single_process_run(config, tmp_path / "old")
    old = json.loads((tmp_path / "old" / "manifest.json").read_text())
    new = json.loads((plain / "manifest.json").read_text())
    for name in DATA_FILES:
        assert (plain / name).read_bytes() == (tmp_path / "old" / name).read_bytes(), name
    assert new["models"] == old["models"]
    assert {task: {k: v for k, v in entry.items() if k != "declaration"} for task, entry in new["tasks"].items()} \
        == old["tasks"]
    assert new["units"] == {"total": 6, "resumed": 0, "engine": "local", "gpus_per_model": None}
    assert sum(counts["computed"] for counts in new["engine"].values()) > 0  # computed, not read from a cache


@pytest.fixture(scope="module")
def shards(plain, data_dir, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("shards")
    for index in (1, 2):
        _cli(*_args(data_dir, root / f"shard{index}"), "--shard", f"{index}/2")
    return root / "shard1", root / "shard2"


def test_two_shards_merged_are_the_unsplit_run(shards, plain, tmp_path, capsys):
    first, second = shards
    manifests = [json.loads((s / "manifest.json").read_text()) for s in shards]
    assert [m["schema"] for m in manifests] == ["globalign.shard"] * 2
    assert [m["shard"] for m in manifests] == ["1/2", "2/2"]
    assert manifests[0]["config_hash"] == manifests[1]["config_hash"]
    # contiguous shares of the plan: each model's three units on one shard, so each loads one model
    assert [sorted({u["model"] for u in m["units"].values()}) for m in manifests] == [[MODELS[0]], [MODELS[1]]]
    assert sorted(p.name for p in first.iterdir()) == sorted(["manifest.json", *(f"{u}.jsonl" for u in
                                                                                 manifests[0]["units"])])
    output = tmp_path / "merged"
    _cli("merge", second, first, "--output", output)  # in any order
    assert_same_run(output, plain, "request_cache")
    assert json.loads((output / "manifest.json").read_text())["units"]["shards"] == [
        {"folder": str(second), "shard": "2/2"}, {"folder": str(first), "shard": "1/2"}]


def _refused(capsys, *argv) -> str:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("globalign: error: "), err
    return err[0]


def test_merge_refuses_shards_that_do_not_make_one_run(shards, plain, data_dir, tmp_path, capsys):
    first, second = shards
    output = tmp_path / "merged"
    assert "missing shard(s): 2/2" in _refused(capsys, "merge", first, "--output", output)
    assert "is in both" in _refused(capsys, "merge", first, second, first, "--output", output)
    _cli(*_args(data_dir, tmp_path / "other2"), "--shard", "2/2", "--n-boot", "100")
    line = _refused(capsys, "merge", first, tmp_path / "other2", "--output", output)
    assert "is a shard of another run" in line and "stats" in line
    changed = tmp_path / "changed1"
    shutil.copytree(first, changed)
    records = next(changed.glob("md3--*.jsonl"))
    records.write_text(records.read_text().replace('"en_', '"EN_', 1))
    assert "does not match the SHA-256" in _refused(capsys, "merge", changed, second, "--output", output)
    assert "not a globalign shard folder (a globalign.run folder)" in _refused(capsys, "merge", first, plain,
                                                                               "--output", output)
    assert not output.exists()


def test_gpu_workers_write_the_unsplit_run(plain, data_dir, tmp_path, monkeypatch):
    # No GPU here: CUDA_VISIBLE_DEVICES names two stand-in devices, so two worker processes run the two
    # models side by side (each told its own device), on the CPU.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    output = tmp_path / "parallel"
    _cli(*_args(data_dir, output), "--gpus-per-model", "1")
    assert_same_run(output, plain)
    units = json.loads((output / "manifest.json").read_text())["units"]
    assert units == {"total": 6, "resumed": 0, "engine": "local", "gpus_per_model": 1}


def test_a_run_killed_between_units_resumes_with_the_finished_ones(data_dir, tmp_path, private_cache):
    output = tmp_path / "run"
    tasks = ("where_from", "global_opinions")  # the first unit takes seconds, the second one
    command = Command(tuple(_args(data_dir, output, models=MODELS[:1], tasks=tasks)), output)
    work = work_folder(output)

    def finished_units() -> list[Path]:
        return sorted(work.glob(f"*{MANIFEST}")) if work.exists() else []

    # kill -9 as soon as the first unit is saved (polled every 10 ms): between units
    kill = kill_at(command, KillPoint("between units", 0.0, trigger=lambda pid: bool(finished_units())),
                   lambda pid: "computing", tmp_path / "stderr.txt")
    assert kill is not None, "the run ended before it could be killed"
    assert len(finished_units()) == 1 and not output.exists()
    resumed = run_to_end(command)
    assert "resumed: 1 work unit(s)" in resumed.stdout
    assert not work.exists()
    assert json.loads((output / "manifest.json").read_text())["units"]["resumed"] == 1
    # the same command never interrupted (its answers now cached) writes the same folder; a process of
    # its own as well, so both see the same environment (the manifest records the OpenMP wait policy's)
    whole = tmp_path / "whole"
    run_to_end(Command(tuple(_args(data_dir, whole, models=MODELS[:1], tasks=tasks)), whole))
    assert_same_run(output, whole)


def test_a_local_ray_run_writes_the_plain_run(data_dir, tmp_path, private_cache):
    ray = pytest.importorskip("ray")
    args = _args(data_dir, tmp_path / "plain", models=MODELS[:1], tasks=TASKS[1:], limit=2)
    _cli(*args)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        _cli(*_args(data_dir, tmp_path / "ray", models=MODELS[:1], tasks=TASKS[1:], limit=2), "--engine", "ray")
    finally:
        ray.shutdown()
    assert_same_run(tmp_path / "ray", tmp_path / "plain", "request_cache")
    manifest = json.loads((tmp_path / "ray" / "manifest.json").read_text())
    # the Ray worker kept its own cache file (per host) and computed every answer there
    assert manifest["request_cache"].endswith(".sqlite") and "/requests-" in manifest["request_cache"]
    assert manifest["engine"][MODELS[0]]["from_cache"] == 0
