"""Fault injection: `run`, `rescore` and `audit-data` killed with SIGKILL at seeded random points over
their whole life (start-up, data, model loading, computing, statistics, the output write), each kill
followed by a rerun whose output folder is byte-identical to an uninterrupted run's; and a disk that
fills during the output write (a file-size limit, and a small tmpfs where this machine lets us mount
one), after which the previous output folder is intact.

After every kill: no half-written output folder (it is absent or the complete previous one), no
worker left running, and after the rerun no `.NAME.partial-*` / `.NAME.old-*` leftover.
The kill points and the phases they hit are printed (`pytest -s`)."""

from __future__ import annotations

import gzip
import os
import random
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from faults import (
    Command,
    Kill,
    KillPoint,
    assert_one_line_error,
    assert_same_outputs,
    cached_answers,
    kill_at,
    mapped,
    open_files,
    run_to_end,
    run_with_file_limit,
    saved_lines,
    snapshot,
    watch,
)

SEED = 20261
PAPER_MD3 = "paper_outputs/outputs/md3-game"


@dataclass
class Case:
    """A command, its uninterrupted output (`reference`) and its timeline: {phase: (first, last seen)}."""

    command: Command
    reference: Path
    timeline: dict[str, tuple[float, float]]
    phase_of: Callable[[int], str]
    stderr: Path
    root: Path

    def window(self, phase: str) -> tuple[float, float]:
        return self.timeline.get(phase, (0.0, 0.0))

    def kill(self, point: KillPoint) -> Kill:
        """Kill at `point`; where the command ended first (the machine was less busy than when it was
        measured), again with half the delay, up to 8 times."""
        for _ in range(8):
            kill = kill_at(self.command, point, self.phase_of, self.stderr)
            if kill is not None:
                return kill
            point = replace(point, delay_s=point.delay_s / 2)
        raise AssertionError(f"{point}: the command always ended before the kill; make its workload longer")


def _private_cache(folder: Path) -> Path:
    """An empty request cache that links the converted models (as conftest's private_cache, for a module)."""
    from globalign.paths import cache_dir

    folder.mkdir()
    for name in ("converted", "gguf"):
        (cache_dir() / name).mkdir(parents=True, exist_ok=True)
        os.symlink(cache_dir() / name, folder / name)
    return folder


def _with_output(command: Command, output: Path) -> Command:
    args = list(command.args)
    args[args.index("--output") + 1] = str(output)
    return replace(command, args=tuple(args), output=output)


def _check_after_kill(case: Case, kill: Kill) -> None:
    out = case.command.output
    assert kill.orphans == 0, f"{kill}: worker processes outlived the killed command"
    if out.exists():  # only ever the complete previous folder (or the complete new one)
        assert_same_outputs(out, case.reference)
    assert len(case.command.leftovers()) <= 1, case.command.leftovers()


def _kill_then_rerun(case: Case, point: KillPoint) -> tuple[Kill, subprocess.CompletedProcess[str]]:
    kill = case.kill(point)
    _check_after_kill(case, kill)
    return kill, _rerun_and_compare(case)


def _rerun_and_compare(case: Case) -> subprocess.CompletedProcess[str]:
    done = run_to_end(case.command)
    assert_same_outputs(case.command.output, case.reference)
    assert case.command.leftovers() == [], "leftovers of killed writes must not accumulate"
    return done


def _report(command: str, case: Case, kills: Sequence[Kill]) -> set[str]:
    timeline = ", ".join(f"{phase} {first:.2f}-{last:.2f} s" for phase, (first, last) in case.timeline.items())
    print(f"\n{command}: uninterrupted run: {timeline}\n{command}: {len(kills)} kill points")
    for kill in kills:
        print(f"  aimed at {kill.point.aim:<16} hit {kill.phase:<16} at {kill.at_s:6.2f} s")
    return {kill.phase for kill in kills}


# -- run ------------------------------------------------------------------------------------------
RUN_LIMIT = 24  # GlobalOpinionsQA questions: 3 chunks of 8 prompts, so kills land between commits too


def _run_phase(command: Command, stderr: Path) -> Callable[[int], str]:
    def phase(pid: int) -> str:
        if command.leftovers():
            return "writing"
        if not mapped(pid, "libtorch_cpu"):
            return "start-up, data"
        if any(name.endswith("requests.sqlite") for name in open_files(pid)):
            computing = stderr.exists() and b"global_opinions [" in stderr.read_bytes()
            return "computing" if computing else "model loading"
        return "statistics"

    return phase


