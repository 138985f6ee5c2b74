"""MD3 scoring rules, candidate placement, sampling, the dialect statistics on hand-made records, and
re-scoring the study's 13 raw output files."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest
from scipy.stats import binomtest

from globalign.cli import EXIT_USER_ERROR, main
from globalign.data.md3 import WordGameItem
from globalign.rescore.md3 import read_md3_predictions
from globalign.study_models import STUDY_FAMILIES, default_pairs, study_pairs
from globalign.tasks.base import SampleRecord, StatsSettings, TaskSettings
from globalign.tasks.md3 import (
    build_prompt,
    choice_candidates,
    dialect_comparisons,
    dialect_metrics,
    generation_correct,
    stratified_sample,
)

ATOMS = ("Atom", "Proton", "Neutron", "Charge", "Negative")


# ---------------------------------------------------------------------------------- the rule
@pytest.mark.parametrize(
    ("answer", "correct"),
    [
        ("Electronics.", True),  # a substring counts, as in the study
        ("electron", True),
        ("ELECTRON\n\n---", True),
        ("Atom", False),
        ("Electron or Atom", False),  # naming a distractor is wrong even with the word
        ("Electrons and protons", False),  # "Proton" is a distractor
        ("", False),
        ("Elec tron", False),
    ],
)
def test_generation_rule(answer, correct):
    assert generation_correct(answer, "Electron", ATOMS) is correct


def test_prompt_is_the_studys_and_ends_after_secret_word():
    item = WordGameItem("0", "en_in", "Speaker0: hi\nSpeaker1: ok", "Electron", ATOMS)
    parts = build_prompt(item)
    assert parts.raw.startswith("I am going to show you the transcript of a game two people are playing called "
                                "Taboo.  The goal")
    assert parts.raw.endswith('---\n\nTranscript: "Speaker0: hi\nSpeaker1: ok"\n\nSecret Word:')
    assert parts.user == parts.raw and parts.assistant_prefix == ""


def test_choice_position_is_seeded_per_item_and_covers_every_slot():
    items = [WordGameItem(str(i), "en_us", "t", f"w{i}", ATOMS) for i in range(200)]
    placed = [choice_candidates(item, 221) for item in items]
    assert [choice_candidates(item, 221) for item in items] == placed  # deterministic
    assert Counter(k for _, k in placed).keys() == set(range(6))  # all six positions occur
    for (words, k), item in zip(placed, items):
        assert words[k] == item.secret_word and len(words) == 6
        assert [w for w in words if w != item.secret_word] == list(ATOMS)
    assert [k for _, k in (choice_candidates(i, 1) for i in items)] != [k for _, k in placed]


def test_stratified_sample_keeps_shares_and_is_seeded():
    items = ([WordGameItem(f"i{n}", "en_in", "", "w", ATOMS) for n in range(216)]
             + [WordGameItem(f"n{n}", "en_ng", "", "w", ATOMS) for n in range(251)]
             + [WordGameItem(f"u{n}", "en_us", "", "w", ATOMS) for n in range(427)])
    sample = stratified_sample(items, 60, 221)
    assert len(sample) == 60
    assert Counter(i.dialect for i in sample) == {"en_in": 14, "en_ng": 17, "en_us": 29}
    assert sample == stratified_sample(items, 60, 221)
    assert sample != stratified_sample(items, 60, 222)
    assert [items.index(i) for i in sample] == sorted(items.index(i) for i in sample)  # file order


# ---------------------------------------------------------------------------------- statistics
def _records(model: str, outcomes: dict[str, list[int]]) -> list[SampleRecord]:
    return [SampleRecord("md3", model, f"{d}-{n}", d, "", "", None, {"generation_correct": v})
            for d, values in outcomes.items() for n, v in enumerate(values)]


SETTINGS = TaskSettings(stats=StatsSettings(n_boot=2000, n_perm=4000, seed=0))


def test_dialect_metrics_hand_computed():
    records = {"base": _records("base", {"en_in": [1, 0, 0, 0], "en_ng": [1, 1, 0, 0], "en_us": [1, 1, 1, 0]})}
    rows = {(r.metric, r.group): r for r in dialect_metrics(records, SETTINGS)}
    assert rows[("generation_accuracy", "en_in")].value == 0.25
    assert rows[("generation_accuracy", "en_us")].value == 0.75
    assert rows[("generation_accuracy", "all")].value == 0.5 and rows[("generation_accuracy", "all")].n == 12
    assert rows[("generation_gap", "en_us-en_in")].value == pytest.approx(0.5)
    assert rows[("generation_gap", "en_us-en_ng")].value == pytest.approx(0.25)
    assert rows[("generation_gap", "en_us-en_in")].n == 8
    assert rows[("generation_gap_range", "en_us-en_in")].value == pytest.approx(0.5)
    assert not any(m.startswith("choice") for m, _ in rows)  # no distributions, no choice metric


def test_dialect_comparisons_mcnemar_and_gap_change_hand_computed():
    base = {"en_in": [0] * 10, "en_us": [0] * 10}
    aligned = {"en_in": [0] * 10, "en_us": [1] * 6 + [0] * 4}
    records = {"base": _records("base", base), "aligned": _records("aligned", aligned)}
    rows = {(r.metric, r.group): r for r in dialect_comparisons(records, [("base", "aligned")], SETTINGS)}
    us = rows[("generation_accuracy", "en_us")]
    assert us.delta == pytest.approx(0.6) and us.n == 10 and us.test == "McNemar exact"
    assert us.p_value == pytest.approx(binomtest(6, 6, 0.5).pvalue)  # 6 discordant pairs, all one way
    assert rows[("generation_accuracy", "en_in")].p_value == 1.0
    # Holm over all, en_in, en_us: the smallest p is multiplied by 3
    p_all = rows[("generation_accuracy", "all")].p_value
    assert min(p_all, us.p_value) * 3 == pytest.approx(min(rows[("generation_accuracy", g)].p_adjusted
                                                           for g in ("all", "en_us")))
    change = rows[("generation_gap_change", "en_us-en_in")]
    assert change.delta == pytest.approx(0.6)  # the gap went from 0 to 0.6
    assert change.p_value < 0.05
    assert rows[("generation_gap_change", "range")].delta == pytest.approx(0.6)


def test_comparisons_pair_items_by_id_not_by_position():
    a = _records("a", {"en_us": [1, 0, 1]})
    b = list(reversed(_records("b", {"en_us": [1, 0, 1]})))
    rows = dialect_comparisons({"a": a, "b": b}, [("a", "b")], SETTINGS)
    assert all(r.delta == 0 for r in rows if r.metric == "generation_accuracy")


# ---------------------------------------------------------------------------------- study families
def test_study_pairs_follow_the_families():
    models = [m for chain in STUDY_FAMILIES.values() for m in chain]
    pairs = study_pairs(models)
    assert ("mistralai/Mistral-7B-v0.1", "HuggingFaceH4/zephyr-7b-beta") in pairs
    assert ("HuggingFaceH4/mistral-7b-sft-beta", "HuggingFaceH4/zephyr-7b-beta") in pairs
    assert ("meta-llama/Llama-2-7b-hf", "meta-llama/Llama-2-7b-chat-hf") in pairs
    assert len(pairs) == len(set(pairs)) == 12  # 3 one-step families, 3 x (2 steps + base -> final)
    assert default_pairs(["x", "y", "z"]) == [("x", "y"), ("y", "z"), ("x", "z")]  # one family: steps, then whole


# ---------------------------------------------------------------------------------- re-scoring
@pytest.fixture(scope="module")
def study_outputs(data_dir) -> Path:
    return data_dir / "paper_outputs" / "outputs" / "md3-game"


def _file_accuracy(path: Path) -> dict[str, float]:
    """Per-dialect generation accuracy from the file's own generated_correct_answer column."""
    hits: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            totals[row["dialect"]] += 1
            hits[row["dialect"]] += row["generated_correct_answer"] == "True"
    return {d: hits[d] / totals[d] for d in totals}


