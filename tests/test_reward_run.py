"""Trained reward models in `globalign run`: the where_from and askreddit probes on tiny random
value-head and classifier folders (real layouts, random weights), cached and resumable; other tasks
refuse them with a one-line error."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from test_reward_models import _classifier_folder, _value_head_folder, tokenizer_dir  # noqa: F401

from globalign.cli import main
from globalign.config import parse_config
from globalign.data.locate import resolve_data_dir
from globalign.data.reward_probe import load_askreddit
from globalign.errors import ConfigError
from globalign.models.reward import load_reward_model
from globalign.requests import RewardRequest


def _rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _run(args, capsys):
    code = main(["run", "--quiet", *args])
    return code, capsys.readouterr()


def test_value_head_reward_model_runs_both_probes_and_is_cached(private_cache, tmp_path, tokenizer_dir, capsys):  # noqa: F811
    folder, _, _ = _value_head_folder(tmp_path / "rm", tokenizer_dir)
    out = tmp_path / "run"
    args = ["--reward-model", str(folder), "--task", "where_from", "--task", "askreddit", "--limit", "3",
            "--countries", "gallup", "--output", str(out), "--n-boot", "200"]
    code, captured = _run(args, capsys)
    assert code == 0, captured.err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["models"][0]["details"]["kind"] == "value_head"
    assert manifest["engine"][str(folder)]["computed"] == 24 + 3 * 24  # where_from + 3 questions x 24
    metrics = _rows(out / "metrics.csv")
    rewards = [r for r in metrics if r["task"] == "askreddit" and r["metric"] == "reward"]
    assert len(rewards) == 24  # one per country scored (all 24 Gallup countries are in the 181 ranked)
    # The rewards in the run equal the backend's own on the study's Starling text.
    question = load_askreddit(resolve_data_dir())[int(manifest["tasks"]["askreddit"]["question_indices"][0])]
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    first = next(s for s in samples if s["task"] == "askreddit" and s["item_id"] == str(question.index))
    rm = load_reward_model(str(folder))
    expected = rm.reward([RewardRequest("", question.reward_text("India"))])[0]
    assert abs(first["metrics"]["reward@India"] - expected) < 1e-5
    # A second run computes nothing: every reward comes from the request cache.
    code, captured = _run([*args[:-4], "--output", str(tmp_path / "run2"), "--n-boot", "200"], capsys)
    assert code == 0, captured.err
    again = json.loads((tmp_path / "run2" / "manifest.json").read_text())["engine"][str(folder)]
    assert again == {"computed": 0, "from_cache": 24 + 3 * 24}


def test_classifier_reward_model_next_to_a_language_model(private_cache, tmp_path, tokenizer_dir, capsys):  # noqa: F811
    folder, _ = _classifier_folder(tmp_path / "clf", tokenizer_dir)
    out = tmp_path / "run"
    code, captured = _run(["--model", "smollm2-135m-instruct", "--reward-model", str(folder), "--task", "askreddit",
                           "--limit", "2", "--countries", "gallup", "--output", str(out), "--n-boot", "200"], capsys)
    assert code == 0, captured.err
    manifest = json.loads((out / "manifest.json").read_text())
    assert [m["details"].get("kind") for m in manifest["models"]][1] == "classifier"
    metrics = _rows(out / "metrics.csv")
    names = {(r["model"], r["metric"]) for r in metrics if r["group"] != "all"}
    assert ("smollm2-135m-instruct", "nll_mean") in names and (str(folder), "reward") in names
    # Mean ranks of the LM and the reward model are compared in the model x model matrix.
    matrix = [r for r in _rows(out / "comparisons.csv") if r["metric"] == "spearman_mean_rank"]
    assert any({r["model_a"], r["model_b"]} == {"smollm2-135m-instruct", str(folder)} for r in matrix)
    assert all(np.isfinite(float(r["delta"])) for r in matrix)


def test_reward_models_are_refused_by_other_tasks_and_bad_fields(tmp_path, tokenizer_dir, capsys):  # noqa: F811
    folder, _ = _classifier_folder(tmp_path / "clf", tokenizer_dir)
    code, captured = _run(["--reward-model", str(folder), "--task", "md3", "--output", str(tmp_path / "o")], capsys)
    assert code == 2
    assert "task 'md3' needs a language model" in captured.err and len(captured.err.strip().splitlines()) == 1
    code, captured = _run(["--reward-model", str(tmp_path / "missing"), "--task", "where_from",
                           "--output", str(tmp_path / "o2")], capsys)
    assert code == 2 and "not a folder or a Hugging Face hub id" in captured.err
    with pytest.raises(ConfigError, match="kind"):
        parse_config({"models": [{"name": "x", "kind": "critic"}], "tasks": ["where_from"], "output": "o"}, "cfg")
    with pytest.raises(ConfigError, match="tokenizer"):
        parse_config({"models": [{"name": "x", "tokenizer": "y"}], "tasks": ["where_from"], "output": "o"}, "cfg")
    code, captured = _run(["--model", "x", "--reward-tokenizer", "t", "--task", "where_from"], capsys)
    assert code == 2 and "--reward-tokenizer goes with --reward-model" in captured.err


def test_reward_format_chat_uses_the_reward_models_template(private_cache, tmp_path, tokenizer_dir, capsys):  # noqa: F811
    folder, _ = _classifier_folder(tmp_path / "clf", tokenizer_dir)
    config = tmp_path / "run.yaml"
    config.write_text(f"models: [{{name: '{folder}', kind: classifier}}]\n"
                      "tasks: [{name: where_from, countries: gallup, reward_format: chat}]\n"
                      f"output: '{tmp_path / 'run'}'\nstats: {{n_boot: 100}}\n")
    code, captured = _run([str(config)], capsys)  # the test tokenizer has no chat template
    assert code == 2 and "has no chat template; use reward_format: llama2" in captured.err
    (folder / "chat_template.jinja").write_text(
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}")
    code, captured = _run([str(config)], capsys)
    assert code == 0, captured.err
    rm = load_reward_model(str(folder), "classifier")
    text = rm.chat_text("Where are you from?", "I am from India.")
    assert text == "<|im_start|>user\nWhere are you from?<|im_end|>\n<|im_start|>assistant\nI am from India.<|im_end|>\n"
    samples = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert abs(samples[0]["metrics"]["reward@India"] - rm.reward([RewardRequest("", text)])[0]) < 1e-5
