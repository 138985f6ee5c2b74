"""MD3 word-game items: the raw-file rules on the real release and on hand-made rows, the study's items,
the overrides file, and the errors a user can hit."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from globalign.data.md3 import (
    DIALECTS,
    Overrides,
    build_raw_items,
    clean_transcript_lines,
    cut_before_word,
    load_md3_items,
    load_overrides,
)
from globalign.errors import DataError

PROMPT_HEADER = "clip_identifier\tduration\tmatch_id\tround\tprompt_id\tgame_type\tcorrect_word/image\tdistractors\tprompt_status\tprompt_num\n"
TRANSCRIPT_HEADER = "clip_identifier\tTranscriptId\ttranscript\tstart_timestamp_ms\tend_timestamp_ms\tspeaker_id\tmatch_id\tround\n"


# ---------------------------------------------------------------------------------- real files
@pytest.fixture(scope="module")
def raw_items(data_dir):
    return load_md3_items(data_dir, "raw")


@pytest.fixture(scope="module")
def study_items(data_dir):
    return load_md3_items(data_dir, "study")


def test_raw_build_counts_on_the_real_release(raw_items):
    assert raw_items.source == "raw"
    assert raw_items.counts() == {"en_in": 198, "en_ng": 207, "en_us": 358}
    assert raw_items.dropped == {
        "en_in": {"secret word never said": 14, "no transcript": 5},
        "en_ng": {"secret word never said": 50, "no transcript": 23},
        "en_us": {"secret word never said": 56, "no transcript": 18},
    }
    # kept + dropped = every word-game win of the release (217 / 280 / 432)
    totals = {d: raw_items.counts()[d] + sum(raw_items.dropped[d].values()) for d in DIALECTS}
    assert totals == {"en_in": 217, "en_ng": 280, "en_us": 432}
    for item in raw_items.items:
        assert len(item.distractors) == 5
        assert item.secret_word.lower() not in item.transcript.lower()  # cut before the word is said
        assert all(line.split(": ", 1)[0].startswith("Speaker") for line in item.transcript.splitlines())


def test_study_items_counts(study_items):
    assert study_items.source == "study"
    assert study_items.counts() == {"en_in": 216, "en_ng": 251, "en_us": 427}
    assert len(study_items.items) == 894
    assert study_items.items[0].item_id == "0"
    assert study_items.items[0].secret_word == "Electron"
    assert all(len(i.distractors) == 5 for i in study_items.items)


def test_raw_build_reproduces_most_study_items_exactly(raw_items, study_items):
    """docs/md3.md: 654 of the study's 894 items come out byte-identical; the rest differ by the study's
    hand-made overrides and by transcription changes between MD3 versions."""
    key = lambda i: (i.dialect, i.secret_word, i.distractors, i.transcript)
    assert len({key(i) for i in raw_items.items} & {key(i) for i in study_items.items}) == 654


# ---------------------------------------------------------------------------------- the rules
def _row(speaker: str, text: str, tid: str = "t") -> dict[str, str]:
    return {"clip_identifier": "c", "TranscriptId": tid, "transcript": text, "speaker_id": speaker}


def test_cleaning_drops_duplicates_missing_fields_and_same_speaker_repeats():
    rows = [
        _row("Speaker0", "hello", "t1"),
        _row("Speaker0", "hello", "t1"),  # exact duplicate row
        _row("Speaker1", "", "t2"),  # no text
        _row("", "orphan", "t3"),  # no speaker
        _row("Speaker1", "hi", "t4"),
        _row("Speaker0", "hello", "t5"),  # repeats Speaker0's last kept line (not adjacent)
        _row("Speaker1", "hello", "t6"),  # another speaker may say it
        _row("Speaker0", " spaced ", "t7"),
    ]
    assert clean_transcript_lines(rows) == ["Speaker0: hello", "Speaker1: hi", "Speaker1: hello", "Speaker0: spaced"]


def test_cut_before_the_first_line_with_the_word():
    lines = ["Speaker0: it is a particle", "Speaker1: an ELECTRONic thing?", "Speaker0: yes electron"]
    assert cut_before_word(lines, "Electron") == "Speaker0: it is a particle"
    assert cut_before_word(lines, "photon") is None
    assert cut_before_word(lines, None) == "\n".join(lines)
    assert cut_before_word(["Speaker0: Electron"], "electron") == ""


def _write_release(root: Path, prompts: list[str], transcripts: list[str]) -> Path:
    raw = root / "md3" / "raw"
    raw.mkdir(parents=True)
    for dialect in DIALECTS:
        (raw / f"prompts_{dialect}.tsv").write_text(PROMPT_HEADER + "".join(prompts if dialect == "en_us" else []))
        (raw / f"transcripts_{dialect}.tsv").write_text(
            TRANSCRIPT_HEADER + "".join(transcripts if dialect == "en_us" else []))
    return root


def _prompt(clip: str, word: str, status: str = "win", game: str = "word") -> str:
    return f"{clip}\t10\tm\tr00\tp\t{game}\t{word}\t['a', 'b', 'c', 'd', 'e']\t{status}\t0\n"


def _line(clip: str, speaker: str, text: str, n: int) -> str:
    return f"{clip}\tt{n}\t{text}\t0\t1\t{speaker}\tm\tr00\n"


@pytest.fixture
def tiny_release(tmp_path) -> Path:
    prompts = [_prompt("c1", "Rihanna"), _prompt("c2", "Apple"), _prompt("c3", "Pear", status="loss"),
               _prompt("c4", "Dog", game="image"), _prompt("c5", "Moon")]
    transcripts = [
        _line("c1", "Speaker0", "a singer", 1), _line("c1", "Speaker1", "Rihana!", 2),
        _line("c2", "Speaker0", "a fruit", 3), _line("c2", "Speaker1", "apple?", 4),
        _line("c5", "Speaker0", "at night", 5), _line("c5", "Speaker1", "stars", 6),
    ]
    return _write_release(tmp_path, prompts, transcripts)


def test_tiny_release_keeps_word_wins_and_drops_rounds_without_the_word(tiny_release):
    items = build_raw_items(tiny_release / "md3" / "raw")
    assert [(i.item_id, i.transcript) for i in items.items] == [("c2", "Speaker0: a fruit")]
    assert items.dropped["en_us"] == {"secret word never said": 2}
    assert items.counts() == {"en_in": 0, "en_ng": 0, "en_us": 1}


def test_overrides_skip_respell_and_keep_whole(tiny_release, tmp_path):
    path = tmp_path / "overrides.yaml"
    path.write_text("skip: [c2]\nspelling:\n  c1: Rihana\n  c5: null\n")
    overrides = load_overrides(path)
    assert overrides.skip == {"c2"} and overrides.spelling == {"c1": "Rihana", "c5": None}
    items = build_raw_items(tiny_release / "md3" / "raw", overrides)
    assert {i.item_id: i.transcript for i in items.items} == {
        "c1": "Speaker0: a singer",  # cut before the misspelt mention
        "c5": "Speaker0: at night\nSpeaker1: stars",  # null: the whole transcript
    }
    assert items.dropped["en_us"] == {"skip list": 1}
    assert items.overrides == str(path)


def test_overrides_json_is_accepted(tiny_release, tmp_path):
    path = tmp_path / "overrides.json"
    path.write_text('{"spelling": {"c1": "Rihana"}}')
    assert [i.item_id for i in build_raw_items(tiny_release / "md3" / "raw", load_overrides(path)).items] == ["c1", "c2"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("skip: c2\n", "'skip' must be a list"),
        ("spelling: {c1: ''}\n", "'spelling' must map"),
        ("skips: [c2]\n", "expected a mapping"),
        ("skip: [c2\n", "invalid YAML"),
    ],
)
def test_bad_overrides_file_says_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "o.yaml"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        load_overrides(path)


def test_override_for_an_unknown_clip_is_an_error(tiny_release):
    with pytest.raises(DataError, match="not word-game wins.*'nope'"):
        build_raw_items(tiny_release / "md3" / "raw", Overrides(frozenset({"nope"}), {}, "o.yaml"))


# ---------------------------------------------------------------------------------- errors
def test_missing_data_says_where_it_looked():
    with pytest.raises(DataError, match="MD3 data not found"):
        load_md3_items(None)


def test_missing_raw_file_is_named(tiny_release):
    (tiny_release / "md3" / "raw" / "transcripts_en_ng.tsv").unlink()
    with pytest.raises(DataError, match="transcripts_en_ng.tsv not found"):
        load_md3_items(tiny_release, "raw")


def test_wrong_columns_are_named(tiny_release):
    path = tiny_release / "md3" / "raw" / "prompts_en_us.tsv"
    path.write_text(path.read_text().replace("distractors", "forbidden"))
    with pytest.raises(DataError, match="prompts_en_us.tsv: missing column 'distractors'"):
        load_md3_items(tiny_release, "raw")


def test_malformed_distractors_name_the_line(tiny_release):
    path = tiny_release / "md3" / "raw" / "prompts_en_us.tsv"
    path.write_text(path.read_text().replace("['a', 'b', 'c', 'd', 'e']", "__import__('os')", 1))
    with pytest.raises(DataError, match=r"prompts_en_us.tsv: row 1 \(line 2\): distractors"):
        load_md3_items(tiny_release, "raw")


def test_non_utf8_study_file(tmp_path, data_dir):
    target = tmp_path / "md3" / "paper_processed"
    target.mkdir(parents=True)
    shutil.copy(data_dir / "md3" / "paper_processed" / "md3_wordgame_eval_items.csv", target)
    path = target / "md3_wordgame_eval_items.csv"
    path.write_bytes(path.read_bytes()[:200] + b"\xff\xfe" + path.read_bytes()[200:])
    with pytest.raises(DataError, match="not UTF-8"):
        load_md3_items(tmp_path, "study")


def test_study_file_with_unknown_dialect(tmp_path):
    target = tmp_path / "md3" / "paper_processed"
    target.mkdir(parents=True)
    (target / "md3_wordgame_eval_items.csv").write_text(
        "item_index,dialect,transcript,correct_answer,distractors\n0,en_gb,hi,Tea,\"['a']\"\n")
    with pytest.raises(DataError, match=r"row 1 \(line 2\): unknown dialect 'en_gb'"):
        load_md3_items(tmp_path, "study")


def test_overrides_need_the_raw_source(data_dir, tmp_path):
    with pytest.raises(DataError, match="use the raw item source"):
        load_md3_items(data_dir, "study", tmp_path / "o.yaml")


def test_items_command_prints_counts_per_dialect(data_dir, capsys):
    from globalign.cli import main

    assert main(["items", "md3", "--source", "raw", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "md3 items (raw" in out and ": 763" in out
    assert "en_ng: 207  dropped: secret word never said 50, no transcript 23" in out
    assert main(["items", "md3", "--data-dir", str(data_dir)]) == 0
    assert "en_us: 427" in capsys.readouterr().out
