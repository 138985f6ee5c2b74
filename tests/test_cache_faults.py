"""A damaged request cache ($GLOBALIGN_CACHE_DIR/requests.sqlite) is one line at the CLI, naming the
file and offering --no-cache or moving it aside, before any model loads; one bad stored value is
treated as missing (computed again, overwritten), counted in the manifest and warned about once.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest
from test_cli_errors import cli, isolated, one_error_line, small_data  # noqa: F401 (fixtures: private cache, data)
from test_model_faults import tiny_lm  # noqa: F401 (fixture: a tiny random-weight model folder)

import globalign.pipeline
import globalign.workers.model_units
from globalign.engine.runner import Engine, RewardEngine
from globalign.models.base import ModelInfo
from globalign.requests import ContinuationScore, GenerateRequest, RewardRequest, ScoreRequest
from globalign.store.request_cache import RequestCache, RequestCacheError


@pytest.fixture
def lm(request) -> Path:
    """test_model_faults' tiny random-weight Llama folder."""
    return request.getfixturevalue("tiny_lm")


@pytest.fixture
def data(request) -> Path:
    """test_cli_errors' small GlobalOpinionsQA folder."""
    return request.getfixturevalue("small_data")


@pytest.fixture
def cache_file() -> Path:
    return Path(os.environ["GLOBALIGN_CACHE_DIR"]) / "requests.sqlite"


