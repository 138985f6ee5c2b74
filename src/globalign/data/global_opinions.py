"""GlobalOpinionsQA (Durmus et al. 2023): questions, options and per-country answer distributions.

Sources, in order: the local best-estimate file, the exact third-party subset, the Hugging Face hub copy
(see `load_global_opinions`). The hub CSV stores `options` as a Python list literal and `selections` as a
`defaultdict(<class 'list'>, {...})` repr. The study `eval`ed both; here nothing is ever evaluated: the
strings are parsed with `ast` and validated (`parse_options_string`, `parse_selections_string`).
The caveats of each source are in `../shared/data/README.md` section 3 and travel in `OpinionDataset.note`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from globalign.data.locate import describe_search
from globalign.data.tables import jsonl_objects, parse_literal, read_rows
from globalign.errors import DataError

HF_REPO = "Anthropic/llm_global_opinions"
HF_FILE = "data/global_opinions.csv"
HF_REVISION = "cb2880488749218abb81802a94c2c62ebfde2f35"
SUBDIR = "globalopinionsqa"
BEST_ESTIMATE_FILE = "global_opinions_best_estimate.jsonl"
THIRDPARTY_FILE = "goqa_original_subset_thirdparty.jsonl"
QUESTIONS_FILE = "goqa_questions.jsonl"
THIRDPARTY_KEPT = ("consistent", "paper_score_nan")
SELECTIONS_WRAPPER = "defaultdict(<class 'list'>, "
CSV_COLUMNS = ("question", "selections", "options", "source")

BEST_ESTIMATE_NOTE = (
    "estimated values, not the original file: ~25% of (question, country) pairs are exact third-party copies "
    "or untouched by the study's parsing bug, the rest were inverted from the study's outputs (~93% expected "
    "exact, ~58% for the 5,332 'inverted_uncertain' pairs); see data/README.md 3d-3e"
)


@dataclass(frozen=True)
class OpinionQuestion:
    """One GlobalOpinionsQA row: options as the study's `str(option)`, raw (unnormalised) distributions."""

    index: int
    question: str
    options: tuple[str, ...]
    selections: dict[str, tuple[float, ...]]
    source: str


@dataclass(frozen=True)
class OpinionDataset:
    """The loaded questions, where they came from, and the caveat to show in the run manifest."""

    questions: tuple[OpinionQuestion, ...]
    origin: str
    path: str
    note: str


# ---------------------------------------------------------------- safe parsing of the hub strings
def _option_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return str(value)  # the study's str(option): 1.0 -> "1.0"
    raise ValueError(f"option {value!r} is not a string or a number")


def _probs(values: object) -> tuple[float, ...]:
    if not isinstance(values, list) or not values:
        raise ValueError("a distribution must be a non-empty list of numbers")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
            raise ValueError(f"probability {v!r} is not a finite non-negative number")
        out.append(float(v))
    return tuple(out)


def _selections(obj: object) -> dict[str, tuple[float, ...]]:
    if not isinstance(obj, dict):
        raise ValueError("selections must map country -> list of probabilities")  # noqa: TRY004 (API: ValueError)
    out: dict[str, tuple[float, ...]] = {}
    for country, values in obj.items():
        if not isinstance(country, str) or not country:
            raise ValueError(f"country label {country!r} is not a non-empty string")
        try:
            out[country] = _probs(values)
        except ValueError as e:
            raise ValueError(f"{country}: {e}") from None
    return out


