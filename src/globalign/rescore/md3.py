"""Reading MD3 word-game predictions: the study's `outputs/md3-game/<model>_8bit-no-answers.csv` files,
or any CSV with the same core columns (docs/md3.md, "Re-scoring")."""

from __future__ import annotations

from pathlib import Path

from globalign.data.md3 import WordGameItem, item_fields
from globalign.data.tables import parse_literal, read_rows
from globalign.errors import DataError
from globalign.rescore.predictions import Predictions, Rescorer, model_from_column, prediction_files
from globalign.tasks.base import SampleRecord
from globalign.tasks.md3 import dialect_comparisons, dialect_metrics, records_for_item

REQUIRED = ("dialect", "generated_answer", "correct_answer", "distractors")
FORMATS = ("CSV files (one per model) with columns dialect, generated_answer, correct_answer, distractors; optional "
           "model, item_id, correct_answer_prob + distractor_probs (6-way choice), as the study's md3-game outputs")


def _probability(value: object, where: str, column: str) -> float:
    """A probability in [0, 1]: `1e999`, `inf`, `-0.2` and `1.5` are errors (NaN rows are `_missing`)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DataError(f"{where}: {column} is not a number ({str(value)[:40]!r})") from None
    if not 0.0 <= number <= 1.0:  # False for NaN and infinities too
        raise DataError(f"{where}: {column} {str(value)[:40]} is not a probability (a number in [0, 1])")
    return number


def _distractor_probs(text: str, where: str, n: int) -> list[float]:
    try:
        value = parse_literal(text, "distractor_probs")
    except ValueError as e:
        raise DataError(f"{where}: {e}") from None
    if not isinstance(value, list) or len(value) != n or not all(isinstance(v, (int, float)) for v in value):
        raise DataError(f"{where}: distractor_probs must be a list of {n} numbers")
    return [_probability(v, where, f"distractor_probs[{i}]") for i, v in enumerate(value)]


def _missing(correct_prob: str, distractor_probs: str) -> bool:
    """A row whose probabilities were not computed (empty or NaN: the study's Qwen files have 13)."""
    return not correct_prob.strip() or correct_prob.strip().lower() == "nan" or "nan" in distractor_probs.lower()


def _read_file(path: Path) -> tuple[str, list[SampleRecord], dict[str, int]]:
    rows = read_rows(path, REQUIRED)
    if not rows:
        raise DataError(f"{path}: no prediction rows")
    header = set(rows[0][1])
    model = model_from_column(rows, "model", path)
    with_probs = {"correct_answer_prob", "distractor_probs"} <= header
    records: list[SampleRecord] = []
    agreement = {"generation_checked": 0, "generation_agree": 0, "choice_checked": 0, "choice_agree": 0,
                 "choice_missing": 0}
    seen: set[str] = set()
    for index, (where, row) in enumerate(rows):
        dialect, distractors = item_fields(where, row["dialect"], row["distractors"])
        item_id = row["item_id"].strip() if row.get("item_id", "").strip() else str(index)
        if item_id in seen:
            raise DataError(f"{where}: item id '{item_id}' appears twice")
        seen.add(item_id)
        item = WordGameItem(item_id, dialect, row.get("transcript", ""), row["correct_answer"], distractors)
        distribution = None
        if with_probs and _missing(row["correct_answer_prob"], row["distractor_probs"]):
            agreement["choice_missing"] += 1
        elif with_probs:
            # The file keeps no candidate order: put the correct word first (so a tie counts as correct;
            # on the study's 13 files the result agrees with its chose_correct_answer on every row).
            distribution = [_probability(row["correct_answer_prob"], where, "correct_answer_prob"),
                            *_distractor_probs(row["distractor_probs"], where, len(distractors))]
        record = records_for_item(item, model, "", row["generated_answer"].strip(), (item.secret_word, *distractors),
                                  0, distribution)
        records.append(record)
        for column, metric in (("generated_correct_answer", "generation"), ("chose_correct_answer", "choice")):
            stored = row.get(column, "").strip()
            if stored in ("True", "False") and f"{metric}_correct" in record.metrics:
                agreement[f"{metric}_checked"] += 1
                agreement[f"{metric}_agree"] += int((stored == "True") == bool(record.metrics[f"{metric}_correct"]))
    return model, records, agreement


def read_md3_predictions(path: Path, data_dir: Path | None = None) -> Predictions:
    """The MD3 prediction files carry their own items (word, distractors), so `data_dir` is unused."""
    records: dict[str, list[SampleRecord]] = {}
    files: dict[str, list[str]] = {}
    notes: list[str] = []
    for file in prediction_files(path, ".csv"):
        model, model_records, agreement = _read_file(file)
        if model in records:
            raise DataError(f"{file}: model '{model}' already read from {files[model][0]}")
        records[model], files[model] = model_records, [str(file)]
        if agreement["choice_missing"]:
            notes.append(f"{model}: {agreement['choice_missing']} rows have no candidate probabilities (empty or NaN "
                         "in the file); they are left out of choice accuracy (the study counted them as wrong)")
        for metric in ("generation", "choice"):
            checked, agree = agreement[f"{metric}_checked"], agreement[f"{metric}_agree"]
            if checked and agree != checked:
                notes.append(f"{model}: recomputed {metric} correctness differs from the file's column on "
                             f"{checked - agree} of {checked} rows")
    return Predictions(records, files, notes)


RESCORER = Rescorer(read_md3_predictions, dialect_metrics, dialect_comparisons, FORMATS)
