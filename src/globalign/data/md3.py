"""MD3 word-game items (PROTOCOL.md, Axis 1), from two sources.

- `raw`: built from the MD3 release's TSV files (`md3/raw/{prompts,speakers,transcripts}_<dialect>.tsv`)
  by the rules below, with an optional overrides file (skip list, alternative spellings).
- `study`: the study's exact 894 items (`md3/paper_processed/md3_wordgame_eval_items.csv`).

Rules for `raw` (docs/md3.md says why each exists and how the result differs from the study's set):
1. Prompts with game_type == "word" and prompt_status == "win".
2. Transcript rows of the clip, in file order: exact duplicate rows dropped; rows with an empty
   speaker or text dropped; a row dropped when it repeats verbatim the last line kept for the same
   speaker. Each kept row is the line `<speaker_id>: <text>` (both stripped).
3. The transcript is cut just before the first line that contains the secret word (case-insensitive
   substring of the whole line, speaker label included); a round where it never appears is dropped.
4. Distractors: the prompt's 5 Taboo words.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from globalign.data.locate import describe_search
from globalign.data.tables import parse_string_list, parse_yaml, read_rows, read_text
from globalign.errors import DataError

DIALECTS = ("en_in", "en_ng", "en_us")
RAW_SUBDIR = Path("md3") / "raw"
STUDY_ITEMS = Path("md3") / "paper_processed" / "md3_wordgame_eval_items.csv"
PROMPT_COLUMNS = ("clip_identifier", "game_type", "correct_word/image", "distractors", "prompt_status")
TRANSCRIPT_COLUMNS = ("clip_identifier", "TranscriptId", "transcript", "speaker_id")
STUDY_COLUMNS = ("item_index", "dialect", "transcript", "correct_answer", "distractors")


@dataclass(frozen=True)
class WordGameItem:
    """One round of the Taboo game: the describer's and guesser's lines up to the secret word."""

    item_id: str
    dialect: str
    transcript: str
    secret_word: str
    distractors: tuple[str, ...]


@dataclass(frozen=True)
class Overrides:
    """Hand-made corrections in the spirit of the study's: clips to skip, and for a clip either the
    spelling to look for when cutting (the transcriber wrote "Rihana" for "Rihanna") or None, meaning
    keep the whole transcript uncut."""

    skip: frozenset[str] = frozenset()
    spelling: Mapping[str, str | None] = field(default_factory=dict)
    path: str = ""


@dataclass(frozen=True)
class Md3Items:
    items: tuple[WordGameItem, ...]
    source: str  # "raw" or "study"
    path: str
    # dialect -> reason -> rounds dropped (raw source only)
    dropped: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    overrides: str = ""

    def counts(self) -> dict[str, int]:
        counts = Counter(item.dialect for item in self.items)
        return {d: counts.get(d, 0) for d in DIALECTS}


# ------------------------------------------------------------------------------------ overrides
def load_overrides(path: Path) -> Overrides:
    """An overrides file (YAML or JSON): `skip: [clip ids]` and `spelling: {clip id: word or null}`."""
    text = read_text(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        raw = parse_yaml(text, path)
    else:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict) or set(raw) - {"skip", "spelling"}:
        raise DataError(f"{path}: expected a mapping with the keys 'skip' and/or 'spelling'")
    skip = raw.get("skip") or []
    spelling = raw.get("spelling") or {}
    if not isinstance(skip, list) or not all(isinstance(s, str) for s in skip):
        raise DataError(f"{path}: 'skip' must be a list of clip identifiers")
    if not isinstance(spelling, dict) or not all(
        isinstance(k, str) and (v is None or (isinstance(v, str) and v.strip())) for k, v in spelling.items()
    ):
        raise DataError(f"{path}: 'spelling' must map clip identifiers to a non-empty word or null")
    return Overrides(frozenset(skip), dict(spelling), str(path))


# ------------------------------------------------------------------------------------ raw source
def clean_transcript_lines(rows: list[dict[str, str]]) -> list[str]:
    """One clip's transcript rows (file order) -> its lines `<speaker>: <text>` (rules 2)."""
    seen_rows: set[tuple[str, ...]] = set()
    last_by_speaker: dict[str, str] = {}
    lines = []
    for row in rows:
        identity = tuple(row.values())
        if identity in seen_rows:
            continue
        seen_rows.add(identity)
        speaker, text = row["speaker_id"], row["transcript"]
        if not speaker.strip() or not text.strip():
            continue
        if last_by_speaker.get(speaker) == text:
            continue
        last_by_speaker[speaker] = text
        lines.append(f"{speaker.strip()}: {text.strip()}")
    return lines


def cut_before_word(lines: list[str], word: str | None) -> str | None:
    """The transcript up to (not including) the first line containing `word`, case-insensitively;
    None when no line contains it. `word=None` keeps every line."""
    if word is None:
        return "\n".join(lines).strip()
    needle = word.strip().lower()
    for index, line in enumerate(lines):
        if needle in line.lower():
            return "\n".join(lines[:index]).strip()
    return None