def _cache_files(cache: Path) -> list[Path]:
    return [cache / f"requests.sqlite{suffix}" for suffix in ("", "-wal", "-shm")]


def _save_cache(cache: Path, to: Path) -> None:
    to.mkdir(exist_ok=True)
    for path in _cache_files(cache):
        if path.exists():
            shutil.copy2(path, to / path.name)


def _restore_cache(cache: Path, saved: Path | None) -> None:
    for path in _cache_files(cache):
        path.unlink(missing_ok=True)
        if saved is not None and (saved / path.name).exists():
            shutil.copy2(saved / path.name, path)


@pytest.fixture(scope="module")
def run_case(tmp_path_factory, data_dir) -> Case:
    root = tmp_path_factory.mktemp("run")
    cache = _private_cache(root / "cache")
    out = root / "out"
    command = Command(("run", "--model", "smollm2-135m-instruct", "--task", "global_opinions", "--limit",
                       str(RUN_LIMIT), "--n-boot", "200", "--threads", "1", "--data-dir", str(data_dir),
                       "--output", str(out)), out, {**os.environ, "GLOBALIGN_CACHE_DIR": str(cache)})
    stderr = root / "stderr.txt"
    phase_of = _run_phase(command, stderr)
    computed = watch(command, phase_of, stderr)  # an empty cache: every answer computed
    reference = root / "reference"
    os.replace(out, reference)
    _save_cache(cache, root / "full-cache")
    timeline = watch(command, phase_of, stderr)  # every answer from the cache
    assert_same_outputs(out, reference)  # answers read back from the cache give the same bytes
    shutil.rmtree(out)
    timeline["computing"] = computed["computing"]
    return Case(command, reference, timeline, phase_of, stderr, root)


@pytest.mark.slow
def test_run_killed_at_random_points_reruns_to_the_same_bytes(run_case):
    case, rng = run_case, random.Random(SEED)
    cache = Path(case.command.env["GLOBALIGN_CACHE_DIR"])
    total = cached_answers(cache)
    kills: list[Kill] = []

    # Mid-computation, from an empty cache: each kill's cache state is saved, a rerun from it must
    # give the reference bytes, and the next kill starts from that state again (further on).
    computing = case.window("computing")[1] - case.window("computing")[0]
    saved: Path | None = None
    for _ in range(3):
        _restore_cache(cache, saved)
        remaining = computing * (1 - cached_answers(cache) / total)
        kill = case.kill(KillPoint("computing", rng.uniform(0.0, 0.9 * remaining),
                                   trigger=lambda pid: case.phase_of(pid) == "computing"))
        kills.append(kill)
        _check_after_kill(case, kill)
        saved = case.root / f"cache-after-kill-{len(kills)}"
        _save_cache(cache, saved)
        _rerun_and_compare(case)

    # Every answer cached: start-up, model loading, statistics, the write.
    _restore_cache(cache, case.root / "full-cache")
    loading = case.window("model loading")
    points = [
        KillPoint("start-up, data", rng.uniform(0.05, loading[0])),
        KillPoint("model loading", rng.uniform(0.0, 0.9 * (loading[1] - loading[0])),
                  trigger=lambda pid: mapped(pid, "libtorch_cpu")),
        KillPoint("statistics", 0.0, trigger=lambda pid: case.phase_of(pid) in ("statistics", "writing")),
        # the write of a few files takes milliseconds: at its start, and a little after

        KillPoint("writing", 0.0, trigger=lambda pid: bool(case.command.leftovers())),
        KillPoint("writing", rng.uniform(0.0, 0.005), trigger=lambda pid: bool(case.command.leftovers())),
    ]
    kills += [_kill_then_rerun(case, point)[0] for point in points]
    hit = _report("run", case, kills)
    assert {"computing", "start-up, data", "model loading", "writing"} <= hit, hit


# -- rescore --------------------------------------------------------------------------------------
def _rescore_phase(command: Command, predictions: Path) -> Callable[[int], str]:
    def phase(pid: int) -> str:
        if command.leftovers():
            return "writing"
        if not mapped(pid, "_multiarray_umath"):
            return "start-up"
        if any(name.startswith(str(predictions)) for name in open_files(pid)):
            return "reading"
        return "statistics"

    return phase


