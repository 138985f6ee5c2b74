"""The README's demo command and the prompt-format factor, end to end on the real packaged models."""

from __future__ import annotations

import csv
import json

import pytest

from globalign.cli import main

pytestmark = pytest.mark.slow


def test_demo_writes_the_contract_folder_its_report_and_a_short_headline(demo_run):
    output = demo_run.output
    assert demo_run.returncode == 0, demo_run.stderr[-2000:]
    assert sorted(p.name for p in output.iterdir()) == [
        "comparisons.csv", "manifest.json", "map_askreddit_mean_rank_smollm2-135m-instruct.png", "metrics.csv",
        "report.html", "samples.jsonl"]
    assert (output / "map_askreddit_mean_rank_smollm2-135m-instruct.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Map: " in demo_run.stdout and "181 countries drawn" in demo_run.stdout
    assert "different families" in demo_run.stdout
    assert str(output) in demo_run.stdout
    # the headline: the verdict sentences and the report's path, not the tables (those are in the report)
    lines = demo_run.stdout.strip().splitlines()
    assert len(lines) <= 25, demo_run.stdout
    assert f"Report: {output / 'report.html'}" in demo_run.stdout
    assert any(line.startswith("- run: gemma-3-270m -> smollm2-135m-instruct") for line in lines), demo_run.stdout
    assert "md3 / generation_gap" not in demo_run.stdout
    page = (output / "report.html").read_text("utf-8")
    assert '<meta name="generator" content="globalign ' in page and 'id="verdict"' in page
    assert "report.html" in json.loads((output / "manifest.json").read_text())["output_files"]
    rows = list(csv.DictReader((output / "metrics.csv").open()))
    models = {r["model"] for r in rows}
    assert models == {"gemma-3-270m", "smollm2-135m-instruct"}
    us = [r for r in rows if r["group"] == "United States" and r["metric"] == "similarity"]
    assert len(us) == 2 and all(0 < float(r["value"]) < 1 and int(r["n"]) > 0 for r in us)
    manifest = json.loads((output / "manifest.json").read_text())
    assert {m["name"] for m in manifest["models"]} == models
    assert any("different model families" in note for note in manifest["notes"])
    tasks = manifest["tasks"]
    assert len((output / "samples.jsonl").read_text().splitlines()) == 2 * (
        tasks["global_opinions"]["n_questions"] + tasks["md3"]["n_items"] + tasks["tydiqa"]["n_questions"]
        + tasks["askreddit"]["n_questions"] + tasks["where_from"]["n_questions"])
    # the country-preference axis: the LM probe over 254 countries, and the judge on the Gallup countries
    assert tasks["askreddit"]["n_countries"] == 254 and tasks["where_from"]["scorer"] == "judge"
    judge_rewards = [r for r in rows if r["task"] == "where_from" and r["metric"] == "reward"]
    assert {r["model"] for r in judge_rewards} == models and len(judge_rewards) == 2 * 24
    # the dialect axis: accuracy per dialect and the US gaps for both models, paired McNemar per dialect
    dialect_rows = [r for r in rows if r["task"] == "md3" and r["metric"] == "generation_accuracy"]
    assert {(r["model"], r["group"]) for r in dialect_rows} == {
        (m, g) for m in models for g in ("all", "en_in", "en_ng", "en_us")}
    assert tasks["md3"]["items_per_dialect"] == {"en_in": 9, "en_ng": 10, "en_us": 17}
    # the language axis: 2 short-passage questions per language, per-language F1 for both models
    assert tasks["tydiqa"]["questions_per_language"] == dict.fromkeys(("ar", "bn", "en", "fi", "id", "ko", "ru", "sw",
                                                                        "te"), 2)
    assert tasks["tydiqa"]["demo_split"] == "dev"
    f1 = [r for r in rows if r["task"] == "tydiqa" and r["metric"] == "f1"]
    assert {(r["model"], r["group"]) for r in f1} == {(m, g) for m in models for g in ("all", *tasks["tydiqa"]["languages"])}
    comparisons = list(csv.DictReader((output / "comparisons.csv").open()))
    assert {r["test"] for r in comparisons if r["task"] == "md3" and r["metric"] == "generation_accuracy"} == {
        "McNemar exact"}


def test_chat_format_is_recorded_and_changes_the_prompt(private_cache, data_dir, tmp_path):
    raw, chat = tmp_path / "raw", tmp_path / "chat"
    for fmt, out in (("raw", raw), ("chat", chat)):
        assert main(["run", "--model", "smollm2-135m-instruct", "--task", "global_opinions", "--limit", "3",
                     "--prompt-format", fmt, "--n-boot", "50", "--quiet", "--data-dir", str(data_dir),
                     "--output", str(out)]) == 0
    assert json.loads((chat / "manifest.json").read_text())["prompt_format"] == "chat"
    raw_rows = [json.loads(line) for line in (raw / "samples.jsonl").open()]
    chat_rows = [json.loads(line) for line in (chat / "samples.jsonl").open()]
    assert [r["item_id"] for r in raw_rows] == [r["item_id"] for r in chat_rows]
    assert all(a["prompt_hash"] != b["prompt_hash"] for a, b in zip(raw_rows, chat_rows))


def test_chat_format_on_a_model_without_template_is_a_one_line_error(private_cache, data_dir, tmp_path, capsys):
    code = main(["run", "--model", "gemma-3-270m", "--task", "global_opinions", "--limit", "2",
                 "--prompt-format", "chat", "--quiet", "--data-dir", str(data_dir), "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == ["globalign: error: model 'gemma-3-270m' has no chat template; use --prompt-format raw"]
    assert not (tmp_path / "o").exists()
