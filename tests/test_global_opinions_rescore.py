"""`rescore --task global_opinions`: the study's GlobalOpinionsQA outputs, re-scored correctly or with
its parser replayed (which must give back the similarities the study stored)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from scipy.spatial.distance import jensenshannon

from globalign.cli import main
from globalign.errors import DataError
from globalign.rescore.global_opinions import read_with_agreement
from globalign.study_models import STUDY_SHORT_NAMES
from globalign.tasks.opinion_metrics import study_countries

STUDY_FILES = "paper_outputs/outputs/globalopinionsqa"
# The two pairs the best-estimate data cannot reproduce (data/README.md 3d: both 'inverted_uncertain').
KNOWN_EXCEPTIONS = {(2439, "Libya"), (2459, "Kenya")}


def _folder_with(tmp_path: Path, source: Path, names: list[str]) -> Path:
    folder = tmp_path / "predictions"
    folder.mkdir()
    for name in names:
        os.symlink(source / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def study_parser_read(data_dir):
    return read_with_agreement(data_dir / STUDY_FILES, data_dir, study_parser=True)


@pytest.mark.slow  # about 20 s: all 13 files
def test_study_parser_reproduces_every_stored_similarity_of_all_13_models(data_dir, study_parser_read):
    predictions, agreements = study_parser_read
    assert set(predictions.records) == {STUDY_SHORT_NAMES[f.name.removesuffix("_8bit.csv")]
                                        for f in (data_dir / STUDY_FILES).iterdir()}
    assert len(agreements) == 13
    for model, agreement in agreements.items():
        assert agreement.checked == 46_244, model  # every numeric cell of the file
        assert set(agreement.disagreeing) <= KNOWN_EXCEPTIONS, model
        assert agreement.agree >= 46_242, model
        assert agreement.max_abs_diff_agreeing < 1e-9, model
        assert agreement.both_missing == 85 and agreement.mismatched_presence == 0, model
    assert "601146 of 601172 similarities" in " ".join(predictions.notes)


def test_corrected_parsing_scores_belgium_q0_against_the_survey_not_the_truncated_vector(data_dir, tmp_path):
    """Belgium on question 0: survey [0.21, 0.07, 0.69, 0.03]; the study's parser read [.., 0.0]."""
    source = data_dir / STUDY_FILES
    row = next(csv.DictReader((source / "zephyr-7b-beta_8bit.csv").open(encoding="utf-8")))
    probs = json.loads(row["probs"])
    folder = _folder_with(tmp_path, source, ["zephyr-7b-beta_8bit.csv"])
    by_mode = {}
    for study_parser in (False, True):
        predictions, _ = read_with_agreement(folder, data_dir, study_parser=study_parser)
        (records,) = predictions.records.values()
        by_mode[study_parser] = records[0].metrics["similarity@Belgium"]
    assert by_mode[False] == pytest.approx(1 - jensenshannon(probs, [0.21, 0.07, 0.69, 0.03]), abs=1e-15)
    assert by_mode[True] == pytest.approx(float(row["Belgium"]), abs=1e-12)
    assert abs(by_mode[False] - by_mode[True]) > 1e-3


def test_rescore_study7_with_the_study_parser_gives_the_studys_means(data_dir, tmp_path):
    source = data_dir / STUDY_FILES
    folder = _folder_with(tmp_path, source, ["Mistral-7B-v0.1_8bit.csv", "zephyr-7b-beta_8bit.csv"])
    out = tmp_path / "run"
    assert main(["rescore", "--task", "global_opinions", "--predictions", str(folder), "--output", str(out),
                 "--data-dir", str(data_dir), "--study-parser", "--countries", "study7",
                 "--n-boot", "200", "--n-perm", "200"]) == 0
    # independently: the study's own stored cells, averaged over the questions all seven countries answered
    rows = list(csv.DictReader((source / "zephyr-7b-beta_8bit.csv").open(encoding="utf-8")))
    countries = study_countries()
    kept = [r for r in rows if all(r[c] != "-1.0" for c in countries)]  # empty = all-zero survey: left out
    assert len(kept) == 245
    metrics = {(r["model"], r["group"], r["metric"]): r for r in csv.DictReader((out / "metrics.csv").open())}
    zephyr = "HuggingFaceH4/zephyr-7b-beta"
    for country in countries:
        values = [float(r[country]) for r in kept if r[country]]
        row = metrics[(zephyr, country, "similarity")]
        assert float(row["value"]) == pytest.approx(sum(values) / len(values), abs=1e-12)
        assert int(row["n"]) == len(values) >= 244
    both = [r for r in kept if r["China"] and r["United States"]]
    relative = sum(float(r["China"]) - float(r["United States"]) for r in both) / len(both)
    assert float(metrics[(zephyr, "China", "relative_agreement")]["value"]) == pytest.approx(relative, abs=1e-12)
    comparisons = list(csv.DictReader((out / "comparisons.csv").open()))
    assert {(r["model_a"], r["model_b"]) for r in comparisons} == {("mistralai/Mistral-7B-v0.1", zephyr)}
    assert {r["metric"] for r in comparisons} == {"similarity", "relative_agreement"}
    assert all(float(r["p_adjusted"]) >= float(r["p_value"]) for r in comparisons)  # Holm
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["options"] == {"study_parser": True, "countries": "study7"}
    assert any("estimated values, not the original file" in n for n in manifest["notes"])


def _one_bad_file(tmp_path: Path, data_dir: Path, change) -> Path:
    source = data_dir / STUDY_FILES / "yi-8b_8bit.csv"
    with source.open(encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = [next(reader) for _ in range(3)]
        header = list(reader.fieldnames or [])
    header, rows = change(header, rows)
    path = tmp_path / "bad" / "yi-8b_8bit.csv"
    path.parent.mkdir()
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _set(row: int, column: str, value: str):
    def change(header, rows):
        rows[row][column] = value
        return header, rows
    return change


@pytest.mark.parametrize(("change", "message"), [
    (lambda h, r: ([c for c in h if c != "probs"], r), "missing column 'probs'"),
    (_set(1, "probs", "[0.5, -0.1, 0.6]"), r"row 2 \(line \d+\): probs\[1\] = -0.1 is not a finite non-negative"),
    (_set(0, "probs", "[0.5, NaN, 0.2, 0.3]"), r"row 1 \(line 2\): probs\[1\] = nan is not a finite"),
    (_set(0, "probs", "[0.5, Infinity, 0.2, 0.3]"), r"row 1 .*probs\[1\] = inf is not a finite"),
    (_set(0, "probs", "[0.5, 0.5]"), "probs has 2 values, the question has 4 options"),
    (_set(2, "question", "Who let the dogs out?"), r"row 3 .*unknown question 'Who let the dogs out\?'"),
    (_set(0, "Belgium", "abc"), r"row 1 .*column 'Belgium' is not a number"),
])
def test_bad_prediction_files_are_one_line_errors_naming_file_and_row(tmp_path, data_dir, change, message):
    path = _one_bad_file(tmp_path, data_dir, change)
    with pytest.raises(DataError, match=message) as error:
        read_with_agreement(path, data_dir)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_rescore_refuses_study_parser_for_another_task(tmp_path, data_dir, capsys):
    code = main(["rescore", "--task", "md3", "--predictions", str(data_dir / "paper_outputs/outputs/md3-game"),
                 "--output", str(tmp_path / "x"), "--study-parser"])
    assert code == 2 and "study_parser" in capsys.readouterr().err
