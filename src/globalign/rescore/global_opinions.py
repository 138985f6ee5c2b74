"""Reading GlobalOpinionsQA predictions: the study's `outputs/globalopinionsqa/<model>_8bit.csv` files
(docs/global_opinions.md, "Re-scoring the study's outputs").

One CSV per model, one row per GlobalOpinionsQA question in the data's (HF) order: `question`, `probs`
(a JSON list, the model's probability per option letter) and optionally `model_id` and one column per
country holding the study's own similarity (`-1.0`: no survey data; empty: an all-zero survey vector).
The model probabilities are re-scored against the country distributions of the data folder, parsed
correctly, or with `study_parser` as the study's parser read them; in both cases the study's stored
similarities are compared with the re-computed ones and the agreement goes into the notes.
"""

from __future__ import annotations

import json
import math
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from globalign.data.global_opinions import OpinionDataset, OpinionQuestion, load_global_opinions
from globalign.data.locate import resolve_data_dir
from globalign.data.tables import finite_number, read_rows
from globalign.errors import DataError
from globalign.rescore.predictions import Predictions, Rescorer, model_from_column, prediction_files
from globalign.study_models import study_model_id
from globalign.tasks.base import SampleRecord
from globalign.tasks.global_opinions import (
    NAME,
    country_distributions,
    opinion_comparisons,
    opinion_metrics,
    resolve_countries,
    similarity_metrics,
)
from globalign.tasks.opinion_metrics import similarities

REQUIRED = ("question", "probs")
FORMATS = ("CSV files (one per model, rows in the GlobalOpinionsQA order) with columns question, probs (JSON list "
           "of option probabilities); optional model_id and per-country similarity columns, as the study's "
           "globalopinionsqa outputs")
OPTIONS = {"study_parser": "replay the study's selections-parsing bug (reproduces the study's stored similarities)",
           "countries": "all (default), a preset (study7) or a list of country labels"}
NO_DATA = -1.0  # the study's cell for a country without survey data on that question
AGREE = 1e-9  # a re-computed similarity within this of the study's stored one counts as reproduced


@dataclass
class StudyAgreement:
    """How the re-computed similarities of one file compare with the study's stored ones."""

    checked: int = 0  # numeric study cells compared
    agree: int = 0  # of those, within AGREE
    max_abs_diff: float = 0.0
    max_abs_diff_agreeing: float = 0.0  # the largest difference among the `agree` cells
    worst: str = ""  # "question 12, Kenya" for the largest difference
    disagreeing: list[tuple[int, str]] = field(default_factory=list)  # (question index, country), first 100
    both_missing: int = 0  # empty in the file (all-zero survey vector) and NaN here
    mismatched_presence: int = 0  # a country with data on one side only


def _probs(text: str, where: str, n_options: int) -> list[float]:
    try:
        value = json.loads(text)
    except ValueError:
        raise DataError(f"{where}: probs is not a JSON list ({text[:40]!r})") from None
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: probs must be a non-empty JSON list of numbers")
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise DataError(f"{where}: probs[{i}] is not a number ({str(v)[:30]!r})")
        if not math.isfinite(v) or v < 0:
            raise DataError(f"{where}: probs[{i}] = {v} is not a finite non-negative number")
    if len(value) != n_options:
        raise DataError(f"{where}: probs has {len(value)} values, the question has {n_options} options")
    if sum(value) == 0:
        raise DataError(f"{where}: probs are all zero")
    return [float(v) for v in value]


def _stored(text: str, where: str, country: str) -> float | None:
    """The study's cell: a similarity, NO_DATA, or None (empty: all-zero survey vector)."""
    text = text.strip()
    if not text or text.lower() == "nan":
        return None
    return finite_number(text, where, country)


def _model_name(rows: list[tuple[str, dict[str, str]]], path: Path) -> str:
    """The hub id: from the file name (`Llama-2-7b-hf_8bit.csv`) or the model_id column, else the file stem."""
    from_file = study_model_id(path.stem)
    if from_file:
        return from_file
    name = model_from_column(rows, "model_id", path)
    return study_model_id(name) or name


def _question_for(row_number: int, text: str, where: str, questions: Mapping[int, OpinionQuestion],
                  dataset: OpinionDataset) -> OpinionQuestion | None:
    """Row N is question N - 1 of the data (HF order); None when the data holds a subset without it."""
    question = questions.get(row_number - 1)
    if question is None:
        if dataset.origin == "thirdparty_subset":  # exact values for some questions only: the rest left out
            return None
        raise DataError(f"{where}: unknown question (the data {dataset.path} has no question {row_number - 1}; "
                        "rows must follow the GlobalOpinionsQA order)")
    if question.question.strip() != text.strip():
        raise DataError(f"{where}: unknown question {text[:50]!r}: question {question.index} of the data is "
                        f"{question.question[:50]!r} (rows must follow the GlobalOpinionsQA order)")
    return question


