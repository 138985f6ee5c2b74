"""`globalign run --dry-run`: the plan is what the run would request, printed without loading a model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import globalign.models.backends
import globalign.pipeline
import globalign.workers.model_units
from globalign.cli import main

PAPER = Path(__file__).resolve().parents[1] / "examples" / "paper.yaml"


def _no_model_loads(monkeypatch):
    monkeypatch.setattr(globalign.workers.model_units, "load_model", lambda *a, **k: pytest.fail("a model loaded"))
    monkeypatch.setattr(globalign.pipeline, "locate_model", lambda *a, **k: pytest.fail("a model was located"))
    # every backend's loader (language and reward models) comes through the registry
    monkeypatch.setattr(globalign.models.backends, "_load", lambda *a, **k: pytest.fail("a backend was loaded"))


def _rows(out: str) -> dict[str, tuple[int, int, int, int]]:
    """task -> (items, requests, candidates, tokens) of the first table (language models)."""
    rows = {}
    for line in out.splitlines():
        match = re.match(r"\s+(\w+)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)$", line)
        if match and match.group(1) not in rows:
            rows[match.group(1)] = tuple(int(g.replace(",", "")) for g in match.groups()[1:])
    return rows


@pytest.mark.slow  # tokenises every prompt of the study's five tasks (~30 s of CPU)
def test_the_paper_config_plans_13_checkpoints_in_six_families_and_its_reward_model(
        capsys, tmp_path, data_dir, monkeypatch):
    _no_model_loads(monkeypatch)
    monkeypatch.chdir(tmp_path)
    code = main(["run", str(PAPER), "--dry-run", "--data-dir", str(data_dir)])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("Plan (dry run; no model loaded): 14 model(s), 5 task(s), 12 comparison(s)")
    assert len(re.findall(r"^  family ", out, re.MULTILINE)) == 6
    assert "each language model (13)" in out and "each reward model (1)" in out
    rows = _rows(out)
    # items from the data, independently of the plan: the study's 894 MD3 items, the 5,077 TyDi QA dev
    # questions, the 2,556 GlobalOpinionsQA questions, 554 AskReddit questions
    assert rows["md3"][:3] == (894, 2 * 894, 6 * 894)  # generation + 6-way choice per item
    assert rows["tydiqa"][:3] == (5077, 5077, 0)
    goqa = [json.loads(line) for line in (data_dir / "globalopinionsqa" / "global_opinions_best_estimate.jsonl")
            .read_text("utf-8").splitlines()]
    assert rows["global_opinions"][:3] == (len(goqa), len(goqa), sum(len(q["options"]) for q in goqa))
    assert rows["askreddit"][:3] == (554, 554, 554 * 254)
    assert "GPU-hours" in out and "reward model(s) berkeley-nest/Starling-RM-7B-alpha ran where_from, askreddit only" in out
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_dry_run_checks_what_a_run_checks(capsys, tmp_path, monkeypatch):
    _no_model_loads(monkeypatch)
    code = main(["run", "--model", "gemma-3-270m", "--task", "global_opinion", "--dry-run",
                 "--output", str(tmp_path / "o")])
    assert code == 2 and "unknown task 'global_opinion'" in capsys.readouterr().err


@pytest.mark.slow  # runs smollm2 on 6 questions to compare with the plan
def test_the_plan_is_what_the_run_computes(capsys, tmp_path, data_dir, private_cache):
    argv = ["run", "--model", "smollm2-135m-instruct", "--task", "global_opinions", "--task", "md3", "--limit", "6",
            "--data-dir", str(data_dir), "--n-boot", "50", "--quiet", "--output", str(tmp_path / "run")]
    assert main([*argv, "--dry-run"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert main(argv) == 0
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text("utf-8"))
    computed = manifest["engine"]["smollm2-135m-instruct"]["computed"]
    # the engine computes each candidate and each generation once
    planned = rows["global_opinions"][2] + rows["md3"][2] + rows["md3"][1] // 2
    assert computed == planned
