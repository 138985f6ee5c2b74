"""Memory of `audit-data` on huge records (issue 11): each message is read up to MAX_MESSAGE_CHARS
characters, a long JSON line is streamed with its long strings cut, and both give the records the
plain reader gives; a subprocess auditing a 50 MB line stays far below the old 0.9-1.35 GB peak."""

from __future__ import annotations

import gzip
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from globalign.audit import bounded_json, formats
from globalign.audit.formats import to_record
from globalign.audit.records import MAX_MESSAGE_CHARS, Shard
from globalign.audit.sources import read_shard

SRC = str(Path(__file__).resolve().parents[1] / "src")
PEAK_RSS_LIMIT_MB = 450  # measured ~237 MB after the fix, ~900 MB before (docs/audit.md)
LINE_BYTES = 50_000_000

PIECES = ["plain words ", "Kenya ", "quote \" and backslash \\ ", "tab\tnew\nline ", "é", "Привет ", "日本 ",
          "😀", "\u2028", "\x01"]


def random_text(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(PIECES) for _ in range(n))


def _records(path: Path) -> list:
    shard = Shard(str(path), "jsonl", 0, -1)
    return [to_record(row, where, "messages") for where, row in read_shard(shard)]


@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_a_long_line_streamed_with_strings_cut_gives_the_records_of_the_plain_reader(tmp_path, monkeypatch,
                                                                                       ensure_ascii):
    """Small limits so that many lines are long, many strings cut, at every chunk boundary."""
    rng = random.Random(7)
    lines = []
    for i in range(60):
        turns = [{"role": rng.choice(["user", "assistant"]), "content": random_text(rng, rng.randint(0, 120))}
                 for _ in range(rng.randint(1, 6))]
        lines.append(json.dumps({"messages": turns, "source": random_text(rng, 5), "n": i}, ensure_ascii=ensure_ascii))
    path = tmp_path / "long.jsonl"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    monkeypatch.setattr(formats, "MAX_MESSAGE_CHARS", 40)
    monkeypatch.setattr(bounded_json, "MAX_MESSAGE_CHARS", 40)
    plain = _records(path)  # every line under LONG_LINE_BYTES
    truncated = sum(m.truncated for r in plain for m in r.messages)
    assert truncated > 20 and all(len(m.text) <= 40 for r in plain for m in r.messages)
    for long_line, chunk in [(64, 1), (64, 7), (200, 13), (1, 5)]:
        monkeypatch.setattr(bounded_json, "LONG_LINE_BYTES", long_line)
        monkeypatch.setattr(bounded_json, "_READ_BYTES", chunk)
        assert _records(path) == plain, (long_line, chunk)


def test_a_long_line_holds_the_kept_bytes_not_the_line(tmp_path):
    text = "x" * (3 * bounded_json.LONG_LINE_BYTES)
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": text}]}) + "\n" + json.dumps({"messages": []}) + "\n")
    with path.open("rb") as f:
        line = bounded_json.read_line(f)
        assert len(line) < bounded_json._keep_bytes() + 100 and f.read() == b'{"messages": []}\n'
    record = _records(path)[0]
    assert record.messages[0].truncated and record.messages[0].text == "x" * MAX_MESSAGE_CHARS


def _peak_rss_mb(tmp_path: Path, source: Path) -> tuple[float, dict]:
    """Peak RSS of the largest process of a CLI audit (main or worker), measured by a parent process."""
    script = ("import resource, subprocess, sys; "
              "r = subprocess.run(sys.argv[1:]); "
              "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024); sys.exit(r.returncode)")
    command = [sys.executable, "-c", script, sys.executable, "-m", "globalign.cli", "audit-data", str(source),
               "--output", str(tmp_path / "out"), "--quiet", "--no-map", "--workers", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False,
                            env={**os.environ, "PYTHONPATH": SRC})
    assert result.returncode == 0, result.stderr
    return float(result.stdout.strip().splitlines()[-1]), json.loads((tmp_path / "out" / "manifest.json").read_text())


def _write_big_line(path: Path, text: str) -> None:
    line = json.dumps({"messages": [{"role": "user", "content": "Tell me about Kenya."},
                                    {"role": "assistant", "content": text}]})
    data = (line + "\n" + json.dumps({"messages": [{"role": "user", "content": "And Peru?"}]}) + "\n").encode()
    path.write_bytes(gzip.compress(data, compresslevel=1) if path.name.endswith(".gz") else data)


def test_a_50_mb_message_is_audited_in_bounded_memory(tmp_path):
    path = tmp_path / "big.jsonl"
    words = "the markets of Brazil and the weather in Kenya are discussed here at length "
    _write_big_line(path, (words * (LINE_BYTES // len(words) + 1))[:LINE_BYTES])
    peak, manifest = _peak_rss_mb(tmp_path, path)
    assert peak < PEAK_RSS_LIMIT_MB, peak
    assert manifest["truncated_messages"] == 1 and manifest["limits"]["max_message_chars"] == MAX_MESSAGE_CHARS
    assert manifest["messages"] == 3 and manifest["characters"] == MAX_MESSAGE_CHARS + 20 + 9


@pytest.mark.slow  # ~15 s: 50 MB of escapes, and a gzip file read by the main process
@pytest.mark.parametrize("name", ["escaped.jsonl", "big.jsonl.gz"])
def test_a_50_mb_line_of_escapes_or_gzip_is_audited_in_bounded_memory(tmp_path, name):
    escaped = name.startswith("escaped")  # json.dumps writes Cyrillic as \\uXXXX escapes: 6 bytes a character
    text = "Привет, как дела в Кении? " if escaped else "Kenya and Peru "
    _write_big_line(tmp_path / name, text * (LINE_BYTES // ((6 if escaped else 1) * len(text))))
    peak, manifest = _peak_rss_mb(tmp_path, tmp_path / name)
    assert peak < PEAK_RSS_LIMIT_MB, peak
    assert manifest["truncated_messages"] == 1
