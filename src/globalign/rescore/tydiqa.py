"""Reading TyDi QA predictions: `{question id: generated text}` JSON files, one per model and language,
named `<language>.json` (the study's `outputs/tydiqa-goldp/{<model>_8bit}/greedy/1-shot/` layout).

The predictions path may be one file, one model's folder, or a folder of model folders. A model has
one file per language, so when no language repeats under the path, the path is one model's folder
(named by its folder); otherwise each folder directly below the path is a model. A file's model
is the nearest folder above it named like a study model, when there is one: the study's folder
names map to hub ids (`{zephyr-7b-beta_8bit}` -> `HuggingFaceH4/zephyr-7b-beta`). Gold answers come
from the TyDi QA data (--data-dir or the hub).
"""

from __future__ import annotations

import json
from pathlib import Path

from globalign.data.locate import resolve_data_dir
from globalign.data.tables import read_text
from globalign.data.tydiqa import CODE_BY_NAME, load_tydiqa
from globalign.errors import DataError
from globalign.rescore.predictions import Predictions, Rescorer
from globalign.study_models import study_model_id
from globalign.tasks.base import SampleRecord
from globalign.tasks.tydiqa import language_comparisons, language_metrics, make_record

FORMATS = ("JSON files {question id: generated text} named <language>.json (arabic, bengali, ...), one "
           "folder per model, as the study's tydiqa-goldp outputs")


def _model_name(file: Path, root: Path, one_model: bool) -> str:
    for folder in file.resolve().parents:  # the nearest study model folder, also above `root`
        model = study_model_id(folder.name)
        if model:
            return model
    if one_model or file.parent == root:
        return root.name
    return file.relative_to(root).parts[0]


def _files(path: Path) -> list[tuple[str, Path]]:
    """(model name, file) for every language file under `path`."""
    if path.is_file():
        return [(_model_name(path, path.parent, True), path)]
    if not path.is_dir():
        raise DataError(f"--predictions {path}: no such file or folder")
    files = [f for f in sorted(path.rglob("*.json")) if f.stem in CODE_BY_NAME]
    if not files:
        raise DataError(f"--predictions {path}: no <language>.json files ({', '.join(CODE_BY_NAME)}) found")
    one_model = len({f.stem for f in files}) == len(files)
    return [(_model_name(f, path, one_model), f) for f in files]


def _read_json(path: Path) -> dict[str, str]:
    try:
        value = json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise DataError(f"{path}: expected a JSON object {{question id: generated text}}")
    return value


def read_tydiqa_predictions(path: Path, data_dir: Path | None = None) -> Predictions:
    if path.is_file() and path.stem not in CODE_BY_NAME:
        raise DataError(f"{path}: the file name must be a TyDi QA language ({', '.join(CODE_BY_NAME)}).json")
    files = _files(path)
    data = load_tydiqa(data_dir if data_dir is not None else resolve_data_dir())
    questions = {q.item_id: q for q in data.dev}
    records: dict[str, list[SampleRecord]] = {}
    sources: dict[str, list[str]] = {}
    notes: list[str] = []
    for model, file in files:
        language = CODE_BY_NAME[file.stem]
        generations = _read_json(file)
        for question_id, text in generations.items():
            question = questions.get(question_id)
            if question is None:
                raise DataError(f"{file}: question id '{question_id[:60]}' is not in the TyDi QA GoldP dev data")
            if question.language != language:
                raise DataError(f"{file}: question '{question_id[:60]}' is not {file.stem}")
            records.setdefault(model, []).append(make_record(question, model, "", text, ""))
        sources.setdefault(model, []).append(str(file))
        expected = sum(1 for q in data.dev if q.language == language)
        if len(generations) != expected:
            notes.append(f"{model}: {file.name} has {len(generations)} of the {expected} {file.stem} questions")
    for model, model_records in records.items():
        ids = [r.item_id for r in model_records]
        if len(ids) != len(set(ids)):
            raise DataError(f"{model}: a question appears in two of its files ({', '.join(sources[model])})")
    return Predictions(records, sources, notes)


RESCORER = Rescorer(read_tydiqa_predictions, language_metrics, language_comparisons, FORMATS)
