"""Bad inputs and faults against `globalign audit-data` (issue 11): records nested too deep for the
parsers, files that are not regular files (FIFOs, sockets, devices) and never end or never open, and
failures that must not leave globalign's hidden folders behind (while an interruption keeps the
progress so that the rerun resumes)."""

from __future__ import annotations

import csv
import gzip
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from globalign.audit import analyse, run
from globalign.audit.bounded_json import MAX_NESTING
from globalign.audit.finding import find_sources
from globalign.audit.records import Shard
from globalign.audit.run import AuditOptions, audit
from globalign.audit.sources import read_shard
from globalign.cli import main
from globalign.errors import DataError, GlobalignError

SRC = str(Path(__file__).resolve().parents[1] / "src")
CLI_TIMEOUT_S = 120  # a hang fails the test instead of stalling the suite


def chat(text: str) -> dict:
    return {"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": f"Answer: {text}"}]}


def write_jsonl(path: Path, records: list, *, raw_lines: dict[int, str] | None = None) -> Path:
    """Records as JSON lines; `raw_lines` replaces line N (1-based) by the given text."""
    lines = [json.dumps(r) for r in records]
    for n, text in (raw_lines or {}).items():
        lines[n - 1] = text
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def sentences(n: int) -> list[dict]:
    return [chat(f"Sentence number {i} about the weather in Kenya and the markets of Brazil.") for i in range(n)]


def cli(*args: str) -> subprocess.CompletedProcess:
    """The CLI in a subprocess, killed after CLI_TIMEOUT_S (a hang raises TimeoutExpired)."""
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run([sys.executable, "-m", "globalign.cli", "audit-data", *args, "--quiet", "--no-map"],
                          capture_output=True, text=True, timeout=CLI_TIMEOUT_S, env=env, check=False)


