"""Output folders (issue: a folder holding a `manifest.json` of somebody else's was replaced whole).

The class: for every command that writes a folder (run, rescore, audit-data), and for every way a
folder can hold something globalign did not write, the command refuses with one line before any work
and leaves the folder byte-identical; and an output that cannot be written (the current folder, a
file in the way, an unwritable parent) is refused before any model loads.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

import globalign.store.output as output_module
from globalign.cli import main
from globalign.store.output import AUDIT_FOLDER, RUN_FOLDER, swap_into_place, write_folder

REWARDS = "reward_probe/reference_where_from_starling-rm-7b-alpha.csv"


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every entry under folder: files by bytes, links by target, folders by name."""
    out: dict[str, bytes | str] = {}
    for p in sorted(folder.rglob("*")):
        key = str(p.relative_to(folder))
        out[key] = f"-> {os.readlink(p)}" if p.is_symlink() else p.read_bytes() if p.is_file() else "<dir>"
    return out


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("globalign: error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLOBALIGN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.jsonl"
    rows = [{"messages": [{"role": "user", "content": f"Tell me about France, question {i}."},
                          {"role": "assistant", "content": "France is a country in Europe."}]} for i in range(5)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    return path


# The three writing commands, each as argv for an output folder (no model loads: a refusal must come first).
def _run(data_dir: Path, out: Path) -> list[str]:
    return ["run", "--model", "smollm2-135m-instruct", "--task", "global_opinions", "--limit", "2",
            "--data-dir", str(data_dir), "--output", str(out)]


def _rescore(data_dir: Path, out: Path) -> list[str]:
    return ["rescore", "--task", "where_from", "--predictions", str(data_dir / REWARDS), "--n-boot", "50",
            "--data-dir", str(data_dir), "--output", str(out)]


COMMANDS: dict[str, Callable[[Path, Path, Path], list[str]]] = {
    "run": lambda data, corpus, out: _run(data, out),
    "rescore": lambda data, corpus, out: _rescore(data, out),
    "audit-data": lambda data, corpus, out: ["audit-data", str(corpus), "--output", str(out), "--no-map", "--quiet",
                                             "--workers", "1"],
}
KIND_OF = {"run": RUN_FOLDER, "rescore": RUN_FOLDER, "audit-data": AUDIT_FOLDER}


def _manifest(folder: Path, value: object) -> None:
    (folder / "manifest.json").write_text(json.dumps(value), "utf-8")


def _foreign_manifest(folder: Path, command: str) -> None:
    _manifest(folder, {"name": "my-web-app", "version": "1.0"})  # a PWA's manifest.json
    (folder / "index.html").write_text("<html>mine</html>", "utf-8")


def _legacy_plus_user_file(folder: Path, command: str) -> None:
    _manifest(folder, {"globalign_version": "0.1.0"})
    (folder / "metrics.csv").write_text("task\n", "utf-8")
    (folder / "notes.md").write_text("my notes on this run\n", "utf-8")


def _own_plus_user_file(folder: Path, command: str) -> None:
    kind = KIND_OF[command]
    _manifest(folder, {"schema": kind.schema, "schema_version": 1, "output_files": ["metrics.csv"]})
    (folder / "metrics.csv").write_text("task\n", "utf-8")
    (folder / "report.html").write_text("<html>hand-made</html>", "utf-8")


def _user_subfolder(folder: Path, command: str) -> None:
    kind = KIND_OF[command]
    _manifest(folder, {"schema": kind.schema, "schema_version": 1, "output_files": ["plots"]})
    (folder / "plots").mkdir()
    (folder / "plots" / "figure.png").write_bytes(b"\x89PNG")


def _listed_name_is_a_link(folder: Path, command: str) -> None:
    kind = KIND_OF[command]
    (folder.parent / "precious.txt").write_text("keep me\n", "utf-8")
    _manifest(folder, {"schema": kind.schema, "schema_version": 1, "output_files": ["metrics.csv"]})
    os.symlink(folder.parent / "precious.txt", folder / "metrics.csv")


def _path_in_files_list(folder: Path, command: str) -> None:
    kind = KIND_OF[command]
    _manifest(folder, {"schema": kind.schema, "schema_version": 1, "output_files": ["../*", "*/*"]})
    (folder / "data.csv").write_text("mine\n", "utf-8")


def _other_kind(folder: Path, command: str) -> None:
    other = AUDIT_FOLDER if KIND_OF[command] is RUN_FOLDER else RUN_FOLDER
    _manifest(folder, {"schema": other.schema, "schema_version": 1, "output_files": []})


def _manifest_not_json(folder: Path, command: str) -> None:
    (folder / "manifest.json").write_bytes(b"\xff\xfe not json")


def _manifest_is_a_list(folder: Path, command: str) -> None:
    _manifest(folder, ["globalign_version"])


FOREIGN = {f.__name__.strip("_"): f for f in (
    _foreign_manifest, _legacy_plus_user_file, _own_plus_user_file, _user_subfolder, _listed_name_is_a_link,
    _path_in_files_list, _other_kind, _manifest_not_json, _manifest_is_a_list)}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("variant", FOREIGN)
def test_a_folder_with_anything_globalign_did_not_write_is_refused_and_left_untouched(
        capsys, tmp_path, data_dir, corpus, command, variant):
    out = tmp_path / "app"
    out.mkdir()
    FOREIGN[variant](out, command)
    before, around = snapshot(out), sorted(p.name for p in tmp_path.iterdir())
    code = main(COMMANDS[command](data_dir, corpus, out))
    line = one_error_line(capsys.readouterr().err)
    assert code == 2
    assert f"output {out}" in line and "choose another --output" in line
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == around  # no partial or old sibling, no cache
    if variant == "listed_name_is_a_link":
        assert (tmp_path / "precious.txt").read_text("utf-8") == "keep me\n"


@pytest.mark.parametrize("command", ["rescore", "audit-data"])
def test_a_folder_globalign_wrote_is_replaced_and_its_manifest_lists_every_file(capsys, tmp_path, data_dir, corpus,
                                                                                  command):
    out = tmp_path / "out"
    argv = COMMANDS[command](data_dir, corpus, out)
    assert main(argv) == 0
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert manifest["schema"] == KIND_OF[command].schema and manifest["schema_version"] == KIND_OF[command].version
    assert sorted([*manifest["output_files"], "manifest.json"]) == sorted(p.name for p in out.iterdir())
    assert main(argv) == 0  # the same command again replaces its own folder
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == []


def test_a_folder_of_globalign_0_1_with_only_its_files_is_replaced(capsys, tmp_path, data_dir, corpus):
    out = tmp_path / "old-run"
    out.mkdir()
    _manifest(out, {"globalign_version": "0.1.0"})
    for name in ("metrics.csv", "comparisons.csv", "samples.jsonl", "map_askreddit_mean_rank_x.png"):
        (out / name).write_text("old\n", "utf-8")
    assert main(_rescore(data_dir, out)) == 0
    assert "map_askreddit_mean_rank_x.png" not in os.listdir(out)


@pytest.mark.parametrize("kind", [RUN_FOLDER, AUDIT_FOLDER], ids=["run", "audit"])
def test_a_file_added_during_the_work_is_kept_not_deleted(tmp_path, capsys, kind):
    out = tmp_path / "out"
    write_folder(out, kind, {"n": 1}, lambda work: (work / "metrics.csv").write_text("a\n", "utf-8"))
    real_replace = os.replace

    def user_adds_a_file_between_check_and_swap(src, dst):
        if Path(dst).name.startswith(".out.old-"):
            (Path(src) / "added-by-user.txt").write_text("mine\n", "utf-8")
        return real_replace(src, dst)

    work = tmp_path / ".out.partial-test"
    work.mkdir()
    (work / "metrics.csv").write_text("b\n", "utf-8")
    _manifest(work, {"schema": kind.schema, "schema_version": 1, "output_files": ["metrics.csv"]})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(output_module.os, "replace", user_adds_a_file_between_check_and_swap)
        swap_into_place(work, out, kind)
    kept = [p for p in tmp_path.iterdir() if p.name.startswith(".out.old-")]
    assert len(kept) == 1 and (kept[0] / "added-by-user.txt").read_text("utf-8") == "mine\n"
    assert (out / "metrics.csv").read_text("utf-8") == "b\n"
    assert "were kept in" in capsys.readouterr().err


# ---------------------------------------------------------------- outputs that cannot be written
def _file_in_the_way(tmp_path: Path) -> Path:
    (tmp_path / "a-file").write_text("x", "utf-8")
    return tmp_path / "a-file" / "run"


def _deep_under_a_file(tmp_path: Path) -> Path:
    (tmp_path / "a-file").write_text("x", "utf-8")
    return tmp_path / "a-file" / "x" / "y" / "run"


def _output_is_a_file(tmp_path: Path) -> Path:
    (tmp_path / "run").write_text("x", "utf-8")
    return tmp_path / "run"


def _output_is_a_link(tmp_path: Path) -> Path:
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "run")
    return tmp_path / "run"


UNWRITABLE: dict[str, Callable[[Path], Path]] = {
    "dot": lambda tmp: Path("."),
    "dot-dot": lambda tmp: Path(".."),
    "empty-name-after-resolve": lambda tmp: Path("sub/.."),
    "the-root": lambda tmp: Path("/"),
    "an-ancestor-of-cwd": lambda tmp: tmp.parent,
    "file-in-the-way": _file_in_the_way,
    "deep-under-a-file": _deep_under_a_file,
    "output-is-a-file": _output_is_a_file,
    "output-is-a-link": _output_is_a_link,
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", UNWRITABLE)
def test_an_output_that_cannot_be_written_is_refused_before_any_work(capsys, tmp_path, data_dir, corpus, command,
                                                                       case, monkeypatch):
    # No model may load and no data may be read before the refusal.
    import globalign.workers.model_units

    monkeypatch.setattr(globalign.workers.model_units, "load_model", lambda *a, **k: pytest.fail("a model loaded"))
    out = UNWRITABLE[case](tmp_path)
    before = snapshot(tmp_path)
    code = main(COMMANDS[command](data_dir, corpus, out))
    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and "--output" in line
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unwritable_parent_is_refused_before_any_work(capsys, tmp_path, data_dir, corpus, command, monkeypatch):
    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    # Root may write anywhere that is mounted read-write, so the refusal is simulated at the probe.
    monkeypatch.setattr(output_module.tempfile, "mkstemp", read_only)
    code = main(COMMANDS[command](data_dir, corpus, tmp_path / "ro" / "run"))
    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and "cannot write in" in line and "Permission denied" in line
    assert not (tmp_path / "ro").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_parent_is_refused_for_real(capsys, tmp_path, data_dir):
    parent = tmp_path / "ro"
    parent.mkdir(mode=0o500)
    code = main(_rescore(data_dir, parent / "run"))
    assert code == 2 and "cannot write in" in one_error_line(capsys.readouterr().err)


def test_the_probe_leaves_nothing_behind(tmp_path):
    output_module.check_output_dir(tmp_path / "new" / "run")
    assert list(tmp_path.iterdir()) == []
    assert tempfile.gettempdir()  # the probe writes in the output's parent, not in /tmp


def _dead_pid() -> int:
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_leftovers_of_a_killed_writer_are_removed_on_the_next_write(tmp_path):
    out = tmp_path / "run"
    dead = _dead_pid()
    partial = tmp_path / f".run.partial-{dead}-0123456789ab"
    partial.mkdir()
    (partial / "metrics.csv").write_text("half\n", "utf-8")
    old = tmp_path / f".run.old-{dead}-0123456789ab"  # killed between moving the old folder and deleting it
    old.mkdir()
    _manifest(old, {"schema": RUN_FOLDER.schema, "schema_version": 1, "output_files": ["metrics.csv"]})
    (old / "metrics.csv").write_text("old\n", "utf-8")
    alive = tmp_path / f".run.partial-{os.getpid()}-0123456789ab"  # a writer still at work
    alive.mkdir()
    (alive / "metrics.csv").write_text("busy\n", "utf-8")
    kept = tmp_path / f".run.old-{dead}-ba9876543210"  # holds a user's file (kept by a raced swap)
    kept.mkdir()
    (kept / "notes.txt").write_text("mine\n", "utf-8")
    write_folder(out, RUN_FOLDER, {"n": 1}, lambda work: (work / "metrics.csv").write_text("new\n", "utf-8"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["run", alive.name, kept.name])
    assert (kept / "notes.txt").read_text("utf-8") == "mine\n"