def run(capsys, model: Path, data_dir: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    return cli(capsys, "run", "--model", model, "--task", "global_opinions", "--data-dir", data_dir, "--output", out,
               *extra)


# -- damaged files: each writes a broken cache at `path` ------------------------------------------------
def _sound_cache(path: Path, rows: int = 400) -> bytes:
    """A real cache with enough rows for several pages; returns its bytes."""
    cache = RequestCache(path)
    cache.put_generations("fp", {f"key-{i}": "some generated text " * 5 for i in range(rows)})
    cache.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path.read_bytes()


def _garbage(path):
    path.write_bytes(os.urandom(4096))


def _text_file(path):
    path.write_text("these are my notes, not a database\n" * 10)


def _cut_to(size_of):
    def cut(path):
        data = _sound_cache(path)
        path.write_bytes(data[: size_of(len(data))])

    cut.__name__ = f"truncated_{size_of.__name__}"
    return cut


def first_50_bytes(n):
    return 50


def first_page(n):
    return 4096


def half(n):
    return n // 2


def all_but_one_page(n):
    return n - 4096


def all_but_one_byte(n):
    return n - 1


def _db_with(*statements):
    def make(path):
        db = sqlite3.connect(path)
        for statement in statements:
            db.execute(statement)
        db.commit()
        db.close()

    make.__name__ = "db_with_" + "_".join(s.split("(")[0].split()[-1] for s in statements)
    return make


def _directory(path):
    path.mkdir()
    (path / "inside.txt").write_text("x")


DAMAGED_FILES = [
    _garbage, _text_file,
    *(_cut_to(f) for f in (first_50_bytes, first_page, half, all_but_one_page, all_but_one_byte)),
    _db_with("CREATE TABLE answers (a TEXT, b TEXT)"),
    _db_with("CREATE TABLE answers (fingerprint TEXT, key TEXT, value TEXT)"),  # no primary key
    _db_with("CREATE TABLE answers (fingerprint TEXT, key TEXT, value TEXT, extra TEXT, PRIMARY KEY (fingerprint, key))"),
    _db_with("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"),
    _db_with("CREATE TABLE users (name TEXT)", "CREATE TABLE orders (id INTEGER)"),
    _directory,
]


@pytest.mark.parametrize("damage", DAMAGED_FILES, ids=lambda f: f.__name__.strip("_"))
def test_a_damaged_cache_file_is_one_line_before_any_model_loads(capsys, monkeypatch, data, tmp_path,
                                                                 cache_file, lm, damage):
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    damage(cache_file)

    def no_model_work(*args, **kwargs):
        raise AssertionError("a model was located or loaded before the cache was checked")

    monkeypatch.setattr(globalign.pipeline, "locate_model", no_model_work)
    monkeypatch.setattr(globalign.workers.model_units, "load_model", no_model_work)
    code, _, err = run(capsys, lm, data, tmp_path / "out")
    line = one_error_line(err)
    assert code == 2
    assert f"request cache {cache_file} " in line and "--no-cache" in line and "move it aside" in line
    assert not (tmp_path / "out").exists()


def test_no_cache_runs_past_a_damaged_cache_file(capsys, data, tmp_path, cache_file, lm):
    cache_file.parent.mkdir(parents=True)
    _garbage(cache_file)
    before = cache_file.read_bytes()
    code, _, err = run(capsys, lm, data, tmp_path / "out", "--no-cache")
    assert code == 0, err
    assert cache_file.read_bytes() == before  # left as it was


def _immutable(path: Path) -> bool:
    """Make `path` unwritable even for root (chattr +i), or by its mode for anyone else."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        return True
    return subprocess.run(["chattr", "+i", str(path)], check=False, capture_output=True).returncode == 0


def test_an_unwritable_cache_file_is_one_line_before_any_model_loads(capsys, data, tmp_path, cache_file,
                                                                      lm):
    cache_file.parent.mkdir(parents=True)
    _sound_cache(cache_file)
    if not _immutable(cache_file):
        pytest.skip("cannot make a file unwritable here (root without chattr)")
    try:
        code, _, err = run(capsys, lm, data, tmp_path / "out")
    finally:
        subprocess.run(["chattr", "-i", str(cache_file)], check=False, capture_output=True)
        cache_file.chmod(0o644)
    line = one_error_line(err)
    assert code == 2 and f"request cache {cache_file} cannot be written" in line and "--no-cache" in line


@pytest.mark.parametrize("page", [2, -1])
def test_a_damaged_page_is_one_line_when_opened_or_read(tmp_path, page):
    """A garbage b-tree page inside a file of the right size: found by the write probe at open (the first
    leaf) or by the first read that reaches it (the last page); either way one line naming the file."""
    path = tmp_path / "requests.sqlite"
    data = bytearray(_sound_cache(path))
    start = page * 4096 if page >= 0 else len(data) - 4096
    data[start : start + 4096] = os.urandom(4096)
    path.write_bytes(bytes(data))
    with pytest.raises(RequestCacheError) as error:
        RequestCache(path).get_generations("fp", [f"key-{i}" for i in range(400)])
    message = str(error.value)
    assert "\n" not in message and str(path) in message and "--no-cache" in message


# -- bad stored values ----------------------------------------------------------------------------------
BAD_VALUES = {
    "scores": ["not json", "[NaN, 1, false]", "[1.5, 2]", '["1.5", 2, false]', "[1.5, -1, false]",
               "[1.5, 2.5, false]", "[1.5, 2, 0]", "[-Infinity, 2, false]", '{"nll": 1}', "null", 7,
               b"\xff\xfe\x00", ""],
    "generations": ["not json", "3", "null", '["a"]', '"\\ud800"', b"\xff\xfe", '"unterminated'],
    "rewards": ["not json", "NaN", '"1.5"', "true", "[1.0]", "null", b"\xc3("],
}
GOOD = {"scores": ContinuationScore(1.25, 2, False), "generations": "a text", "rewards": 0.5}


def _corrupt(path: Path, fingerprint: str, key: str, raw) -> None:
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE answers SET value = ? WHERE fingerprint = ? AND key = ?", (raw, fingerprint, key))
    db.close()


@pytest.mark.parametrize("kind,raw", [(k, v) for k, vs in BAD_VALUES.items() for v in vs])
def test_one_bad_value_is_missing_counted_and_overwritten(capsys, tmp_path, kind, raw):
    path = tmp_path / "requests.sqlite"
    cache = RequestCache(path)
    keys = [f"k{i}" for i in range(5)]
    getattr(cache, f"put_{kind}")("fp", dict.fromkeys(keys, GOOD[kind]))
    _corrupt(path, "fp", "k2", raw)
    get = getattr(cache, f"get_{kind}")
    found = get("fp", keys)
    assert sorted(found) == ["k0", "k1", "k3", "k4"] and cache.damaged == 1
    get("fp", keys)
    assert cache.damaged == 2  # counted again, since it is still there ...
    (warning,) = capsys.readouterr().err.strip().splitlines()  # ... but warned about once
    assert warning.startswith(f"globalign: warning: request cache {path}: 1 stored answer(s) could not be read")
    getattr(cache, f"put_{kind}")("fp", {"k2": GOOD[kind]})
    assert get("fp", keys)["k2"] == GOOD[kind] and cache.damaged == 2


def test_values_every_put_writes_read_back(tmp_path):
    """The decoders accept all that put_* writes: infinities are answers, not damage."""
    cache = RequestCache(tmp_path / "requests.sqlite")
    scores = {"a": ContinuationScore(0.0, 0, False), "b": ContinuationScore(float("inf"), 3, True),
              "c": ContinuationScore(1e-9, 1, False)}
    cache.put_scores("fp", scores)
    cache.put_generations("fp", {"g": "", "h": "Zürich 東京 \U0001f600\n"})
    cache.put_rewards("fp", {"r": -3.5, "s": float("inf"), "t": 0})
    assert cache.get_scores("fp", scores) == scores
    assert cache.get_generations("fp", ["g", "h"]) == {"g": "", "h": "Zürich 東京 \U0001f600\n"}
    assert cache.get_rewards("fp", ["r", "s", "t"]) == {"r": -3.5, "s": float("inf"), "t": 0.0}
    assert cache.damaged == 0


class _CountingModel:
    """A deterministic stand-in backend that counts what it computes."""

    def __init__(self) -> None:
        self.info = ModelInfo(name="fake", backend="fake", fingerprint="fake-fp", source="", dtype="", add_bos=False)
        self.requests_per_call = {"score": 4, "generate": 4, "reward": 4}  # several commits per run
        self.has_chat_template = False
        self.calls = 0

    def score(self, requests):
        self.calls += sum(len(r.continuations) for r in requests)
        return [[ContinuationScore(float(len(c)), len(c), False) for c in r.continuations] for r in requests]

    def generate(self, requests):
        self.calls += len(requests)
        return [r.prompt.text.upper() for r in requests]

    def reward(self, requests):
        self.calls += len(requests)
        return [float(len(r.response)) for r in requests]


def _damage_one(path: Path, fingerprint: str) -> None:
    db = sqlite3.connect(path)
    with db:
        (key,) = db.execute("SELECT key FROM answers WHERE fingerprint = ? LIMIT 1", [fingerprint]).fetchone()
        db.execute("UPDATE answers SET value = 'NaN' WHERE fingerprint = ? AND key = ?", (fingerprint, key))
    db.close()


@pytest.mark.parametrize("kind", ["score", "generate", "reward"])
def test_engines_recompute_only_the_damaged_answer(capsys, tmp_path, kind):
    path = tmp_path / "requests.sqlite"
    requests = {
        "score": [ScoreRequest(f"prompt {i}", (" a", " bb", " ccc")) for i in range(4)],
        "generate": [GenerateRequest(f"prompt {i}", 5) for i in range(6)],
        "reward": [RewardRequest(f"q{i}", "r" * i) for i in range(6)],
    }[kind]

    def engine_run(cache):
        model = _CountingModel()
        engine = RewardEngine(model, cache, progress=False) if kind == "reward" else Engine(model, cache, progress=False)
        answers = getattr(engine, kind)(requests)
        return answers, engine, model

    expected, _, _ = engine_run(RequestCache(path))
    _damage_one(path, "fake-fp")
    answers, engine, model = engine_run(RequestCache(path))
    assert answers == expected
    assert (engine.damaged, model.calls) == (1, 1)
    again, engine, model = engine_run(RequestCache(path))
    assert again == expected and (engine.damaged, model.calls) == (0, 0)  # overwritten with a sound value


def test_a_run_over_bad_rows_finishes_and_counts_them(capsys, data, tmp_path, cache_file, lm):
    code, _, err = run(capsys, lm, data, tmp_path / "first")
    assert code == 0, err
    db = sqlite3.connect(cache_file)
    with db:
        keys = [row[0] for row in db.execute("SELECT key FROM answers LIMIT 3")]
        for key, raw in zip(keys, ["not json", "[NaN, 1, false]", '"text where a score goes"']):
            db.execute("UPDATE answers SET value = ? WHERE key = ?", (raw, key))
    db.close()
    code, _, err = run(capsys, lm, data, tmp_path / "second")
    assert code == 0, err
    (warning,) = [line for line in err.splitlines() if "globalign:" in line]
    assert warning.startswith(f"globalign: warning: request cache {cache_file}: 3 stored answer(s)")
    counts = json.loads((tmp_path / "second" / "manifest.json").read_text())["engine"][str(lm)]
    assert counts["damaged"] == 3 and counts["computed"] == 3
    for name in ("metrics.csv", "samples.jsonl"):  # the recomputed answers are the ones first stored
        assert (tmp_path / "second" / name).read_bytes() == (tmp_path / "first" / name).read_bytes()
    code, _, err = run(capsys, lm, data, tmp_path / "third")
    counts = json.loads((tmp_path / "third" / "manifest.json").read_text())["engine"][str(lm)]
    assert code == 0 and "warning" not in err and counts == {"computed": 0, "from_cache": counts["from_cache"]}


def test_the_engine_hands_over_chunks_of_the_size_the_backend_declares(tmp_path):
    """Each chunk is one backend call and one cache commit: 10 prompts at 4 per call are 3 calls."""
    model = _CountingModel()
    sizes: list[int] = []
    score = model.score
    model.score = lambda requests: (sizes.append(len(requests)), score(requests))[1]
    engine = Engine(model, RequestCache(tmp_path / "c.sqlite"), progress=False)
    engine.score([ScoreRequest(f"p{i}", ("a", "bb")) for i in range(10)])
    assert sizes == [4, 4, 2] and engine.computed == 20
    model.requests_per_call = {"score": 1}
    sizes.clear()
    Engine(model, None, progress=False).score([ScoreRequest(f"q{i}", ("a",)) for i in range(3)])
    assert sizes == [1, 1, 1]
