"""Text from data files reaching a terminal or a spreadsheet (names in prediction files, audited data).

The class: every control character is shown as an escape, never sent to the terminal; every CSV text
cell a spreadsheet would run is written with a leading apostrophe, in every CSV globalign writes, and
reading it back gives the original value.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from globalign.cli import main
from globalign.text_safety import FORMULA_STARTS, from_spreadsheet_safe, one_line, printable, spreadsheet_safe

CONTROLS = ["\x1b[31mred\x1b[0m", "bell\x07", "back\x08space", "nul\x00", "del\x7f", "c1\x9b31m", "bidi\u202eevil",
            "isolate\u2066x\u2069", "cr\rover", "vt\x0b", "ff\x0c"]


@pytest.mark.parametrize("text", CONTROLS)
def test_printable_shows_every_control_character_as_an_escape(text):
    shown = one_line(text)
    assert all(ch.isprintable() for ch in shown), repr(shown)
    assert "\\x" in shown or "\\u" in shown


def test_printable_keeps_newlines_tabs_and_every_script():
    text = "Côte d'Ivoire\tরাজ্য\n日本 — Россия, العربية"
    assert printable(text) == text
    assert one_line(text) == text.replace("\n", "\\n")


FORMULAS = ["=1+1", "+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "=HYPERLINK(\"http://x\",\"y\")", "'quoted"]
PLAIN = ["France", "en_us", "similarity", "", "1.5", "a=b", "São Tomé"]


@pytest.mark.parametrize("text", FORMULAS + PLAIN)
def test_spreadsheet_safe_round_trips(text):
    written = spreadsheet_safe(text)
    assert from_spreadsheet_safe(written) == text
    assert not written.startswith(FORMULA_STARTS)
    if text in PLAIN:
        assert written == text  # ordinary values are written as they are


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _formulas(cells: list[str]) -> list[str]:
    """Text cells a spreadsheet would run (numbers such as -0.25 are numbers, not formulas)."""
    return [c for c in cells if c.startswith(FORMULA_STARTS) and not _is_number(c)]


def _cells(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [cell for row in csv.reader(handle) for cell in row]


def test_rescore_escapes_names_from_a_prediction_file_in_csv_and_terminal(tmp_path, data_dir, capsys, monkeypatch):
    monkeypatch.setenv("GLOBALIGN_CACHE_DIR", str(tmp_path / "cache"))
    source = (data_dir / "reward_probe" / "reference_where_from_starling-rm-7b-alpha.csv").read_text("utf-8")
    folder = tmp_path / "predictions"
    folder.mkdir()
    names = {"a.csv": "=HYPERLINK(\"http://evil\",\"click\")", "b.csv": "\x1b[2J\x1b[31mevil-model"}
    for file, name in names.items():
        lines = source.splitlines()
        header = lines[0].split(",")
        column = header.index("reward_model") if "reward_model" in header else None
        rows = [line.split(",") for line in lines[1:]]
        if column is None:
            header.append("reward_model")
            rows = [[*r, ""] for r in rows]
            column = len(header) - 1
        for r in rows:
            r[column] = '"' + name.replace('"', '""') + '"'
        (folder / file).write_text("\n".join([",".join(header), *(",".join(r) for r in rows)]) + "\n", "utf-8")
    code = main(["rescore", "--task", "where_from", "--predictions", str(folder), "--n-boot", "50",
                 "--data-dir", str(data_dir), "--output", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "\x1b" not in captured.out + captured.err
    cells = [c for table in ("metrics.csv", "comparisons.csv") for c in _cells(tmp_path / "out" / table)]
    assert _formulas(cells) == []
    assert {from_spreadsheet_safe(c) for c in cells} >= set(names.values())
    samples = [json.loads(line) for line in (tmp_path / "out" / "samples.jsonl").read_text("utf-8").splitlines()]
    assert {s["model"] for s in samples} == set(names.values())  # JSON keeps the exact value


def test_audit_tables_escape_metadata_values(tmp_path, capsys):
    corpus = tmp_path / "c.jsonl"
    rows = [{"messages": [{"role": "user", "content": "Hello there, how are you today?"}],
             "source": value} for value in ("=cmd|' /C calc'!A0", "@SUM(1)", "-1+2", "\x1b[31mred", "plain")]
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    code = main(["audit-data", str(corpus), "--output", str(tmp_path / "audit"), "--no-map", "--quiet",
                 "--workers", "1"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "\x1b" not in captured.out
    for table in ("languages.csv", "countries.csv", "countries_by_role.csv", "metadata.csv"):
        cells = _cells(tmp_path / "audit" / table)
        assert _formulas(cells) == [], table
    values = {from_spreadsheet_safe(c) for c in _cells(tmp_path / "audit" / "metadata.csv")}
    assert {"=cmd|' /C calc'!A0", "@SUM(1)", "-1+2", "plain"} <= values


def test_an_error_quoting_a_data_file_stays_one_line(tmp_path, capsys):
    bad = tmp_path / "bad\x1b[31m\nname.jsonl"
    bad.write_text("{not json\n", "utf-8")
    code = main(["audit-data", str(bad), "--output", str(tmp_path / "audit"), "--quiet", "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "\x1b" not in err
