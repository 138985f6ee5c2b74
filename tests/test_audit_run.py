"""`globalign audit-data` end to end on the labelled corpus built from ../shared/data: the tables
against independent counts, local pool = one process = Ray, resume after a kill, errors."""

from __future__ import annotations

import csv
import gzip
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from globalign.audit.analyse import ShardJob, audit_shard
from globalign.audit.counts import MAX_METADATA_VALUES, OTHER, AuditCounts
from globalign.audit.labelled_corpus import labelled_texts, write_chat_jsonl, write_preference_jsonl
from globalign.audit.langid import UNKNOWN, identify
from globalign.audit.run import AuditOptions, audit
from globalign.audit.sources import plan_shards
from globalign.audit.tables import language_rows, non_english_share
from globalign.cli import main

TABLES = ("languages.csv", "countries.csv", "countries_by_role.csv", "metadata.csv")


@pytest.fixture(scope="module")
def texts(data_dir):
    return labelled_texts(data_dir, per_language=40, seed=3)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, texts):
    folder = tmp_path_factory.mktemp("corpus")
    write_chat_jsonl(texts, folder / "chat.jsonl")
    write_preference_jsonl(texts, folder / "pref.jsonl")
    return folder


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _audit(source: Path, output: Path, **kwargs) -> None:
    audit(AuditOptions(str(source), output, progress=False, world_map=False, **kwargs))


def test_language_tables_match_an_independent_count(corpus, tmp_path):
    _audit(corpus / "chat.jsonl", tmp_path / "out", rows_per_shard=50, workers=2)
    records = [json.loads(line) for line in (corpus / "chat.jsonl").read_text("utf-8").splitlines()]
    calls = [(m["role"], identify(m["content"])) for r in records for m in r["messages"]]
    expected = Counter(c.agreed for _, c in calls if c.agreed != UNKNOWN)
    rows = _rows(tmp_path / "out" / "languages.csv")
    assert list(rows[0]) == ["language", "role", "count", "share", "rule", "name"]  # the contract's columns first
    agree = {r["language"]: r for r in rows if r["rule"] == "agree" and r["role"] == "all"}
    assert {k: int(v["count"]) for k, v in agree.items()} == dict(expected)
    assert abs(sum(float(v["share"]) for v in agree.values()) - 1) < 1e-9
    for identifier, attribute in (("cld2", "cld2"), ("py3langid", "langid")):
        alone = {r["language"]: int(r["count"]) for r in rows if r["rule"] == identifier and r["role"] == "user"}
        assert alone == dict(Counter(getattr(c, attribute) for role, c in calls if role == "user"))
        dropped = {r["language"]: int(r["count"]) for r in rows if r["rule"] == f"dropped_{identifier}" and r["role"] == "all"}
        lost = Counter(getattr(c, attribute) for _, c in calls if c.agreed == UNKNOWN and getattr(c, attribute) != UNKNOWN)
        assert dropped == dict(lost)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["messages"] == len(calls) and manifest["records"] == len(records)
    assert manifest["non_english_share"]["agree"] == pytest.approx(1 - expected["en"] / sum(expected.values()))
    assert manifest["metadata_fields"] == ["language"]
    assert manifest["files"][0]["record_format"] == "messages"


def test_preference_data_is_counted_by_side(corpus, tmp_path):
    _audit(corpus / "pref.jsonl", tmp_path / "out", rows_per_shard=40)
    rows = _rows(tmp_path / "out" / "languages.csv")
    totals = Counter()
    for r in rows:
        if r["rule"] == "cld2":
            totals[r["role"]] += int(r["count"])
    n = sum(1 for _ in (corpus / "pref.jsonl").open())
    # each record: one prompt turn, one chosen and one rejected response
    assert totals["prompt"] == totals["chosen"] == totals["rejected"] == n
    assert totals["all"] == 3 * n and totals["assistant"] == 2 * n and totals["user"] == n
    by_role = _rows(tmp_path / "out" / "countries_by_role.csv")
    assert {r["role"] for r in by_role} >= {"all", "prompt"}


