"""The study's raw outputs: the AskReddit LM-probe files re-scored, and `import-paper` (every axis, one
run folder, the study's families)."""

from __future__ import annotations

import csv
import json
import os
from bisect import bisect_left, bisect_right
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from globalign.cli import main
from globalign.data.reward_probe import GALLUP_ORDERS, load_country_set_181
from globalign.rescore.run import rescore
from globalign.study_models import STUDY_FAMILIES
from globalign.tasks.base import StatsSettings

OUTPUTS = "paper_outputs/outputs"
LM_PROBE = f"{OUTPUTS}/ask-reddit-perplexity-testing"
FAST = StatsSettings(n_boot=200, n_perm=200, seed=0)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _independent_mean_ranks(path: Path, countries: list[str]) -> dict[str, float]:
    """Per question, rank 1 = the lowest NLL (positive question) or the highest (negative), ties averaged,
    counted by hand; then the mean over questions."""
    totals = dict.fromkeys(countries, 0.0)
    rows = _rows(path)
    for row in rows:
        sign = 1.0 if row["Sentiment"].strip().lower() == "positive" else -1.0
        favour = {c: -sign * float(row[c]) for c in countries}  # higher = more favoured
        ordered = sorted(favour.values())
        for c in countries:
            low, high = bisect_left(ordered, favour[c]), bisect_right(ordered, favour[c])
            ahead, tied = len(ordered) - high, high - low - 1
            totals[c] += 1 + ahead + tied / 2
    return {c: t / len(rows) for c, t in totals.items()}


def test_askreddit_lm_probe_files_rescore_to_the_hand_computed_ranks_and_gallup_rho(data_dir, tmp_path):
    source = data_dir / LM_PROBE
    folder = tmp_path / "lm"
    folder.mkdir()
    for name in ("Mistral-7B-v0.1-reformatted.csv", "zephyr-7b-beta_8bit-reformatted.csv"):
        os.symlink(source / name, folder / name)
    summary = rescore("askreddit", folder, tmp_path / "out", stats=FAST, data_dir=data_dir)
    ranking = list(load_country_set_181(data_dir))
    for name, model in (("Mistral-7B-v0.1-reformatted.csv", "mistralai/Mistral-7B-v0.1"),
                        ("zephyr-7b-beta_8bit-reformatted.csv", "HuggingFaceH4/zephyr-7b-beta")):
        expected = _independent_mean_ranks(source / name, ranking)
        got = {r.group: r.value for r in summary.metrics if r.model == model and r.metric == "mean_rank"}
        assert got.keys() == expected.keys()
        assert max(abs(got[c] - expected[c]) for c in ranking) < 1e-9
        assert {r.metric for r in summary.metrics if r.model == model} >= {"nll_mean", "win_rate_positive"}
        for year, order in GALLUP_ORDERS.items():
            rho = spearmanr([expected[c] for c in order], np.arange(1, len(order) + 1)).statistic
            (row,) = [r for r in summary.comparisons if r.model_b == model and r.group == year]
            assert row.delta == pytest.approx(rho, abs=1e-12) and row.n == 21
    matrix = [r for r in summary.comparisons if r.group == "all"]
    assert len(matrix) == 1  # the model x model Spearman of the two models' mean ranks


