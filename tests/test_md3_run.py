"""The md3 task end to end on a real packaged model: both prompt formats, the records, the manifest."""

from __future__ import annotations

import csv
import json

import pytest

from globalign.cli import main
from globalign.tasks.md3 import generation_correct

pytestmark = pytest.mark.slow


def _run(data_dir, out, fmt: str) -> None:
    assert main(["run", "--model", "smollm2-135m-instruct", "--task", "md3", "--limit", "6", "--prompt-format", fmt,
                 "--n-boot", "50", "--quiet", "--data-dir", str(data_dir), "--output", str(out)]) == 0


def test_md3_run_in_both_prompt_formats(private_cache, data_dir, tmp_path):
    raw, chat = tmp_path / "raw", tmp_path / "chat"
    _run(data_dir, raw, "raw")
    _run(data_dir, chat, "chat")
    manifest = json.loads((raw / "manifest.json").read_text())
    task = manifest["tasks"]["md3"]
    assert manifest["prompt_format"] == "raw" and task["items"] == "study"
    assert task["items_per_dialect"] == {"en_in": 1, "en_ng": 2, "en_us": 3}  # 6 items, shares kept
    assert json.loads((chat / "manifest.json").read_text())["prompt_format"] == "chat"

    rows = [json.loads(line) for line in (raw / "samples.jsonl").open()]
    chat_rows = [json.loads(line) for line in (chat / "samples.jsonl").open()]
    assert [r["item_id"] for r in rows] == task["item_ids"] == [r["item_id"] for r in chat_rows]
    assert all(a["prompt_hash"] != b["prompt_hash"] for a, b in zip(rows, chat_rows))
    for row in rows:
        extra = row["extra"]
        assert row["group"] in ("en_in", "en_ng", "en_us")
        assert len(row["distribution"]) == 6 and abs(sum(row["distribution"]) - 1) < 1e-9
        assert extra["candidates"][extra["correct_index"]] == extra["secret_word"]
        distractors = [c for i, c in enumerate(extra["candidates"]) if i != extra["correct_index"]]
        assert row["metrics"]["generation_correct"] == int(
            generation_correct(row["prediction"], extra["secret_word"], distractors))
        best = max(range(6), key=row["distribution"].__getitem__)
        assert row["metrics"]["choice_correct"] == int(best == extra["correct_index"])
        assert row["prediction"] == row["prediction"].strip()

    metrics = {(r["metric"], r["group"]) for r in csv.DictReader((raw / "metrics.csv").open())}
    assert {("generation_accuracy", "en_us"), ("choice_accuracy", "all"), ("generation_gap", "en_us-en_in")} <= metrics
