"""Finding and reading audit sources: shards that seek, global line numbers, streaming, and errors that
name the file and line."""

from __future__ import annotations

import gzip
import json
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from globalign.audit import sources
from globalign.audit.finding import source_files
from globalign.audit.records import Shard
from globalign.audit.sources import file_kind, plan_shards, read_shard
from globalign.errors import DataError


def write_jsonl(path: Path, n: int, *, final_newline: bool = True) -> Path:
    text = "\n".join(json.dumps({"n": i, "text": f"row {i}"}) for i in range(1, n + 1))
    path.write_text(text + ("\n" if final_newline else ""), encoding="utf-8")
    return path


def read_all(paths, **kw) -> list[tuple[str, dict]]:
    return [pair for shard in plan_shards(paths, **kw) for pair in read_shard(shard)]


# --- finding files ---------------------------------------------------------------------------------


def test_a_folder_lists_its_data_files_recursively_and_sorted_skipping_the_rest(tmp_path):
    (tmp_path / "data" / "test").mkdir(parents=True)
    for name in ("data/train.jsonl", "data/test/b.parquet", "data/test/a.csv", "z.tsv", "x.json", "y.jsonl.gz"):
        (tmp_path / name).write_bytes(b"")
    for name in ("README.md", ".gitattributes", "dataset_info.json", "LICENSE"):
        (tmp_path / name).write_text("not data")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "hidden.jsonl").write_text("{}")
    found = [p.relative_to(tmp_path).as_posix() for p in source_files(str(tmp_path))]
    assert found == ["data/test/a.csv", "data/test/b.parquet", "data/train.jsonl", "x.json", "y.jsonl.gz", "z.tsv"]


def test_file_kinds_follow_the_extension_through_gz():
    kinds = {name: file_kind(Path(name)) for name in ("a.jsonl", "a.NDJSON", "a.json", "a.csv", "a.tsv",
                                                       "a.parquet", "a.jsonl.gz", "a.csv.gz")}
    assert kinds == {"a.jsonl": "jsonl", "a.NDJSON": "jsonl", "a.json": "json", "a.csv": "csv", "a.tsv": "csv",
                     "a.parquet": "parquet", "a.jsonl.gz": "jsonl", "a.csv.gz": "csv"}
    with pytest.raises(DataError, match=r"a\.parquet\.gz: unknown file type"):
        file_kind(Path("a.parquet.gz"))