def test_reading_the_studys_13_files(study_outputs):
    predictions = read_md3_predictions(study_outputs)
    assert len(predictions.records) == 13
    assert "HuggingFaceH4/zephyr-7b-beta" in predictions.records and "01-ai/Yi-6B" in predictions.records
    for model, records in predictions.records.items():
        assert len(records) == 894
        file = Path(predictions.files[model][0])
        ours = {d: sum(r.metrics["generation_correct"] for r in records if r.group == d)
                / sum(1 for r in records if r.group == d) for d in ("en_in", "en_ng", "en_us")}
        assert ours == pytest.approx(_file_accuracy(file))
    # the rule recomputed from generated_answer agrees with the study's column on every row; only the
    # Qwen files' 13 rows without probabilities get a note
    assert len(predictions.notes) == 2 and all("13 rows have no candidate probabilities" in n for n in predictions.notes)


def test_rescore_command_writes_the_contract(study_outputs, tmp_path, capsys):
    out = tmp_path / "rescored"
    code = main(["rescore", "--task", "md3", "--predictions", str(study_outputs / "zephyr-7b-beta_8bit-no-answers.csv"),
                 "--output", str(out), "--n-boot", "500", "--n-perm", "500"])
    assert code == 0
    with (out / "metrics.csv").open() as handle:
        rows = {(r["metric"], r["group"]): r for r in csv.DictReader(handle)}
    assert float(rows[("generation_accuracy", "en_us")]["value"]) == pytest.approx(198 / 427)
    assert rows[("generation_accuracy", "en_us")]["model"] == "HuggingFaceH4/zephyr-7b-beta"
    assert float(rows[("choice_accuracy", "all")]["value"]) == pytest.approx(588 / 894)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["mode"] == "rescore" and manifest["models"][0]["n_items"] == 894
    assert len((out / "samples.jsonl").read_text().splitlines()) == 894
    assert "md3 / generation_accuracy" in capsys.readouterr().out


