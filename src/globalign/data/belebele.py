"""Belebele (Bandarkar et al. 2023, `facebook/belebele`): 4-way multiple-choice reading comprehension
on FLORES-200 passages, fully parallel across 122 language variants.

We read the 9 variants that match TyDiQA's languages (PROTOCOL.md: Arabic is `acm_Arab`, Mesopotamian
Arabic, as in the study). The hub repository holds one JSON-lines file per variant, `data/<variant>.jsonl`,
with the fields in `FIELDS`; `correct_answer_num` is a one-based string ("1".."4"). The data is not in
../shared/data: it comes from a local `belebele/` folder when one exists, else from the hub at a pinned
revision (`load_belebele`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from globalign.data.tables import jsonl_objects
from globalign.errors import DataError

HF_REPO = "facebook/belebele"
# The commit "upload wol-zul", the last of the uploads that created data/<variant>.jsonl for all 122
# variants; later commits on main only edit the README.
HF_REVISION = "6674de7f93c928b071b4cbf8b45e8b413f3290d7"
SUBDIR = "belebele"

# Our language code (TyDiQA's, the output group) -> Belebele variant (FLORES-200 code).
VARIANTS: dict[str, str] = {
    "ar": "acm_Arab",
    "bn": "ben_Beng",
    "en": "eng_Latn",
    "fi": "fin_Latn",
    "id": "ind_Latn",
    "ko": "kor_Hang",
    "ru": "rus_Cyrl",
    "sw": "swh_Latn",
    "te": "tel_Telu",
}
LANGUAGES = tuple(VARIANTS)
ANSWER_FIELDS = ("mc_answer1", "mc_answer2", "mc_answer3", "mc_answer4")
FIELDS = ("link", "question_number", "flores_passage", "question", *ANSWER_FIELDS, "correct_answer_num",
          "dialect", "ds")
_TEXT_FIELDS = ("link", "flores_passage", "question", *ANSWER_FIELDS)


@dataclass(frozen=True)
class BelebeleQuestion:
    """One Belebele row. `correct_index` is 0-based (the file's `correct_answer_num` minus 1)."""

    item_id: str
    language: str
    variant: str
    passage: str
    question: str
    answers: tuple[str, str, str, str]
    correct_index: int
    link: str
    question_number: int


@dataclass(frozen=True)
class BelebeleDataset:
    """The questions of the requested languages (in language order, file order within one), and where
    they came from: `origin` is "local" or "hub"; `paths` maps each variant to the file read."""

    questions: tuple[BelebeleQuestion, ...]
    origin: str
    revision: str | None
    paths: dict[str, str]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for q in self.questions:
            out[q.language] = out.get(q.language, 0) + 1
        return out


def item_id(variant: str, link: str, passage: str, question_number: int) -> str:
    """`<variant>-<10 hex of sha256(link), or of the passage when the link is empty>-<question_number>`.
    The hash part is the same in every variant for a given link (the dataset is parallel)."""
    key = link if link else passage
    return f"{variant}-{hashlib.sha256(key.encode('utf-8')).hexdigest()[:10]}-{question_number}"


def _answer_num(value: Any, where: str) -> int:
    """`correct_answer_num` as 1..4: a string ("2", the hub's type) or an integer."""
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise DataError(f"{where}: field 'correct_answer_num' should be \"1\"..\"4\", got {value!r}")
    if not 1 <= number <= 4:
        raise DataError(f"{where}: field 'correct_answer_num' is {value!r}, outside 1..4")
    return number


def _question_number(value: Any, where: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise DataError(f"{where}: field 'question_number' should be a non-negative integer, got {value!r}")


def parse_row(row: Mapping[str, Any], language: str, variant: str, where: str) -> BelebeleQuestion:
    """One JSON object of a variant file -> a question; DataError naming `where` for any problem."""
    for name in FIELDS:
        if name not in row:
            raise DataError(f"{where}: missing field '{name}'")
    for name in _TEXT_FIELDS:
        if not isinstance(row[name], str):
            raise DataError(f"{where}: field '{name}' should be a string, got {type(row[name]).__name__}")
    for name in ("flores_passage", "question"):
        if not row[name].strip():
            raise DataError(f"{where}: field '{name}' is empty")
    number = _question_number(row["question_number"], where)
    a1, a2, a3, a4 = (row[name] for name in ANSWER_FIELDS)
    return BelebeleQuestion(
        item_id=item_id(variant, row["link"], row["flores_passage"], number),
        language=language,
        variant=variant,
        passage=row["flores_passage"],
        question=row["question"],
        answers=(a1, a2, a3, a4),
        correct_index=_answer_num(row["correct_answer_num"], where) - 1,
        link=row["link"],
        question_number=number,
    )


def read_variant_file(path: Path, language: str, variant: str) -> list[BelebeleQuestion]:
    """All questions of one `<variant>.jsonl`; blank lines are skipped, item ids must be unique."""
    questions: list[BelebeleQuestion] = []
    seen: dict[str, str] = {}
    for where, row in jsonl_objects(path, skip_blank=True):
        question = parse_row(row, language, variant, where)
        if question.item_id in seen:
            raise DataError(f"{where}: duplicate question (same link and question_number {question.question_number}"
                            f" as {seen[question.item_id]}; item id {question.item_id})")
        seen[question.item_id] = "line " + where.rsplit(":", 1)[1]
        questions.append(question)
    if not questions:
        raise DataError(f"{path}: no questions (empty file)")
    return questions


def local_variant_path(folder: Path, variant: str) -> Path:
    """`<folder>/<variant>.jsonl`, else the hub's layout `<folder>/data/<variant>.jsonl`."""
    for candidate in (folder / f"{variant}.jsonl", folder / "data" / f"{variant}.jsonl"):
        if candidate.is_file():
            return candidate
    raise DataError(f"Belebele {variant}: no {variant}.jsonl in {folder} or {folder / 'data'} "
                    f"(the hub's layout is data/<variant>.jsonl; {HF_REPO})")


def _check_languages(languages: Iterable[str]) -> list[str]:
    out = list(languages)
    for code in out:
        if code not in VARIANTS:
            raise DataError(f"Belebele: no variant for language {code!r} (known: {', '.join(VARIANTS)})")
    return out


def read_local(folder: Path, languages: Sequence[str] = LANGUAGES) -> BelebeleDataset:
    """The requested languages from a local folder (either layout, see `local_variant_path`)."""
    questions: list[BelebeleQuestion] = []
    paths: dict[str, str] = {}
    for language in _check_languages(languages):
        variant = VARIANTS[language]
        path = local_variant_path(folder, variant)
        paths[variant] = str(path)
        questions.extend(read_variant_file(path, language, variant))
    return BelebeleDataset(tuple(questions), "local", None, paths)


def load_from_hub(languages: Sequence[str] = LANGUAGES, revision: str = HF_REVISION) -> BelebeleDataset:
    """Download `data/<variant>.jsonl` for each language from the hub (pinned revision) and read them."""
    hint = f"pass --data-dir with a {SUBDIR}/ folder holding <variant>.jsonl files (docs/belebele.md)"
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise DataError(f"could not download {HF_REPO}: huggingface_hub is not installed; {hint}") from None
    questions: list[BelebeleQuestion] = []
    paths: dict[str, str] = {}
    for language in _check_languages(languages):
        variant = VARIANTS[language]
        filename = f"data/{variant}.jsonl"
        try:
            local = hf_hub_download(repo_id=HF_REPO, repo_type="dataset", filename=filename, revision=revision)
        except Exception as e:  # noqa: BLE001 (network, offline mode, auth, unknown revision: same advice)
            reason = (str(e).strip().splitlines() or [""])[0][:160]
            raise DataError(f"could not download {HF_REPO}/{filename}@{revision[:12]} (offline?): "
                            f"{type(e).__name__}: {reason}; {hint}") from None
        paths[variant] = str(local)
        questions.extend(read_variant_file(Path(local), language, variant))
    return BelebeleDataset(tuple(questions), "hub", revision, paths)


def load_belebele(data_dir: Path | None, languages: Sequence[str] = LANGUAGES) -> BelebeleDataset:
    """`<data_dir>/belebele/` when that folder exists, else the hub (it is not in ../shared/data)."""
    if data_dir is not None and (Path(data_dir) / SUBDIR).is_dir():
        return read_local(Path(data_dir) / SUBDIR, languages)
    return load_from_hub(languages)