def _read_file(path: Path, dataset: OpinionDataset, surveys: Mapping[int, dict[str, Sequence[float]]],
               countries: Sequence[str] | None) -> tuple[str, list[SampleRecord], StudyAgreement, int]:
    rows = read_rows(path, REQUIRED)
    if not rows:
        raise DataError(f"{path}: no prediction rows")
    model = _model_name(rows, path)
    header = list(rows[0][1])
    questions = {q.index: q for q in dataset.questions}
    labels = {c for q in dataset.questions for c in q.selections}
    stored_columns = [c for c in header if c in labels]
    agreement = StudyAgreement()
    records: list[SampleRecord] = []
    skipped = 0
    for number, (where, row) in enumerate(rows, start=1):
        question = _question_for(number, row["question"], where, questions, dataset)
        if question is None:
            skipped += 1
            continue
        probs = _probs(row["probs"], where, len(question.options))
        stored = {c: _stored(row[c], where, c) for c in stored_columns}
        if question.index not in surveys:  # not a question of the chosen countries
            continue
        sims = similarities(probs, surveys[question.index])
        _compare(agreement, question.index, sims, stored, countries)
        best = max(range(len(probs)), key=probs.__getitem__)
        records.append(SampleRecord(
            task=NAME, model=model, item_id=str(question.index), group="all", prompt_hash="",
            prediction=string.ascii_uppercase[best] if best < 26 else str(best), distribution=probs,
            metrics=similarity_metrics(sims),
        ))
    return model, records, agreement, skipped


def _compare(agreement: StudyAgreement, index: int, sims: Mapping[str, float],
             stored: Mapping[str, float | None], countries: Sequence[str] | None) -> None:
    for country, value in stored.items():
        if countries is not None and country not in countries:
            continue
        ours = sims.get(country)  # None: no survey data for this question here; NaN: an all-zero survey vector
        if value == NO_DATA or ours is None:
            agreement.mismatched_presence += int((value == NO_DATA) != (ours is None))
        elif value is None or math.isnan(ours):
            both = value is None and math.isnan(ours)
            agreement.both_missing += int(both)
            agreement.mismatched_presence += int(not both)
        else:
            diff = abs(ours - value)
            agreement.checked += 1
            if diff <= AGREE:
                agreement.agree += 1
                agreement.max_abs_diff_agreeing = max(agreement.max_abs_diff_agreeing, diff)
            elif len(agreement.disagreeing) < 100:
                agreement.disagreeing.append((index, country))
            if diff > agreement.max_abs_diff:
                agreement.max_abs_diff, agreement.worst = diff, f"question {index}, {country}"


def read_with_agreement(path: Path, data_dir: Path | None = None, *, study_parser: bool = False,
                        countries: object = "all") -> tuple[Predictions, dict[str, StudyAgreement]]:
    """The records per model, and per model how the re-computed similarities compare with the file's."""
    files = prediction_files(path, ".csv")
    dataset = load_global_opinions(data_dir if data_dir is not None else resolve_data_dir())
    chosen, _ = resolve_countries(countries, dataset)
    selected = dataset.questions if chosen is None else [
        q for q in dataset.questions if all(c in q.selections for c in chosen)]
    surveys = {q.index: country_distributions(q, chosen, study_parser) for q in selected}
    records: dict[str, list[SampleRecord]] = {}
    sources: dict[str, list[str]] = {}
    agreements: dict[str, StudyAgreement] = {}
    notes = [f"{NAME}: country distributions from {dataset.path} ({dataset.origin}): {dataset.note}",
             f"{NAME}: " + ("the study's selections-parsing bug replayed (--study-parser): its numbers, not the "
                            "survey's" if study_parser else "country distributions parsed correctly (not the "
                            "study's parser; --study-parser replays it)")]
    for file in files:
        model, model_records, agreement, skipped = _read_file(file, dataset, surveys, chosen)
        if model in records:
            raise DataError(f"{file}: model '{model}' already read from {sources[model][0]}")
        records[model], sources[model], agreements[model] = model_records, [str(file)], agreement
        if skipped:
            notes.append(f"{model}: {skipped} rows are questions the data ({dataset.origin}) does not hold; left out")
    notes += agreement_notes(agreements, study_parser)
    return Predictions(records, sources, notes), agreements


def agreement_notes(agreements: Mapping[str, StudyAgreement], study_parser: bool) -> list[str]:
    """One line for all files: how many of the study's stored similarities the re-computation reproduces."""
    checked = sum(a.checked for a in agreements.values())
    if not checked:
        return []
    agree = sum(a.agree for a in agreements.values())
    worst_model = max(agreements, key=lambda m: agreements[m].max_abs_diff)
    worst = agreements[worst_model]
    presence = sum(a.mismatched_presence for a in agreements.values())
    line = (f"{NAME}: {agree} of {checked} similarities stored in the study's files are reproduced within {AGREE:g} "
            f"({'study parser' if study_parser else 'corrected parsing'}); largest difference {worst.max_abs_diff:.3g} "
            f"({worst_model}, {worst.worst})")
    if presence:
        line += f"; {presence} cells have survey data on one side only"
    return [line]


def read_global_opinions(path: Path, data_dir: Path | None = None, *, study_parser: bool = False,
                         countries: object = "all") -> Predictions:
    return read_with_agreement(path, data_dir, study_parser=study_parser, countries=countries)[0]


RESCORER = Rescorer(read_global_opinions, opinion_metrics, opinion_comparisons, FORMATS, OPTIONS)