def test_rescore_compares_a_named_pair(study_outputs, tmp_path):
    out = tmp_path / "pair"
    assert main(["rescore", "--task", "md3", "--predictions", str(study_outputs), "--output", str(out),
                 "--compare", "mistralai/Mistral-7B-v0.1:HuggingFaceH4/zephyr-7b-beta",
                 "--n-boot", "200", "--n-perm", "200"]) == 0
    with (out / "comparisons.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {(r["model_a"], r["model_b"]) for r in rows} == {("mistralai/Mistral-7B-v0.1", "HuggingFaceH4/zephyr-7b-beta")}
    us = next(r for r in rows if r["metric"] == "generation_accuracy" and r["group"] == "en_us")
    assert float(us["delta"]) == pytest.approx((198 - 38) / 427)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "tydiqa_x"], "unknown task for rescore 'tydiqa_x'"),
        (["--predictions", "/nonexistent/x"], "no such file or folder"),
        (["--compare", "a-b"], "expected BASE:ALIGNED"),
        (["--compare", "HuggingFaceH4/zephyr-7b-bet:x"], "did you mean 'HuggingFaceH4/zephyr-7b-beta'"),
    ],
)
def test_rescore_errors_are_one_line(study_outputs, tmp_path, capsys, args, message):
    base = {"--task": "md3", "--predictions": str(study_outputs / "zephyr-7b-beta_8bit-no-answers.csv"),
            "--output": str(tmp_path / "o")}
    flags = dict(zip(args[::2], args[1::2]))
    argv = ["rescore"] + [x for k, v in {**base, **flags}.items() for x in (k, v)]
    assert main(argv) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_rescore_file_missing_a_column(tmp_path, capsys):
    bad = tmp_path / "preds.csv"
    bad.write_text("dialect,generated_answer,correct_answer\nen_us,Apple,Apple\n")
    assert main(["rescore", "--task", "md3", "--predictions", str(bad), "--output", str(tmp_path / "o")]) == EXIT_USER_ERROR
    assert "preds.csv: missing column 'distractors'" in capsys.readouterr().err


def test_rescore_minimal_file_names_the_model_by_the_file(tmp_path):
    preds = tmp_path / "my-model.csv"
    preds.write_text("dialect,generated_answer,correct_answer,distractors\n"
                     "en_us,Apple pie,Apple,\"['Fruit']\"\nen_in,Fruit,Apple,\"['Fruit']\"\n")
    read = read_md3_predictions(preds)
    assert list(read.records) == ["my-model"]
    assert [r.metrics for r in read.records["my-model"]] == [{"generation_correct": 1}, {"generation_correct": 0}]