def one_line_error(capsys, argv: list[str]) -> str:
    code = main(["audit-data", *argv, "--quiet", "--no-map", "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    return err


def deep_array(depth: int) -> str:
    return "[" * depth + "]" * depth


def deep_object(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


def nested_parts(depth: int) -> object:
    """Content parts nested `depth` lists/objects deep in all: valid, if odd, OpenAI content."""
    value: object = "deep text"
    for _ in range(max(0, depth - 3) // 2):
        value = [{"type": "text", "text": value}]
    return value


# --- nesting: every reader, every walker -----------------------------------------------------------

DEEP = 100_000


@pytest.mark.parametrize(("name", "write", "where"), [
    ("a.jsonl", lambda p: write_jsonl(p, sentences(4), raw_lines={3: '{"messages": ' + deep_array(DEEP) + "}"}),
     "a.jsonl: line 3"),
    ("b.jsonl", lambda p: write_jsonl(p, sentences(4), raw_lines={2: '{"messages": [], "meta": ' + deep_object(DEEP) + "}"}),
     "b.jsonl: line 2"),
    ("c.jsonl", lambda p: write_jsonl(p, sentences(4), raw_lines={4: '{"messages": ' + deep_array(MAX_NESTING + 50) + "}"}),
     "c.jsonl: line 4"),  # parses, but deeper than the walkers and pickling should see
    ("d.jsonl.gz", lambda p: write_jsonl(p, sentences(4), raw_lines={2: '{"messages": ' + deep_array(DEEP) + "}"}),
     "d.jsonl.gz: line 2"),
    ("e.json", lambda p: p.write_text("[" + json.dumps(chat("hi")) + ",\n" + '{"messages": ' + deep_array(DEEP) + "}]"),
     "e.json: line 2"),
    ("f.json", lambda p: p.write_text('{"data": [' + json.dumps(chat("hi")) + ",\n" + '{"messages": '
                                      + deep_object(DEEP) + "}]}"), "f.json: line 2"),
    ("g.json", lambda p: p.write_text('{"messages": ' + deep_array(DEEP) + "}\n"), "g.json: line 1"),  # sniffed as lines
    ("h.jsonl", lambda p: write_jsonl(p, [{"messages": [{"role": "user", "content": nested_parts(MAX_NESTING + 20)}]}]),
     "h.jsonl: line 1"),
])
def test_json_nested_too_deep_is_one_line_naming_file_and_line(tmp_path, capsys, name, write, where):
    write(tmp_path / name)
    err = one_line_error(capsys, [str(tmp_path / name), "--output", str(tmp_path / "out")])
    assert where in err and f"nested more than {MAX_NESTING} levels" in err
    assert not (tmp_path / "out").exists()


def test_json_text_nested_too_deep_in_a_csv_or_parquet_cell_names_the_row(tmp_path, capsys):
    cells = [json.dumps(chat("hi")["messages"]), deep_array(DEEP), "[" + deep_object(DEEP) + "]",
             json.dumps([{"role": "user", "content": nested_parts(MAX_NESTING + 20)}])]
    for i, cell in enumerate(cells[1:], 2):
        with (tmp_path / f"t{i}.csv").open("w", newline="") as f:
            csv.writer(f).writerows([["messages"], [cells[0]], [cell]])
        err = one_line_error(capsys, [str(tmp_path / f"t{i}.csv"), "--output", str(tmp_path / "out")])
        assert f"t{i}.csv: row 2 (line 3)" in err and "nested more than" in err, err
        pq.write_table(pa.table({"messages": [cells[0], cell]}), tmp_path / f"t{i}.parquet")
        err = one_line_error(capsys, [str(tmp_path / f"t{i}.parquet"), "--output", str(tmp_path / "out")])
        assert f"t{i}.parquet: row 2" in err and "nested more than" in err, err


def test_a_parquet_column_nested_too_deep_is_one_line(tmp_path, capsys):
    value: object = "x"
    for _ in range(MAX_NESTING + 5):
        value = [value]
    rows = [chat("hi") | {"extra": None}, chat("hi") | {"extra": value}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "deep.parquet")
    err = one_line_error(capsys, [str(tmp_path / "deep.parquet"), "--output", str(tmp_path / "out")])
    # pyarrow itself refuses schemas nested more than 100 levels; either way one line naming the file
    assert "deep.parquet" in err and "nested" in err


@pytest.mark.parametrize("name", ["n.jsonl", "n.json"])
def test_a_number_python_refuses_to_convert_is_one_line(tmp_path, capsys, name):
    record = '{"messages": [], "n": ' + "7" * 5000 + "}"
    (tmp_path / name).write_text(json.dumps(chat("hi")) + "\n" + record + "\n" if name.endswith("l")
                                 else "[" + json.dumps(chat("hi")) + ",\n" + record + "]")
    err = one_line_error(capsys, [str(tmp_path / name), "--output", str(tmp_path / "out")])
    assert f"{name}: line 2" in err and "malformed JSON" in err


def test_nesting_up_to_the_limit_is_read(tmp_path):
    write_jsonl(tmp_path / "ok.jsonl", [{"messages": [{"role": "user", "content": nested_parts(MAX_NESTING)}]},
                                        {"messages": [], "meta": json.loads(deep_object(MAX_NESTING - 1))}])
    audit(AuditOptions(str(tmp_path / "ok.jsonl"), tmp_path / "out", workers=1, progress=False, world_map=False))
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["messages"] == 1


# --- not regular files: listed as skipped, never opened --------------------------------------------


@pytest.fixture
def odd_folder():
    """A folder (short path: unix socket names are limited to ~100 bytes) holding one data file and a
    FIFO, a socket, links to a device, to nothing, to a folder and to the data file."""
    folder = Path(tempfile.mkdtemp(prefix="ga-"))
    write_jsonl(folder / "data.jsonl", sentences(3))
    os.mkfifo(folder / "pipe.jsonl")
    os.mkfifo(folder / "fifo")  # not a data name: listed all the same
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "sock.jsonl"))
    os.symlink("/dev/null", folder / "null.jsonl")
    os.symlink("/dev/zero", folder / "zero.csv")  # a device that never ends
    os.symlink(folder / "missing.jsonl", folder / "gone.jsonl")
    os.symlink(folder / "data.jsonl", folder / "link.jsonl")  # a link to a regular file is read
    (folder / "sub").mkdir()
    os.symlink(folder / "sub", folder / "loop")
    yield folder
    server.close()
    for entry in folder.iterdir():
        entry.unlink() if not entry.is_dir() or entry.is_symlink() else entry.rmdir()
    folder.rmdir()


def test_a_folder_reads_only_regular_files_and_lists_the_rest_as_skipped(odd_folder, tmp_path):
    result = cli(str(odd_folder), "--output", str(tmp_path / "out"), "--workers", "2")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [Path(f["path"]).name for f in manifest["files"]] == ["data.jsonl", "link.jsonl"]
    assert manifest["records"] == 6
    reasons = {Path(s["path"]).name: s["reason"] for s in manifest["skipped"]}
    assert reasons == {"fifo": "a FIFO (named pipe)", "pipe.jsonl": "a FIFO (named pipe)", "sock.jsonl": "a socket",
                       "null.jsonl": "a symbolic link to a character device",
                       "zero.csv": "a symbolic link to a character device", "gone.jsonl": "a broken symbolic link",
                       "loop": "a symbolic link to a folder (not followed)"}
    assert "skipped 7 entries that are not regular files" in result.stdout and "pipe.jsonl (a FIFO" in result.stdout


def test_a_source_that_is_not_a_regular_file_is_one_line(odd_folder, tmp_path):
    for name, what in [("pipe.jsonl", "a FIFO (named pipe)"), ("sock.jsonl", "a socket"),
                       ("null.jsonl", "a symbolic link to a character device"),
                       ("zero.csv", "a symbolic link to a character device"), ("gone.jsonl", "a broken symbolic link")]:
        result = cli(str(odd_folder / name), "--output", str(tmp_path / "out"))
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert f"{name}: {what}, not a regular file or folder" in result.stderr
    result = cli("/dev/null", "--output", str(tmp_path / "out"))
    assert result.returncode == 2 and "a character device" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_folder_of_only_odd_entries_says_what_it_skipped(tmp_path):
    os.mkfifo(tmp_path / "only.jsonl")
    with pytest.raises(DataError, match=r"no data files in this folder .*skipped 1 that are not regular files"):
        find_sources(str(tmp_path))


def _within(seconds: float, function):
    """function() run in a daemon thread: its result or exception, or AssertionError if it hangs."""
    box: dict = {}

    def target():
        try:
            box["value"] = function()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still waiting after {seconds} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


@pytest.mark.parametrize("kind", ["jsonl", "json", "csv", "parquet"])
def test_a_file_replaced_by_a_fifo_after_listing_is_refused_not_waited_on(tmp_path, kind):
    """Reading refuses what is not a regular file too (the listing and the reading are apart in time)."""
    name = "pipe.jsonl.gz" if kind == "jsonl" else f"pipe.{kind}"
    os.mkfifo(tmp_path / name)
    shard = Shard(str(tmp_path / name), kind, 0, -1)
    with pytest.raises(DataError, match=r"pipe\.\w+(\.gz)?: a FIFO \(named pipe\), not a regular file"):
        _within(10, lambda: list(read_shard(shard)))


# --- failures leave nothing behind; interruptions keep the progress ------------------------------


def _siblings(path: Path) -> set[str]:
    return {p.name for p in path.parent.iterdir()}


def _bad_line_3rd_shard(tmp_path: Path, name: str = "data.jsonl") -> Path:
    (tmp_path / "src").mkdir(exist_ok=True)
    return write_jsonl(tmp_path / "src" / name, sentences(100), raw_lines={45: '{"messages": [oops'})


@pytest.mark.parametrize(("case", "match"), [
    ("malformed line in shard 3", "data.jsonl: line 45: malformed JSON"),
    ("malformed line in shard 3, 2 workers", "data.jsonl: line 45: malformed JSON"),
    ("malformed line in chunk 3 of a gzip file", "data.jsonl.gz: line 45: malformed JSON"),
    ("ragged CSV row", "data.csv: row 45 (line 46): 3 fields"),
    ("nested too deep in shard 3", "data.jsonl: line 45: JSON nested"),
    ("second file of another format", "b.jsonl: line 1: unknown record format"),
    ("a bad record in a later file", "b.jsonl: line 3: messages[0]: unknown role"),
])
def test_a_failed_audit_leaves_nothing_next_to_the_output(tmp_path, case, match):
    (tmp_path / "src").mkdir()
    workers = 2 if "2 workers" in case else 1
    if "gzip" in case:
        _bad_line_3rd_shard(tmp_path, "data.jsonl.gz")
    elif "CSV" in case:
        rows = [["prompt", "response"]] + [[f"question {i}", f"answer {i}"] for i in range(100)]
        rows[45].append("extra")
        with (tmp_path / "src" / "data.csv").open("w", newline="") as f:
            csv.writer(f).writerows(rows)
    elif "deep" in case:
        write_jsonl(tmp_path / "src" / "data.jsonl", sentences(100), raw_lines={45: '{"messages": ' + deep_array(DEEP) + "}"})
    elif "file" in case:
        write_jsonl(tmp_path / "src" / "a.jsonl", sentences(100))
        bad = sentences(5)
        bad[2]["messages"][0]["role"] = "narrator"
        write_jsonl(tmp_path / "src" / "b.jsonl", [{"text": "x"}] if "format" in case else bad)
    else:
        _bad_line_3rd_shard(tmp_path)
    out = tmp_path / "out"
    before = _siblings(out)
    with pytest.raises(GlobalignError, match=re.escape(match)):
        audit(AuditOptions(str(tmp_path / "src"), out, rows_per_shard=20, workers=workers, progress=False,
                           world_map=False))
    assert _siblings(out) == before


def test_a_crash_that_is_no_data_error_leaves_nothing_either(tmp_path, monkeypatch):
    write_jsonl(tmp_path / "data.jsonl", sentences(100))
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("a bug")
        return real(*args, **kwargs)

    real = analyse.count_messages
    monkeypatch.setattr(analyse, "count_messages", failing)
    before = _siblings(tmp_path / "out")
    with pytest.raises(RuntimeError):
        audit(AuditOptions(str(tmp_path / "data.jsonl"), tmp_path / "out", rows_per_shard=20, workers=1,
                           progress=False, world_map=False))
    assert _siblings(tmp_path / "out") == before


def test_stale_progress_replaced_by_a_failing_audit_is_removed(tmp_path):
    _bad_line_3rd_shard(tmp_path)
    stale = tmp_path / ".out.audit-progress"
    stale.mkdir()
    (stale / "plan.json").write_text("{not json")  # damaged: not reused, and no traceback either
    with pytest.raises(DataError, match="line 45"):
        audit(AuditOptions(str(tmp_path / "src"), tmp_path / "out", rows_per_shard=20, workers=1, progress=False,
                           world_map=False))
    assert not stale.exists() and _siblings(tmp_path / "out") == {"src"}


def _interrupt_at_shard(monkeypatch, n: int, exc: type[BaseException]) -> None:
    real = run._Progress.save

    def save(self, key, counts):
        if len(self.done) == n:
            raise exc()
        real(self, key, counts)

    monkeypatch.setattr(run._Progress, "save", save)


def test_an_interrupted_audit_keeps_its_progress_and_a_failing_rerun_keeps_it_too(tmp_path, monkeypatch):
    write_jsonl(tmp_path / "data.jsonl", sentences(100))
    options = AuditOptions(str(tmp_path / "data.jsonl"), tmp_path / "out", rows_per_shard=20, workers=1,
                           progress=False, world_map=False)
    with monkeypatch.context() as patch:
        _interrupt_at_shard(patch, 2, KeyboardInterrupt)
        with pytest.raises(KeyboardInterrupt):
            audit(options)
    done = tmp_path / ".out.audit-progress" / "done.jsonl"
    assert len(done.read_text().splitlines()) == 2
    with monkeypatch.context() as patch:  # a rerun that crashes does not throw the earlier progress away
        _interrupt_at_shard(patch, 3, RuntimeError)
        with pytest.raises(RuntimeError):
            audit(options)
    assert len(done.read_text().splitlines()) == 3
    result = audit(options)
    assert result.resumed_shards == 3 and result.counts.records == 100
    assert _siblings(tmp_path / "out") == {"data.jsonl", "out"}


def test_a_failed_write_keeps_the_finished_counts_and_the_rerun_only_writes(tmp_path, monkeypatch):
    write_jsonl(tmp_path / "data.jsonl", sentences(100))
    options = AuditOptions(str(tmp_path / "data.jsonl"), tmp_path / "out", rows_per_shard=20, workers=1,
                           progress=False, world_map=False)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(run, "write_rows", disk_full)
        with pytest.raises(GlobalignError, match=r"No space left on device\); nothing was written; the counts are saved in .*\.out\."
                                                 r"audit-progress: rerun the same command"):
            audit(options)
    assert _siblings(tmp_path / "out") == {"data.jsonl", ".out.audit-progress"}  # no .out.partial-*
    assert audit(options).resumed_shards == 5
    assert _siblings(tmp_path / "out") == {"data.jsonl", "out"}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signalled_audit_keeps_its_progress_and_the_rerun_resumes(tmp_path, sig):
    # 240 shards: the signal, sent once two are done, must land before the audit can finish (with 60 shards a
    # quick machine sometimes finished the rest between the poll and the signal)
    write_jsonl(tmp_path / "data.jsonl", sentences(12000))
    args = [str(tmp_path / "data.jsonl"), "--output", str(tmp_path / "out"), "--rows-per-shard", "50",
            "--workers", "1"]
    env = {**os.environ, "PYTHONPATH": SRC}
    process = subprocess.Popen([sys.executable, "-m", "globalign.cli", "audit-data", *args, "--quiet", "--no-map"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    done = tmp_path / ".out.audit-progress" / "done.jsonl"
    deadline = time.time() + CLI_TIMEOUT_S
    while time.time() < deadline and (not done.exists() or len(done.read_text().splitlines()) < 2):
        time.sleep(0.05)
    process.send_signal(sig)
    process.communicate(timeout=CLI_TIMEOUT_S)
    assert process.returncode != 0 and done.exists() and not (tmp_path / "out").exists()
    result = cli(*args)
    assert result.returncode == 0 and "resumed: " in result.stdout, result.stderr
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["records"] == 12000
    assert _siblings(tmp_path / "out") == {"data.jsonl", "out"}