def _dialect_files(raw_dir: Path, dialect: str) -> tuple[Path, Path]:
    prompts, transcripts = raw_dir / f"prompts_{dialect}.tsv", raw_dir / f"transcripts_{dialect}.tsv"
    for path in (prompts, transcripts):
        if not path.is_file():
            raise DataError(f"MD3: {path} not found (expected the MD3 release's TSV files in {raw_dir})")
    return prompts, transcripts


def build_raw_items(raw_dir: Path, overrides: Overrides | None = None) -> Md3Items:
    """Word-game items built from the MD3 TSV files by rules 1-4 (module docstring)."""
    overrides = overrides or Overrides()
    items: list[WordGameItem] = []
    dropped: dict[str, dict[str, int]] = {}
    known_clips: set[str] = set()
    for dialect in DIALECTS:
        prompts_path, transcripts_path = _dialect_files(raw_dir, dialect)
        by_clip: dict[str, list[dict[str, str]]] = {}
        for _, row in read_rows(transcripts_path, TRANSCRIPT_COLUMNS, delimiter="\t", strict=False):
            by_clip.setdefault(row["clip_identifier"], []).append(row)
        reasons: Counter[str] = Counter()
        for where, row in read_rows(prompts_path, PROMPT_COLUMNS, delimiter="\t", strict=False):
            if row["game_type"] != "word" or row["prompt_status"] != "win":
                continue
            clip = row["clip_identifier"]
            known_clips.add(clip)
            if clip in overrides.skip:
                reasons["skip list"] += 1
                continue
            word = row["correct_word/image"].strip()
            try:
                distractors = parse_string_list(row["distractors"], "distractors")
            except ValueError as e:
                raise DataError(f"{where}: {e}") from None
            lines = clean_transcript_lines(by_clip.get(clip, []))
            if not lines:
                reasons["no transcript"] += 1
                continue
            search = overrides.spelling.get(clip, word)  # None: keep the whole transcript
            transcript = cut_before_word(lines, search)
            if transcript is None:
                reasons["secret word never said"] += 1
                continue
            items.append(WordGameItem(clip, dialect, transcript, word, distractors))
        dropped[dialect] = dict(reasons)
    unknown = sorted((set(overrides.skip) | set(overrides.spelling)) - known_clips)
    if unknown:
        raise DataError(
            f"{overrides.path}: {len(unknown)} clip id(s) are not word-game wins in {raw_dir}, e.g. '{unknown[0]}'"
        )
    if not items:
        raise DataError(f"MD3: no word-game items could be built from {raw_dir}")
    return Md3Items(tuple(items), "raw", str(raw_dir), dropped, overrides.path)


# ------------------------------------------------------------------------------------ study source
def item_fields(where: str, dialect: str, distractors: str) -> tuple[str, tuple[str, ...]]:
    """A row's dialect (checked) and distractors (parsed, never evaluated); DataError naming the row."""
    if dialect not in DIALECTS:
        raise DataError(f"{where}: unknown dialect '{dialect}' (expected {', '.join(DIALECTS)})")
    try:
        return dialect, parse_string_list(distractors, "distractors")
    except ValueError as e:
        raise DataError(f"{where}: {e}") from None


def read_study_items(path: Path) -> Md3Items:
    """The study's exact items (the CSV columns item_index, dialect, transcript, correct_answer, distractors)."""
    items = []
    for where, row in read_rows(path, STUDY_COLUMNS):
        dialect, distractors = item_fields(where, row["dialect"], row["distractors"])
        if not row["correct_answer"].strip():
            raise DataError(f"{where}: empty correct_answer")
        items.append(WordGameItem(row["item_index"], dialect, row["transcript"], row["correct_answer"], distractors))
    if not items:
        raise DataError(f"{path}: no items")
    if len({i.item_id for i in items}) != len(items):
        raise DataError(f"{path}: item_index values are not unique")
    return Md3Items(tuple(items), "study", str(path))


# ------------------------------------------------------------------------------------ entry point
ITEM_SOURCES = ("study", "raw")


def load_md3_items(data_dir: Path | None, source: str = "study", overrides_path: Path | None = None) -> Md3Items:
    """Items from `data_dir` (MD3 is not on the Hugging Face hub: it needs local files)."""
    if source not in ITEM_SOURCES:
        raise DataError(f"MD3 item source must be one of {', '.join(ITEM_SOURCES)}, got '{source}'")
    if overrides_path is not None and source != "raw":
        raise DataError("MD3 overrides apply to items built from the raw files: use the raw item source "
                        "(items: raw in a config, --source raw for `globalign items`)")
    if data_dir is None:
        raise DataError(f"MD3 data not found (looked in {describe_search(data_dir)}); MD3 has no hub copy, "
                        "give --data-dir with md3/raw and md3/paper_processed")
    if source == "study":
        path = data_dir / STUDY_ITEMS
        if not path.is_file():
            raise DataError(f"MD3 study items: {path} not found")
        return read_study_items(path)
    raw_dir = data_dir / RAW_SUBDIR
    if not raw_dir.is_dir():
        raise DataError(f"MD3 raw files: {raw_dir} not found")
    overrides = load_overrides(overrides_path) if overrides_path is not None else None
    return build_raw_items(raw_dir, overrides)
