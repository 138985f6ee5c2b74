"""`globalign intervene examples/intervention_tiny.yaml` end to end on the packaged SmolLM2: mixes, audits,
LoRA training (TRL + PEFT), the evaluation of base and arms on held-out TyDi QA, the report; then a rerun that
reuses every adapter and trains nothing."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from globalign.cli import main
from globalign.data.tydiqa import load_tydiqa
from globalign.records import read_run

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "examples" / "intervention_tiny.yaml"
DATA = ROOT.parent / "shared" / "data"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from globalign.paths import CACHE_DIR_ENV, cache_dir

    real = cache_dir()
    cache = tmp_path_factory.mktemp("cache")
    for name in ("converted", "gguf"):  # the converted models, not converted again (conftest.private_cache)
        (real / name).mkdir(exist_ok=True)
        os.symlink(real / name, cache / name)
    out = tmp_path_factory.mktemp("iv") / "tiny"
    patch = pytest.MonkeyPatch()
    patch.setenv(CACHE_DIR_ENV, str(cache))  # a fresh adapter store and request cache: this run trains
    patch.setenv("HF_HUB_OFFLINE", "1")
    patch.setenv("HF_DATASETS_OFFLINE", "1")
    args = ["intervene", str(TINY), "--data-dir", str(DATA), "--output", str(out), "--quiet"]
    assert main(args) == 0
    yield out, args
    patch.undo()


def test_the_folder_holds_mixes_audits_adapters_losses_and_the_run(tiny):
    out, _ = tiny
    manifest = json.loads((out / "intervention.json").read_text("utf-8"))
    assert set(manifest["arms"]) == {"english", "multilingual"}
    for name, arm in manifest["arms"].items():
        folder = out / "arms" / name
        assert (folder / "mix.jsonl").is_file() and (folder / "audit" / "languages.csv").is_file()
        assert (out / "adapters" / name / "adapter_config.json").is_file()
        losses = [json.loads(line) for line in (folder / "losses.jsonl").read_text("utf-8").splitlines()]
        assert len(losses) == arm["training"]["steps"] == 2
        assert [row["loss"] for row in arm["training"]["losses"]] == [row["loss"] for row in losses]
        assert arm["training"]["first_step_check"] == "ok"
        assert abs(arm["training"]["first_step_loss"] - arm["training"]["base_nll"]) < 0.25
        assert arm["training"]["reused"] is False
        assert {"torch", "transformers", "trl", "peft"} <= set(arm["training"]["versions"])
    assert manifest["arms"]["multilingual"]["mix"]["counts"]["tydiqa"] == dict.fromkeys(
        ("ar", "bn", "en", "fi", "id", "ko", "ru", "sw", "te"), 1)
    assert (out / "report.html").is_file()


def test_the_evaluation_compares_base_and_arms_on_held_out_articles_only(tiny):
    out, _ = tiny
    run = read_run(out / "run")
    models = {r.model for r in run.metrics}
    assert "smollm2-135m-instruct" in models and len(models) == 3
    pairs = {(r.model_a, r.model_b) for r in run.comparisons if r.task == "tydiqa"}
    assert len(pairs) == 3  # base vs each arm, and arm vs arm
    # no evaluated question shares a passage (or an article) with any training example
    trained = set()
    for name in ("english", "multilingual"):
        for line in (out / "arms" / name / "mix.jsonl").read_text("utf-8").splitlines():
            trained.add(json.loads(line)["passage_hash"])
    dev = {q.item_id: q for q in load_tydiqa(DATA).dev}
    evaluated = {s.item_id for s in run.samples if s.task == "tydiqa"}
    assert evaluated
    assert not {hashlib.sha256(dev[i].context.encode()).hexdigest() for i in evaluated} & trained


def test_the_report_shows_each_mix_next_to_its_effect(tiny):
    out, _ = tiny
    page = (out / "run" / "report.html").read_text("utf-8")
    assert 'id="intervention"' in page and "Arm english" in page and "Arm multilingual" in page
    assert "examples in the mix" in page and 'id="audit"' in page


def test_a_rerun_reuses_the_adapters_and_trains_nothing(tiny, capsys):
    out, args = tiny
    before = {p: p.stat().st_mtime_ns for p in (out / "adapters").rglob("adapter_model.safetensors")}
    assert main(args) == 0
    assert capsys.readouterr().out.count("(adapter reused)") == 2
    manifest = json.loads((out / "intervention.json").read_text("utf-8"))
    assert all(arm["training"]["reused"] for arm in manifest["arms"].values())
    assert {p: p.stat().st_mtime_ns for p in before} == before