@pytest.fixture(scope="module")
def rescore_case(tmp_path_factory, data_dir) -> Case:
    root = tmp_path_factory.mktemp("rescore")
    out = root / "out"
    predictions = data_dir / PAPER_MD3
    command = Command(("rescore", "--task", "md3", "--predictions", str(predictions), "--output", str(out),
                       "--n-boot", "200", "--n-perm", "200"), out)
    stderr = root / "stderr.txt"
    phase_of = _rescore_phase(command, predictions)
    timeline = watch(command, phase_of, stderr)
    reference = root / "reference"
    os.replace(out, reference)
    return Case(command, reference, timeline, phase_of, stderr, root)


def test_rescore_killed_at_random_points_reruns_to_the_same_bytes(rescore_case):
    case, rng = rescore_case, random.Random(SEED + 1)
    # the start-up, the statistics, two anywhere in the measured life, and two in the write
    start_up_end = min(first for phase, (first, _) in case.timeline.items() if phase != "start-up")
    statistics, end, write = case.window("statistics"), 0.9 * case.window("end")[0], case.window("writing")
    points = [KillPoint("start-up", rng.uniform(0.02, start_up_end)),
              KillPoint("statistics", rng.uniform(0.0, 0.9 * (statistics[1] - statistics[0])),
                        trigger=lambda pid: case.phase_of(pid) == "statistics"),
              KillPoint("anywhere", rng.uniform(0.0, end)), KillPoint("anywhere", rng.uniform(0.0, end))]
    points += [KillPoint("writing", rng.uniform(0.0, write[1] - write[0]),
                         trigger=lambda pid: bool(case.command.leftovers())) for _ in range(2)]
    kills = [_kill_then_rerun(case, point)[0] for point in points]
    hit = _report("rescore", case, kills)
    assert {"start-up", "writing"} <= hit and len(hit) >= 3, hit


# -- audit-data -----------------------------------------------------------------------------------
def _progress_file(command: Command) -> Path:
    return command.output.parent / f".{command.output.name}.audit-progress" / "done.jsonl"


def _audit_phase(command: Command) -> Callable[[int], str]:
    done = _progress_file(command)

    def phase(pid: int) -> str:
        if command.leftovers():
            return "writing, map"
        if not done.exists():
            return "start-up, planning"
        return "counting"  # up to the last shard; then summary and manifest (a few ms) until the write

    return phase


@pytest.fixture(scope="module")
def audit_case(tmp_path_factory, data_dir) -> Case:
    from globalign.audit.labelled_corpus import labelled_texts, write_chat_jsonl, write_preference_jsonl

    root = tmp_path_factory.mktemp("audit")
    texts = labelled_texts(data_dir, per_language=40, seed=3)
    write_chat_jsonl(texts, root / "chat.jsonl")
    write_preference_jsonl(texts, root / "pref.jsonl")
    chat, pref = (root / "chat.jsonl").read_text("utf-8"), (root / "pref.jsonl").read_text("utf-8")
    corpus = root / "corpus"
    (corpus / "sub").mkdir(parents=True)
    # ~2,900 records in three files: JSONL split by lines, preference JSONL, and a gzip read in chunks
    (corpus / "a_chat.jsonl").write_text(chat * 8, "utf-8")
    (corpus / "sub" / "b_pref.jsonl").write_text(pref * 6, "utf-8")
    (corpus / "sub" / "c_chat.jsonl.gz").write_bytes(gzip.compress((chat * 4).encode()))
    out = root / "out"
    command = Command(("audit-data", str(corpus), "--output", str(out), "--rows-per-shard", "100",
                       "--workers", "2", "--quiet"), out)
    stderr = root / "stderr.txt"
    phase_of, done, units = _audit_phase(command), _progress_file(command), [0]

    def counting_units(pid: int) -> str:  # the reference's number of saved units (shards and chunks)
        units[0] = max(units[0], saved_lines(done))
        return phase_of(pid)

    timeline = watch(command, counting_units, stderr)
    timeline["units"] = (0, units[0])
    reference = root / "reference"
    os.replace(out, reference)
    return Case(command, reference, timeline, phase_of, stderr, root)


