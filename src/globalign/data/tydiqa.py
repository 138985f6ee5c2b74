"""TyDi QA GoldP (PROTOCOL.md, Axis 2): 9 languages of extractive QA, SQuAD-format files or the hub.

Local layout (../shared/data): `tydiqa_goldp_dev/tydiqa-goldp-dev-<language>.json`, SQuAD 1.1 JSON.
Optional train split for the 1-shot demonstrations (not in ../shared/data): `tydiqa_goldp_train/`
holding either `tydiqa-goldp-train-<language>.json` files or the official single
`tydiqa-goldp-v1.1-train.json`. Online: the hub's `google-research-datasets/tydiqa`, config
`secondary_task` (Parquet). The language of a question is the prefix of its id before the first "-".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from globalign.data.locate import describe_search
from globalign.data.tables import read_text
from globalign.errors import DataError

# output group code -> the language name used in TyDi QA ids and file names
LANGUAGES: dict[str, str] = {
    "ar": "arabic", "bn": "bengali", "en": "english", "fi": "finnish", "id": "indonesian",
    "ko": "korean", "ru": "russian", "sw": "swahili", "te": "telugu",
}
CODE_BY_NAME = {name: code for code, name in LANGUAGES.items()}
DEV_SUBDIR = "tydiqa_goldp_dev"
TRAIN_SUBDIR = "tydiqa_goldp_train"
HF_REPO = "google-research-datasets/tydiqa"
# The commit that converted the dataset to Parquet and added the secondary_task (GoldP) files.
HF_REVISION = "da78f23f9119363459acbaf46bf89426ff26c259"
HF_FILES = {"validation": "secondary_task/validation-00000-of-00001.parquet",
            "train": "secondary_task/train-00000-of-00001.parquet"}


@dataclass(frozen=True)
class QAItem:
    item_id: str
    language: str  # code, e.g. "ar"
    title: str
    context: str
    question: str
    answers: tuple[str, ...]


@dataclass(frozen=True)
class TyDiQAData:
    dev: tuple[QAItem, ...]
    train: tuple[QAItem, ...]  # empty when no train split is available
    origin: str  # "local" or "hub"
    path: str
    train_path: str = ""
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {code: sum(1 for q in self.dev if q.language == code) for code in LANGUAGES}


def language_of(item_id: str, where: str) -> str:
    name = item_id.split("-", 1)[0]
    if name not in CODE_BY_NAME:
        raise DataError(f"{where}: id '{item_id[:60]}' does not start with a TyDi QA GoldP language "
                        f"({', '.join(CODE_BY_NAME)})")
    return CODE_BY_NAME[name]


def _item(raw: dict[str, Any], title: str, context: str, where: str) -> QAItem:
    for key, kind in (("id", str), ("question", str), ("answers", list)):
        if not isinstance(raw.get(key), kind):
            raise DataError(f"{where}: question field '{key}' missing or not a {kind.__name__}")
    answers = tuple(a.get("text") for a in raw["answers"] if isinstance(a, dict))
    if not answers or not all(isinstance(a, str) for a in answers):
        raise DataError(f"{where}: question '{raw['id']}' has no answer texts")
    return QAItem(raw["id"], language_of(raw["id"], where), title, context, raw["question"], answers)


def read_squad_file(path: Path) -> list[QAItem]:
    """Questions of a SQuAD 1.1 JSON file (`{"data": [{"title", "paragraphs": [{"context", "qas"}]}]}`)."""
    text = read_text(path)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise DataError(f"{path}: expected SQuAD JSON with a 'data' list")
    items = []
    for a, article in enumerate(document["data"]):
        where = f"{path}: data[{a}]"
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise DataError(f"{where}: article without a 'paragraphs' list")
        for p, paragraph in enumerate(article["paragraphs"]):
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get("context"), str) \
                    or not isinstance(paragraph.get("qas"), list):
                raise DataError(f"{where}.paragraphs[{p}]: needs 'context' text and a 'qas' list")
            for q, raw in enumerate(paragraph["qas"]):
                if not isinstance(raw, dict):
                    raise DataError(f"{where}.paragraphs[{p}].qas[{q}]: not an object")
                items.append(_item(raw, str(article.get("title", "")), paragraph["context"],
                                   f"{where}.paragraphs[{p}].qas[{q}]"))
    return items


def _unique(items: list[QAItem], where: str) -> tuple[QAItem, ...]:
    seen: set[str] = set()
    for item in items:
        if item.item_id in seen:
            raise DataError(f"{where}: question id '{item.item_id}' appears twice")
        seen.add(item.item_id)
    return tuple(items)


def read_local_dev(folder: Path) -> list[QAItem]:
    items = []
    for code, name in LANGUAGES.items():
        path = folder / f"tydiqa-goldp-dev-{name}.json"
        if not path.is_file():
            raise DataError(f"TyDi QA: {path} not found (expected one dev file per language in {folder})")
        file_items = read_squad_file(path)
        wrong = [i.item_id for i in file_items if i.language != code]
        if wrong:
            raise DataError(f"{path}: question '{wrong[0]}' is not {name}")
        items += file_items
    return items


def read_local_train(folder: Path) -> list[QAItem]:
    official = folder / "tydiqa-goldp-v1.1-train.json"
    if official.is_file():
        return read_squad_file(official)
    return [item for name in LANGUAGES.values() if (folder / f"tydiqa-goldp-train-{name}.json").is_file()
            for item in read_squad_file(folder / f"tydiqa-goldp-train-{name}.json")]


def read_hf_parquet(path: Path) -> list[QAItem]:
    """The hub's `secondary_task/*.parquet` (columns id, title, context, question, answers{text, answer_start})."""
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        raise DataError("reading TyDi QA from the hub needs pyarrow (pip install pyarrow)") from None
    try:
        table = pq.read_table(path)
    except Exception as e:  # noqa: BLE001 (pyarrow raises several types for a bad file)
        raise DataError(f"{path}: not a readable Parquet file ({type(e).__name__})") from None
    missing = [c for c in ("id", "title", "context", "question", "answers") if c not in table.column_names]
    if missing:
        raise DataError(f"{path}: missing column '{missing[0]}' (found: {', '.join(table.column_names)})")
    items = []
    for index, row in enumerate(table.to_pylist()):
        where = f"{path}: row {index + 1}"
        answers = row.get("answers") or {}
        texts = answers.get("text") if isinstance(answers, dict) else None
        raw = {"id": row.get("id"), "question": row.get("question"),
               "answers": [{"text": t} for t in texts] if isinstance(texts, list) else None}
        context = row.get("context")
        if not isinstance(context, str):
            raise DataError(f"{where}: context missing")
        items.append(_item(raw, str(row.get("title") or ""), context, where))
    return items