@pytest.mark.slow  # starts a local Ray instance (~1-3 min on 2 cores)
def test_local_pool_one_process_and_ray_write_the_same_tables(corpus, tmp_path):
    pytest.importorskip("ray")
    _audit(corpus, tmp_path / "one", rows_per_shard=30, workers=1)
    _audit(corpus, tmp_path / "pool", rows_per_shard=30, workers=2)
    _audit(corpus, tmp_path / "ray", rows_per_shard=30, workers=2, engine="ray")
    for name in TABLES:
        one = (tmp_path / "one" / name).read_bytes()
        assert one == (tmp_path / "pool" / name).read_bytes(), name
        assert one == (tmp_path / "ray" / name).read_bytes(), name
    manifest = json.loads((tmp_path / "ray" / "manifest.json").read_text())
    assert manifest["engine"] == "ray" and manifest["shards"]["total"] > 4


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])  # split by offsets / one file cut into chunks
def test_a_killed_audit_resumes_where_it_stopped(corpus, tmp_path, suffix):
    source = tmp_path / f"big{suffix}"
    lines = (corpus / "chat.jsonl").read_text("utf-8").splitlines()
    text = ("\n".join(lines * 6) + "\n").encode()
    source.write_bytes(gzip.compress(text) if suffix.endswith(".gz") else text)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "globalign.cli", "audit-data", str(source), "--output", str(out),
               "--rows-per-shard", "20", "--workers", "1", "--no-map", "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    done = tmp_path / ".out.audit-progress" / "done.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not done.exists() or len(done.read_text().splitlines()) < 3):
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    saved = sum(1 for line in done.read_text().splitlines() if _is_json(line))  # a torn last line is not saved
    total = -(-len(lines) * 6 // 20)  # units of 20 records either way
    assert 3 <= saved < total and not out.exists()
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert f"resumed: {saved} shard(s)" in result.stdout
    _audit(source, tmp_path / "fresh", rows_per_shard=20, workers=1)
    for name in TABLES:
        assert (out / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes(), name
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["shards"]["resumed"] >= saved and manifest["records"] == len(lines) * 6
    assert not (tmp_path / ".out.audit-progress").exists()  # removed once the folder is written


def test_progress_of_other_files_is_not_reused(corpus, tmp_path):
    source = tmp_path / "data.jsonl"
    source.write_text((corpus / "chat.jsonl").read_text("utf-8"), "utf-8")
    progress = tmp_path / ".out.audit-progress"
    progress.mkdir()
    (progress / "plan.json").write_text(json.dumps({"fingerprint": "something else"}))
    (progress / "done.jsonl").write_text(json.dumps({"key": "x", "counts": AuditCounts().to_json()}) + "\n")
    _audit(source, tmp_path / "out", rows_per_shard=1000)
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["shards"]["resumed"] == 0


def test_counts_merge_in_any_order_and_cap_metadata_values():
    a, b = AuditCounts(), AuditCounts()
    for i in range(MAX_METADATA_VALUES + 5):
        a.add_metadata("source", f"s{i}")
    b.add_metadata("source", "s1", 3)
    ab, ba = AuditCounts(), AuditCounts()
    ab.add(a)
    ab.add(b)
    ba.add(b)
    ba.add(a)
    assert ab.metadata[("source", OTHER)] == 5 and ab.metadata[("source", "s1")] == 4
    assert ab.to_json() == ba.to_json() == AuditCounts.from_json(json.loads(ab.dumps())).to_json()


def test_rows_of_an_empty_tally_and_non_english_share():
    assert language_rows(AuditCounts()) == [] and non_english_share(AuditCounts()) is None


def test_audit_shard_reports_the_row_of_a_bad_record(tmp_path):
    source = tmp_path / "x.jsonl"
    source.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n{"messages": "oops"}\n', "utf-8")
    shard = plan_shards([source])[0]
    with pytest.raises(Exception, match=r"x.jsonl: line 2"):
        audit_shard(ShardJob(shard, "messages"))


@pytest.mark.parametrize(("content", "message"), [
    ('{"text": "no known fields"}\n', "unknown record format"),
    ('{"messages": [{"role": "user", "content": "hi"}]}\n{"messages": [\n', "line 2: malformed JSON"),
    (b'{"messages": [{"role": "user", "content": "caf\xe9"}]}\n', "not UTF-8"),
    ("", "no records"),
])
def test_bad_input_is_a_one_line_error_and_writes_nothing(tmp_path, capsys, content, message):
    source = tmp_path / "bad.jsonl"
    source.write_bytes(content if isinstance(content, bytes) else content.encode())
    code = main(["audit-data", str(source), "--output", str(tmp_path / "out"), "--quiet", "--no-map"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_cli_errors_for_flags_and_a_foreign_output(corpus, tmp_path, capsys):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert main(["audit-data", str(corpus / "chat.jsonl"), "--output", str(foreign), "--quiet"]) == 2
    assert "is not a globalign audit folder" in capsys.readouterr().err
    assert main(["audit-data", str(corpus), "--output", str(tmp_path / "o"), "--workers", "0"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err
    assert main(["audit-data", str(corpus), "--output", str(tmp_path / "o"), "--fields", "promt=x"]) == 2
    assert "prompt" in capsys.readouterr().err
    assert main(["audit-data", str(tmp_path / "missing"), "--output", str(tmp_path / "o")]) == 2
    assert "missing" in capsys.readouterr().err


def test_cli_prints_the_summary_and_draws_the_map(corpus, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["audit-data", str(corpus / "chat.jsonl"), "--output", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "under the study's agreement rule" in printed and "countries mentioned" in printed
    manifest = json.loads((out / "manifest.json").read_text())
    assert (out / "countries_map.png").stat().st_size > 10_000 and manifest["map"]["unmatched"] == []
    assert (out / "countries_map.svg").read_text().startswith("<svg")
    countries = _rows(out / "countries.csv")
    assert list(countries[0])[:3] == ["country", "count", "share"]
    assert abs(sum(float(r["share"]) for r in countries) - 1) < 1e-9


def test_an_audit_folder_inside_the_source_is_not_read_again(corpus, tmp_path):
    source = tmp_path / "data"
    source.mkdir()
    (source / "chat.jsonl").write_text((corpus / "chat.jsonl").read_text("utf-8"), "utf-8")
    _audit(source, source / "audit", rows_per_shard=1000)
    first = (source / "audit" / "languages.csv").read_bytes()
    _audit(source, source / "audit", rows_per_shard=1000)  # would fail on countries.csv if it were read
    assert (source / "audit" / "languages.csv").read_bytes() == first


@pytest.mark.parametrize("kind", ["csv", "jsonl.gz", "json"])
def test_files_read_in_one_piece_are_shared_by_the_workers_in_chunks(corpus, tmp_path, kind):
    records = [json.loads(line) for line in (corpus / "chat.jsonl").read_text("utf-8").splitlines()]
    source = tmp_path / f"data.{kind}"
    if kind == "csv":
        with source.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["prompt", "response"])
            writer.writerows([r["messages"][0]["content"], r["messages"][1]["content"]] for r in records)
    elif kind == "json":
        source.write_text(json.dumps(records, ensure_ascii=False), "utf-8")
    else:
        source.write_bytes(gzip.compress((corpus / "chat.jsonl").read_bytes()))
    assert plan_shards([source])[0].stop == -1  # one whole-file shard
    _audit(corpus / "chat.jsonl", tmp_path / "reference", rows_per_shard=1000, workers=1)
    _audit(source, tmp_path / "out", rows_per_shard=25, workers=2)
    assert (tmp_path / "out" / "countries.csv").read_bytes() == (tmp_path / "reference" / "countries.csv").read_bytes()
    ours = [r for r in _rows(tmp_path / "out" / "languages.csv") if r["role"] in ("all", "user", "assistant")]
    reference = [r for r in _rows(tmp_path / "reference" / "languages.csv") if r["role"] in ("all", "user", "assistant")]
    assert ours == reference