def _options(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError("not a list")  # noqa: TRY004 (API: ValueError)
    if not value:
        raise ValueError("empty list")
    return tuple(_option_text(v) for v in value)


def parse_options_string(text: str) -> tuple[str, ...]:
    """`"['Yes', 'No', 1.0]"` -> `("Yes", "No", "1.0")`; ValueError with a short reason when malformed."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("options: empty")
    try:
        return _options(parse_literal(text, "options"))
    except ValueError as e:
        raise ValueError(str(e) if str(e).startswith("options") else f"options: {e}") from None


def parse_selections_string(text: str) -> dict[str, tuple[float, ...]]:
    """`"defaultdict(<class 'list'>, {'Belgium': [0.21, ...]})"` -> `{"Belgium": (0.21, ...)}`, file order."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("selections: empty")
    s = text.strip()
    if not s.startswith(SELECTIONS_WRAPPER) or not s.endswith(")"):
        raise ValueError(f"selections: not a {SELECTIONS_WRAPPER!r}{{...}}) string")
    value = parse_literal(s[len(SELECTIONS_WRAPPER) : -1], "selections")
    try:
        return _selections(value)
    except ValueError as e:
        raise ValueError(f"selections: {e}") from None


def serialise_selections_like_hf(selections: Mapping[str, Sequence[float]]) -> str:
    """The hub's `selections` string for `selections` (Python float reprs, key order kept)."""
    body = ", ".join(f"{country!r}: {[float(p) for p in probs]!r}" for country, probs in selections.items())
    return f"{SELECTIONS_WRAPPER}{{{body}}})"


def study_parser_selections(text: str) -> dict[str, list[float]]:
    """Replay of the study's string-split `selections` parser, bug included (for `--study-parser` only).

    For every country but the last key, the last probability loses its final character ("0.03" -> "0.0")
    because the split on "]," already ate its closing bracket. 29 == len("defaultdict(<class 'list'>, {").
    Not a validating parser: it never evaluates anything, but it trusts the format like the original did.
    """
    c = text.split(":")
    sel: list[str] = []
    for s in c:
        sel.extend([x.strip() for x in s.split("],")])
    sel[0] = sel[0][29:]
    sel[-1] = sel[-1][:-2]
    out: dict[str, list[float]] = {}
    for i in range(0, len(sel), 2):
        country = sel[i][1:-1]
        probs = [p.strip() for p in sel[i + 1].split(",")]
        probs[0] = probs[0][1:]
        probs[-1] = probs[-1][:-1]
        out[country] = [float(p) for p in probs]
    return out


# ---------------------------------------------------------------- file readers
def _jsonl(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(`path:line`, row) for each line; every line must be a JSON object."""
    return jsonl_objects(path)


def _field(row: Mapping[str, Any], name: str, kind: type, where: str) -> Any:
    if name not in row:
        raise DataError(f"{where}: missing field '{name}'")
    value = row[name]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise DataError(f"{where}: field '{name}' should be {kind.__name__}, got {type(value).__name__}")
    return value


def _question(index: int, question: str, options: tuple[str, ...], selections: dict[str, tuple[float, ...]],
              source: str, where: str) -> OpinionQuestion:
    for country, probs in selections.items():
        if len(probs) != len(options):
            raise DataError(f"{where}: '{country}' has {len(probs)} values for {len(options)} options")
    return OpinionQuestion(index, question, options, selections, source)


def _parsed(fn: Any, value: Any, field: str, where: str) -> Any:
    try:
        return fn(value)
    except ValueError as e:
        raise DataError(f"{where}: field '{field}': {e}") from None


def read_best_estimate(path: Path) -> OpinionDataset:
    """The HF-shaped best-estimate JSONL (README 3e); question index = 0-based line number."""
    questions = []
    for where, row in _jsonl(path):
        options = _parsed(_options, _field(row, "options", list, where), "options", where)
        selections = _parsed(_selections, _field(row, "selections", dict, where), "selections", where)
        questions.append(_question(len(questions), _field(row, "question", str, where), options, selections,
                                   _field(row, "source", str, where), where))
    return OpinionDataset(tuple(questions), "best_estimate", str(path), BEST_ESTIMATE_NOTE)


def read_thirdparty_subset(questions_path: Path, thirdparty_path: Path) -> OpinionDataset:
    """Exact original values only: third-party lines checked 'consistent' or 'paper_score_nan' (README 3b).

    Questions and options come from the questions file; questions with no kept line are dropped (indexes
    stay the HF row numbers, so they are not contiguous). Keys follow the questions file's country order.
    """
    base: dict[int, tuple[str, tuple[str, ...], str, list[str]]] = {}
    for lineno, (where, row) in enumerate(_jsonl(questions_path)):
        index = _field(row, "question_index", int, where)
        if index != lineno:
            raise DataError(f"{where}: question_index {index}, expected {lineno} (HF row order)")
        options = _parsed(_options, _field(row, "options", list, where), "options", where)
        base[index] = (_field(row, "question", str, where), options, _field(row, "source_inferred", str, where),
                       _field(row, "countries", list, where))
    picked: dict[int, dict[str, tuple[float, ...]]] = {}
    for where, row in _jsonl(thirdparty_path):
        if _field(row, "check_vs_paper_scores", str, where) not in THIRDPARTY_KEPT:
            continue
        index = _field(row, "question_index", int, where)
        country = _field(row, "country", str, where)
        if index not in base:
            raise DataError(f"{where}: question_index {index} is not in {questions_path}")
        probs = _parsed(_probs, _field(row, "distribution", list, where), "distribution", where)
        if country in picked.setdefault(index, {}):
            raise DataError(f"{where}: second line for question {index}, '{country}'")
        picked[index][country] = probs
    questions = []
    for index in sorted(picked):
        question, options, source, order = base[index]
        rank = {c: i for i, c in enumerate(order)}
        sel = dict(sorted(picked[index].items(), key=lambda kv: rank.get(kv[0], len(rank))))
        questions.append(_question(index, question, options, sel, source, f"{thirdparty_path} (question {index})"))
    pairs = sum(len(q.selections) for q in questions)
    note = (f"exact original values for a subset only: {pairs} (question, country) pairs over {len(questions)} "
            f"of {len(base)} questions (third-party lines checked {' or '.join(THIRDPARTY_KEPT)}); questions "
            "without such lines are dropped; see data/README.md 3b")
    return OpinionDataset(tuple(questions), "thirdparty_subset", str(thirdparty_path), note)


def read_hf_csv(path: Path) -> OpinionDataset:
    """The hub's `data/global_opinions.csv` (question, selections, options, source), parsed without eval."""
    questions: list[OpinionQuestion] = []
    for where, row in read_rows(path, CSV_COLUMNS):
        options = _parsed(parse_options_string, row["options"], "options", where)
        selections = _parsed(parse_selections_string, row["selections"], "selections", where)
        questions.append(_question(len(questions), row["question"], options, selections, row["source"], where))
    note = f"hub-format CSV read from {path}; values as in that file"
    return OpinionDataset(tuple(questions), "csv", str(path), note)


def load_from_hub(revision: str = HF_REVISION) -> OpinionDataset:
    """Download the original CSV from the Hugging Face hub (pinned revision) and parse it."""
    hint = f"pass --data-dir with a folder holding {SUBDIR}/ (see data/README.md 3)"
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise DataError(f"could not download {HF_REPO}: huggingface_hub is not installed; {hint}") from None
    try:
        local = hf_hub_download(repo_id=HF_REPO, repo_type="dataset", filename=HF_FILE, revision=revision)
    except Exception as e:  # noqa: BLE001 (network, offline mode, auth, unknown revision: same advice)
        reason = (str(e).strip().splitlines() or [""])[0][:160]
        raise DataError(f"could not download {HF_REPO}/{HF_FILE}@{revision[:12]} (offline?): "
                        f"{type(e).__name__}: {reason}; {hint}") from None
    dataset = read_hf_csv(Path(local))
    note = f"original file {HF_REPO}/{HF_FILE} at revision {revision}"
    return dataclasses.replace(dataset, origin="hub", note=note)


def load_global_opinions(data_dir: Path | None) -> OpinionDataset:
    """Best-estimate file, else the exact third-party subset, else (no data folder at all) the hub."""
    if data_dir is None:
        return load_from_hub()
    folder = Path(data_dir) / SUBDIR
    if (folder / BEST_ESTIMATE_FILE).is_file():
        return read_best_estimate(folder / BEST_ESTIMATE_FILE)
    if (folder / THIRDPARTY_FILE).is_file() and (folder / QUESTIONS_FILE).is_file():
        return read_thirdparty_subset(folder / QUESTIONS_FILE, folder / THIRDPARTY_FILE)
    raise DataError(f"GlobalOpinionsQA not found: looked for {SUBDIR}/{BEST_ESTIMATE_FILE} and "
                    f"{SUBDIR}/{THIRDPARTY_FILE} under {describe_search(data_dir)}; "
                    "pass --data-dir or go online for the hub copy")