def load_from_hub(revision: str = HF_REVISION) -> TyDiQAData:
    hint = f"pass --data-dir with a folder holding {DEV_SUBDIR}/ (see data/README.md 2)"
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:  # pragma: no cover - a dependency
        raise DataError(f"could not download {HF_REPO}: huggingface_hub is not installed; {hint}") from None
    local = {}
    for split, filename in HF_FILES.items():
        try:
            local[split] = Path(hf_hub_download(repo_id=HF_REPO, repo_type="dataset", filename=filename,
                                                revision=revision))
        except Exception as e:  # noqa: BLE001 (network, offline mode, auth, unknown revision: same advice)
            reason = (str(e).strip().splitlines() or [""])[0][:160]
            raise DataError(f"could not download {HF_REPO}/{filename}@{revision[:12]} (offline?): "
                            f"{type(e).__name__}: {reason}; {hint}") from None
    dev = read_hf_parquet(local["validation"])
    return TyDiQAData(_unique(dev, HF_REPO), _unique(read_hf_parquet(local["train"]), HF_REPO), "hub",
                      f"{HF_REPO}@{revision}", f"{HF_REPO}@{revision} (train)")


def load_tydiqa(data_dir: Path | None) -> TyDiQAData:
    """GoldP dev (and train when available) from `data_dir`, else from the hub."""
    if data_dir is not None and (data_dir / DEV_SUBDIR).is_dir():
        dev_dir = data_dir / DEV_SUBDIR
        dev = _unique(read_local_dev(dev_dir), str(dev_dir))
        train_dir = data_dir / TRAIN_SUBDIR
        train = _unique(read_local_train(train_dir), str(train_dir)) if train_dir.is_dir() else ()
        return TyDiQAData(dev, train, "local", str(dev_dir), str(train_dir) if train else "")
    if data_dir is not None:
        raise DataError(f"TyDi QA: {data_dir / DEV_SUBDIR} not found (looked in {describe_search(data_dir)})")
    return load_from_hub()