# ------------------------------------------------------------------------------------- import-paper
@pytest.fixture(scope="module")
def imported(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("paper") / "run"
    code = main(["import-paper", str(data_dir / "paper_outputs"), "--output", str(out), "--data-dir", str(data_dir),
                 "--n-boot", "200", "--n-perm", "200", "--quiet"])
    assert code == 0
    return out


def _metric_rows(path: Path, task: str) -> list[tuple]:
    return sorted(tuple(r.values()) for r in _rows(path / "metrics.csv") if r["task"] == task)


@pytest.mark.slow
def test_import_paper_holds_every_axis_and_the_studys_families(imported):
    manifest = json.loads((imported / "manifest.json").read_text())
    assert manifest["mode"] == "import-paper" and manifest["missing"] == []
    assert set(manifest["tasks"]) == {"md3", "tydiqa", "global_opinions", "askreddit", "where_from"}
    assert {len(manifest["tasks"][t]["models"]) for t in ("md3", "tydiqa", "global_opinions")} == {13}
    assert len(manifest["tasks"]["askreddit"]["models"]) == 14  # 13 LMs + Starling-RM-7B-alpha
    families = {f["name"]: f["stages"] for f in manifest["families"]}
    assert list(families) == list(STUDY_FAMILIES)
    assert families["Mistral -> Zephyr"] == [
        {"stage": "base", "model": "mistralai/Mistral-7B-v0.1"},
        {"stage": "sft", "model": "HuggingFaceH4/mistral-7b-sft-beta"},
        {"stage": "pt", "model": "HuggingFaceH4/zephyr-7b-beta"}]
    assert [s["stage"] for s in families["Qwen"]] == ["base", "aligned"]
    assert any("estimated values" in n for n in manifest["tasks"]["global_opinions"]["notes"])
    tasks = {r["task"] for r in _rows(imported / "metrics.csv")}
    assert tasks == set(manifest["tasks"])
    pairs = {(r["model_a"], r["model_b"]) for r in _rows(imported / "comparisons.csv") if r["task"] == "md3"}
    assert ("meta-llama/Llama-2-7b-hf", "meta-llama/Llama-2-7b-chat-hf") in pairs and len(pairs) == 12


@pytest.mark.slow
@pytest.mark.parametrize(("task", "folder"), [("md3", "md3-game"), ("tydiqa", "tydiqa-goldp"),
                                              ("where_from", "reward-testing")])
def test_import_paper_numbers_equal_rescore(imported, data_dir, tmp_path, task, folder):
    out = tmp_path / task
    assert main(["rescore", "--task", task, "--predictions", str(data_dir / OUTPUTS / folder), "--output", str(out),
                 "--data-dir", str(data_dir), "--n-boot", "200", "--n-perm", "200"]) == 0
    assert _metric_rows(imported, task) == _metric_rows(out, task)
    mine = sorted(tuple(r.values()) for r in _rows(imported / "comparisons.csv") if r["task"] == task)
    assert mine == sorted(tuple(r.values()) for r in _rows(out / "comparisons.csv"))


@pytest.mark.slow
def test_import_paper_reward_askreddit_equals_rescore_of_the_reward_file(imported, data_dir, tmp_path):
    out = tmp_path / "rm"
    path = data_dir / OUTPUTS / "ask-reddit-reward-testing"
    assert main(["rescore", "--task", "askreddit", "--predictions", str(path), "--output", str(out),
                 "--data-dir", str(data_dir), "--n-boot", "200", "--n-perm", "200"]) == 0
    rm = "berkeley-nest/Starling-RM-7B-alpha"
    alone = sorted(tuple(r.values()) for r in _rows(out / "metrics.csv"))
    assert alone == sorted(tuple(r.values()) for r in _rows(imported / "metrics.csv")
                           if r["task"] == "askreddit" and r["model"] == rm)
    gallup = {r["group"]: float(r["delta"]) for r in _rows(imported / "comparisons.csv")
              if r["model_b"] == rm and r["group"].startswith("gallup")}
    assert round(gallup["gallup_2017"], 3) == 0.926 and round(gallup["gallup_2023"], 3) == 0.849


def test_import_paper_without_any_axis_folder_is_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "outputs").mkdir()
    assert main(["import-paper", str(tmp_path), "--output", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none of the study's output folders" in err and "md3-game" in err
    assert not (tmp_path / "run").exists()


def test_import_paper_of_a_partial_folder_imports_what_is_there_and_names_the_rest(tmp_path, data_dir, capsys):
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    os.symlink(data_dir / OUTPUTS / "reward-testing", outputs / "reward-testing")
    out = tmp_path / "run"
    assert main(["import-paper", str(outputs), "--output", str(out), "--data-dir", str(data_dir), "--quiet",
                 "--n-boot", "50"]) == 0
    printed = capsys.readouterr().out
    assert "not imported: md3-game (md3): folder absent" in printed
    manifest = json.loads((out / "manifest.json").read_text())
    assert list(manifest["tasks"]) == ["where_from"]
    assert {m["folder"] for m in manifest["missing"]} == {"md3-game", "tydiqa-goldp", "globalopinionsqa",
                                                          "ask-reddit-perplexity-testing", "ask-reddit-reward-testing"}
    assert any(n.startswith("not imported (folder absent)") for n in manifest["notes"])