def test_audit_killed_at_random_points_reruns_to_the_same_bytes(audit_case):
    case, rng = audit_case, random.Random(SEED + 2)
    done = _progress_file(case.command)
    units = case.timeline["units"][1]
    write = case.window("writing, map")
    points = [KillPoint("start-up, planning", rng.uniform(0.05, case.window("counting")[0]))]
    for quarter in range(4):  # after a random number of saved shards in each quarter of them
        saved = rng.randint(quarter * units // 4 + 1, max(quarter * units // 4 + 1, (quarter + 1) * units // 4 - 1))
        points.append(KillPoint("counting", rng.uniform(0.0, 0.2), trigger=lambda pid, n=saved: saved_lines(done) >= n))
    points += [KillPoint("writing, map", rng.uniform(0.0, 0.9 * (write[1] - write[0])),
                         trigger=lambda pid: bool(case.command.leftovers())) for _ in range(3)]
    kills = []
    for point in points:
        kill = case.kill(point)
        kills.append(kill)
        _check_after_kill(case, kill)
        saved = saved_lines(done)
        rerun = _rerun_and_compare(case)
        if saved:  # every shard saved before the kill is reused, none counted twice
            assert f"resumed: {saved} shard(s)" in rerun.stdout, rerun.stdout
        assert not done.parent.exists(), "the progress is removed once the audit folder is written"
    hit = _report("audit-data", case, kills)
    assert {"start-up, planning", "counting", "writing, map"} <= hit, hit


# -- a disk that fills during the output write ----------------------------------------------------
def _assert_failed_cleanly(command: Command, done: subprocess.CompletedProcess[str], before: dict[str, bytes]) -> None:
    assert_one_line_error(done)
    assert "could not write" in done.stderr and "the previous folder is unchanged" in done.stderr, done.stderr
    assert snapshot(command.output) == before, "the previous output folder changed"
    assert command.leftovers() == [], "a failed write must not leave its partial folder"


def _previous_folder(case: Case, output: Path) -> tuple[Command, dict[str, bytes]]:
    command = _with_output(case.command, output)
    shutil.copytree(case.reference, output)
    return command, snapshot(output)


def _quiet(command: Command) -> Command:
    return command if "--quiet" in command.args or command.args[0] == "rescore" else \
        replace(command, args=(*command.args, "--quiet"))


@pytest.fixture
def tmpfs(tmp_path) -> Callable[[int], Path]:
    """mount(size_bytes) -> a fresh tmpfs of that size (skips where mounting is not allowed)."""
    mounts: list[Path] = []

    def mount(size_bytes: int) -> Path:
        target = tmp_path / f"tmpfs{len(mounts)}"
        target.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(target)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}); "
                        "the file-size-limit variant covers the full disk")
        mounts.append(target)
        return target

    yield mount
    for target in mounts:
        subprocess.run(["umount", "-l", str(target)], check=False)


def _pages(folder: Path) -> int:
    return sum(-(-p.stat().st_size // 4096) for p in folder.rglob("*") if p.is_file())


# name -> (limit from the start or once the process shows `when`, in bytes), chosen below every file
# written before the output (the request cache's WAL index is 32 KiB; the audit's progress file)
_LIMITS: dict[str, tuple[int, Callable[[Command], Callable[[int], bool]] | None]] = {
    "run": (8 * 1024, lambda command: lambda pid: any(n.endswith("requests.sqlite") for n in open_files(pid))),
    "rescore": (1024 * 1024, None),
    "audit": (64 * 1024, lambda command: lambda pid: bool(command.leftovers())),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["run", "rescore", "audit"])
def test_a_file_size_limit_during_the_write_keeps_the_previous_folder(name, request, tmp_path):
    case: Case = request.getfixturevalue(f"{name}_case")
    if name == "run":
        _restore_cache(Path(case.command.env["GLOBALIGN_CACHE_DIR"]), case.root / "full-cache")
    command, before = _previous_folder(case, tmp_path / "out")
    limit, when = _LIMITS[name]
    done = run_with_file_limit(_quiet(command), limit, when(command) if when else None)
    _assert_failed_cleanly(command, done, before)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["run", "rescore", "audit"])
def test_a_full_tmpfs_during_the_write_keeps_the_previous_folder(name, request, tmpfs):
    case: Case = request.getfixturevalue(f"{name}_case")
    if name == "run":
        _restore_cache(Path(case.command.env["GLOBALIGN_CACHE_DIR"]), case.root / "full-cache")
    pages = _pages(case.reference)
    # room for the previous folder, half of a new one, and the audit's progress file beside them
    disk = tmpfs(4096 * (pages + pages // 2 + (64 if name == "audit" else 0)))
    command, before = _previous_folder(case, disk / "out")
    done = subprocess.run(_quiet(command).argv, env=command.env, capture_output=True, text=True, timeout=600,
                          check=False)
    _assert_failed_cleanly(command, done, before)