def test_source_errors_name_the_path(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"notes\.txt: unknown file type '\.txt'"):
        source_files(str(tmp_path / "notes.txt"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README.md").write_text("x")
    with pytest.raises(DataError, match=r"empty: no data files in this folder"):
        source_files(str(tmp_path / "empty"))
    with pytest.raises(DataError, match=r"missing\.jsonl: no such file or folder"):
        source_files(str(tmp_path / "missing.jsonl"))
    (tmp_path / "arrow").mkdir()
    (tmp_path / "arrow" / "data-00000-of-00001.arrow").write_bytes(b"")
    with pytest.raises(DataError, match=r"data-00000-of-00001\.arrow: unsupported data file type"):
        source_files(str(tmp_path / "arrow"))


def test_a_missing_relative_data_path_is_not_taken_for_a_hub_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("huggingface_hub.snapshot_download", _must_not_download)
    with pytest.raises(DataError, match=r"^data/train\.jsonl: no such file or folder$"):
        source_files("data/train.jsonl")


def _must_not_download(*args, **kwargs):
    raise AssertionError("the hub was called")


def test_an_unreachable_hub_says_so_in_one_line_and_suggests_a_local_folder(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DataError) as err:
        source_files("globalign-tests/no-such-dataset")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("globalign-tests/no-such-dataset: not a local file or folder")
    assert "hub is unreachable" in message and "pass a local file or folder instead" in message


def test_a_hub_id_downloads_only_data_files_of_the_dataset_repo(tmp_path, monkeypatch):
    snapshot = tmp_path / "snapshot"
    (snapshot / "data").mkdir(parents=True)
    write_jsonl(snapshot / "data" / "train.jsonl", 3)
    (snapshot / "README.md").write_text("card")
    calls = []

    def fake_snapshot_download(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        return str(snapshot)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("huggingface_hub.snapshot_download", fake_snapshot_download)
    assert source_files("allenai/tulu-v2-sft-mixture@main") == [snapshot / "data" / "train.jsonl"]
    (repo_id, kwargs), = calls
    assert repo_id == "allenai/tulu-v2-sft-mixture"
    assert kwargs["repo_type"] == "dataset" and kwargs["revision"] == "main"
    assert "*.parquet" in kwargs["allow_patterns"] and "*.jsonl" in kwargs["allow_patterns"]


# --- JSON lines ------------------------------------------------------------------------------------


def test_jsonl_shards_seek_to_their_lines_and_number_lines_globally(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", 12_345, final_newline=False)
    shards = plan_shards([path], rows_per_shard=5000)
    assert [(s.start, s.stop, s.first_line) for s in shards] == [(0, 5000, 1), (5000, 10000, 5001),
                                                                  (10000, 12345, 10001)]
    second = list(read_shard(shards[1]))
    assert len(second) == 5000
    assert second[2] == (f"{path}: line 5003", {"n": 5003, "text": "row 5003"})
    everything = [row["n"] for shard in shards for _, row in read_shard(shard)]
    assert everything == list(range(1, 12_346))


def test_jsonl_shard_boundary_at_the_end_of_the_file_makes_no_empty_shard(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", 10)
    assert [(s.start, s.stop) for s in plan_shards([path], rows_per_shard=5)] == [(0, 5), (5, 10)]
    (tmp_path / "empty.jsonl").write_bytes(b"")
    assert plan_shards([tmp_path / "empty.jsonl"]) == []


def test_jsonl_skips_blank_lines_and_keeps_line_numbers(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\n\n  \r\n{"a": 2}\r\n')
    assert read_all([path]) == [(f"{path}: line 1", {"a": 1}), (f"{path}: line 4", {"a": 2})]


def test_jsonl_errors_name_the_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n{"a": 1 "b": 2}\n')
    with pytest.raises(DataError, match=r"x\.jsonl: line 2: malformed JSON \(Expecting ',' delimiter"):
        read_all([path])
    path.write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(DataError, match=r"x\.jsonl: line 2: expected a JSON object, got an array"):
        read_all([path])
    path.write_bytes(b'{"a": 1}\n{"a": 2}\n{"a": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"x\.jsonl: line 3: not UTF-8 text \(byte offset 28\)"):
        read_all([path])


def test_gzipped_jsonl_is_one_streamed_shard(tmp_path):
    path = tmp_path / "x.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write('{"a": 1}\n{"a": 2}\n')
    assert plan_shards([path], rows_per_shard=1) == [Shard(str(path), "jsonl", 0, -1)]
    assert read_all([path]) == [(f"{path}: line 1", {"a": 1}), (f"{path}: line 2", {"a": 2})]
    (tmp_path / "bad.jsonl.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match=r"bad\.jsonl\.gz: cannot read"):
        read_all([tmp_path / "bad.jsonl.gz"])


def test_reading_a_shard_of_a_large_jsonl_holds_memory_bounded(tmp_path):
    path = tmp_path / "big.jsonl"
    line = json.dumps({"messages": [{"role": "user", "content": "x" * 60}]})
    with path.open("w") as f:
        for _ in range(200_000):
            f.write(line + "\n")
    size = path.stat().st_size
    tracemalloc.start()
    try:
        shards = plan_shards([path], rows_per_shard=5000)
        _, plan_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        rows = sum(1 for _ in read_shard(shards[20]))
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(shards) == 40 and rows == 5000
    # planning holds about one read chunk (1 MiB), reading one line at a time: neither grows with the file
    assert size > 20 * 2**20
    assert plan_peak < 4 * 2**20 and read_peak < 2**20, (size, plan_peak, read_peak)


# --- JSON documents --------------------------------------------------------------------------------


def test_a_json_array_streams_items_with_their_lines(tmp_path):
    path = tmp_path / "alpaca.json"
    items = [{"instruction": f"do {i}", "input": "", "output": "done\nwell"} for i in range(3)]
    path.write_text(json.dumps(items, indent=2))
    rows = read_all([path])
    assert [row for _, row in rows] == items
    assert rows[0][0] == f"{path}: item 1 (line 2)"
    assert rows[2][0] == f"{path}: item 3 (line 12)"


def test_a_json_array_larger_than_a_read_chunk_streams_whole_items(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "_CHUNK_BYTES", 64)
    path = tmp_path / "x.json"
    items = [{"n": i, "text": "é" * (i * 17), "score": 12345.678} for i in range(40)]
    path.write_text(json.dumps(items), encoding="utf-8")
    assert [row for _, row in read_all([path])] == items


def test_a_json_object_with_lists_of_records_streams_those_lists(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"version": "1.0", "tags": ["a"], "train": [{"q": 1}, {"q": 2}], "test": [{"q": 3}]},
                                indent=1))
    rows = read_all([path])
    assert [row for _, row in rows] == [{"q": 1}, {"q": 2}, {"q": 3}]
    assert rows[2][0].startswith(f"{path}: 'test' item 1 (line ")
    path.write_text('{\n "version": "1.0"\n}')
    with pytest.raises(DataError, match=r"x\.json: a JSON object without a list of records"):
        read_all([path])


def test_a_json_file_holding_json_lines_is_read_as_json_lines(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"a": 1}\n{"a": 2}\n')
    (shard,) = plan_shards([path])
    assert shard.kind == "jsonl"
    assert list(read_shard(shard))[1] == (f"{path}: line 2", {"a": 2})


def test_json_document_errors_name_the_line(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('[\n {"a": 1},\n {"a": 2,}\n]')
    with pytest.raises(DataError, match=r"x\.json: line 3: malformed JSON \(Expecting property name"):
        read_all([path])
    path.write_text('[{"a": 1}, 2]')
    with pytest.raises(DataError, match=r"x\.json: item 2 \(line 1\): expected a JSON object, got a number"):
        read_all([path])
    path.write_bytes(b'[\n{"a": 1},\n{"a": "\xff"}]')
    with pytest.raises(DataError, match=r"x\.json: line 3: not UTF-8 text"):
        read_all([path])
    path.write_text('[{"a": 1}] {"b": 2}')
    with pytest.raises(DataError, match=r"x\.json: line 1: malformed JSON \(extra data"):
        read_all([path])


# --- CSV -------------------------------------------------------------------------------------------


def test_csv_rows_keep_quoted_newlines_and_name_row_and_line(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text('prompt,response\n"multi\nline",ok\n\nsecond,"a, b"\n', encoding="utf-8")
    assert plan_shards([path]) == [Shard(str(path), "csv", 0, -1)]
    assert read_all([path]) == [
        (f"{path}: row 1 (line 2)", {"prompt": "multi\nline", "response": "ok"}),
        (f"{path}: row 2 (line 5)", {"prompt": "second", "response": "a, b"}),
    ]


def test_tsv_reads_tabs(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_text("question\tanswer\nwhat, why\tbecause\n")
    assert read_all([path]) == [(f"{path}: row 1 (line 2)", {"question": "what, why", "answer": "because"})]


def test_csv_errors_name_the_row_and_line(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(DataError, match=r"x\.csv: row 2 \(line 3\): 3 fields, the header has 2"):
        read_all([path])
    path.write_text("")
    with pytest.raises(DataError, match=r"x\.csv: empty file"):
        read_all([path])
    path.write_text("a,a\n1,2\n")
    with pytest.raises(DataError, match=r"x\.csv: line 1: duplicate column 'a'"):
        read_all([path])
    path.write_bytes(b"a,b\n1,2\n3,\x80\n")
    with pytest.raises(DataError, match=r"x\.csv: line 3: not UTF-8 text"):
        read_all([path])
    path.write_text('a,b\n"x"y,2\n')
    with pytest.raises(DataError, match=r"x\.csv: line 2: malformed CSV"):
        read_all([path])


# --- Parquet ---------------------------------------------------------------------------------------


def write_parquet(path: Path, n: int, row_group_size: int) -> Path:
    table = pa.table({
        "n": list(range(1, n + 1)),
        "messages": [[{"role": "user", "content": f"q{i}"}] for i in range(1, n + 1)],
    })
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def test_parquet_shards_are_runs_of_row_groups_with_global_row_numbers(tmp_path):
    path = write_parquet(tmp_path / "x.parquet", 7500, row_group_size=1000)
    shards = plan_shards([path], rows_per_shard=2500)
    assert [(s.kind, s.start, s.stop) for s in shards] == [("parquet", 0, 3), ("parquet", 3, 6), ("parquet", 6, 8)]
    second = list(read_shard(shards[1]))
    assert len(second) == 3000
    assert second[30] == (f"{path}: row 3031", {"n": 3031, "messages": [{"role": "user", "content": "q3031"}]})
    assert [row["n"] for s in shards for _, row in read_shard(s)] == list(range(1, 7501))


def test_an_unreadable_parquet_file_is_a_data_error(tmp_path):
    path = tmp_path / "x.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataError, match=r"x\.parquet: not a readable Parquet file"):
        plan_shards([path])


def test_a_folder_mixing_kinds_reads_every_row(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", 3)
    write_parquet(tmp_path / "b.parquet", 4, row_group_size=2)
    (tmp_path / "c.csv").write_text("n\n1\n2\n")
    (tmp_path / "d.json").write_text('[{"n": 1}]')
    rows = read_all(source_files(str(tmp_path)), rows_per_shard=2)
    counts = {}
    for where, _ in rows:
        counts[Path(where.split(":")[0]).name] = counts.get(Path(where.split(":")[0]).name, 0) + 1
    assert counts == {"a.jsonl": 3, "b.parquet": 4, "c.csv": 2, "d.json": 1}
