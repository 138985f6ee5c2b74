"""Helpers of the fault-injection suite (tests/test_fault_injection.py): run a CLI command to its
end, kill -9 it at a chosen point and say which phase it was in, compare output folders byte for
byte, and run it under a file-size limit (a disk that fills during the write).

A kill point is a trigger (a condition polled on the live process, or none: the start) plus a delay
after it. The phase a kill hit is read from what the process shows at that moment (/proc: libraries
mapped, files open; the request cache; the audit's progress file; a `.NAME.partial-*` folder)."""

from __future__ import annotations

import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

POLL_S = 0.01
TIMEOUT_S = 600

# Manifest fields that differ between two runs of one command by nature: when and how it ran, how
# long it took, how much was computed vs resumed. Everything else must be equal. ("*": every key.)
VOLATILE_MANIFEST_FIELDS = (
    ("created",),
    ("command",),  # sys.argv: the same words, but `-m globalign.cli` shows as the module's path
    ("seconds",),
    ("engine", "*", "computed"),
    ("engine", "*", "from_cache"),
    ("peak_rss_mb",),
    ("messages_per_second",),
    ("shards", "resumed"),
    ("units", "resumed"),  # a run's work units finished by an earlier, killed run
    ("cpu", "load_average_1min"),  # how busy the machine was at start-up
)


@dataclass(frozen=True)
class Command:
    """One CLI invocation: its arguments after `globalign`, the environment, and its output folder."""

    args: tuple[str, ...]
    output: Path
    # No busy-machine note on stderr, whatever the load and whenever the command is made (a fixture made inside a
    # test, through request.getfixturevalue, sees the environment after conftest's idle_machine removed it).
    env: dict[str, str] = field(default_factory=lambda: {**os.environ, "GLOBALIGN_BUSY_WARNING": "0"})

    @property
    def argv(self) -> list[str]:
        return [sys.executable, "-m", "globalign.cli", *self.args]

    def output_id(self) -> int | None:
        """The output folder's inode: it changes when a new folder is swapped in."""
        try:
            return self.output.stat().st_ino
        except OSError:
            return None

    def leftovers(self) -> list[Path]:
        """Hidden siblings a write leaves when it is killed: `.NAME.partial-*` and `.NAME.old-*`."""
        parent, name = self.output.parent, self.output.name
        return sorted([*parent.glob(f".{name}.partial-*"), *parent.glob(f".{name}.old-*")])


def run_to_end(command: Command) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command.argv, env=command.env, capture_output=True, text=True, timeout=TIMEOUT_S,
                          check=False)
    assert done.returncode == 0, f"{' '.join(command.args)} failed:\n{done.stderr[-3000:]}"
    return done


# -- what a live process shows ----------------------------------------------------------------------
def mapped(pid: int, library: str) -> bool:
    try:
        return library in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def open_files(pid: int) -> list[str]:
    names = []
    try:
        for fd in os.scandir(f"/proc/{pid}/fd"):
            try:
                names.append(os.readlink(fd.path))
            except OSError:
                continue
    except OSError:
        pass
    return names


def cached_answers(cache: Path) -> int:
    path = cache / "requests.sqlite"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
    except sqlite3.OperationalError:  # table not created yet
        return 0


def saved_lines(path: Path) -> int:
    """Complete lines of a progress file (a torn last line does not count)."""
    try:
        return path.read_bytes().count(b"\n")
    except OSError:
        return 0


def _group(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields_after_name = stat.rsplit(")", 1)[1].split()
        if fields_after_name[0] != "Z" and int(fields_after_name[2]) == pgid:
            members.append(int(entry.name))
    return members


def _phase(command: Command, output_before: int | None, phase_of: Callable[[int], str], pid: int) -> str:
    """The command's own phase, or "after the write" once its new output folder is in place."""
    if not command.leftovers() and command.output_id() not in (None, output_before):
        return "after the write"
    return phase_of(pid)


# -- kill -9 at a point -----------------------------------------------------------------------------
@dataclass(frozen=True)
class KillPoint:
    aim: str  # the phase this point is meant to hit
    delay_s: float  # after the trigger (or after the start when there is none)
    trigger: Callable[[int], bool] | None = None  # polled with the process id


@dataclass(frozen=True)
class Kill:
    point: KillPoint
    phase: str  # what the process showed when it was killed
    at_s: float  # seconds after the start
    orphans: int  # processes of its group still alive 10 s after the kill (then ended by the test)


def kill_at(command: Command, point: KillPoint, phase_of: Callable[[int], str], stderr: Path) -> Kill | None:
    """Start `command`, wait for the point's trigger and delay, note the phase, SIGKILL the process
    (only the main one, as `kill -9 PID` does) and wait for its workers to go. None when the command
    ended before the point (a busy machine shifts the phases): it completed, nothing was killed."""
    before = command.output_id()
    with stderr.open("wb") as err:
        process = subprocess.Popen(command.argv, env=command.env, stdout=subprocess.DEVNULL, stderr=err,
                                   start_new_session=True)
    started = time.monotonic()
    deadline = started + TIMEOUT_S
    try:
        if point.trigger is not None:
            while process.poll() is None and not point.trigger(process.pid) and time.monotonic() < deadline:
                time.sleep(POLL_S)
        until = time.monotonic() + point.delay_s
        while process.poll() is None and time.monotonic() < until:
            time.sleep(min(POLL_S, max(0.0, until - time.monotonic())))
        if process.poll() is not None:
            assert process.returncode == 0, stderr.read_text(errors="replace")[-3000:]
            return None
        phase = _phase(command, before, phase_of, process.pid)
        at = time.monotonic() - started
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    orphans = _group(process.pid)
    end = time.monotonic() + 10
    while orphans and time.monotonic() < end:
        time.sleep(0.1)
        orphans = _group(process.pid)
    for pid in orphans:  # workers the killed process started: ours to end
        os.kill(pid, signal.SIGKILL)
    return Kill(point, phase, round(at, 2), len(orphans))


def watch(command: Command, phase_of: Callable[[int], str], stderr: Path) -> dict[str, tuple[float, float]]:
    """Run `command` to its end, polling its phase: {phase: (first seen, last seen)} in seconds
    after the start, and "end"."""
    before = command.output_id()
    with stderr.open("wb") as err:
        process = subprocess.Popen(command.argv, env=command.env, stdout=subprocess.DEVNULL, stderr=err)
    started = time.monotonic()
    seen: dict[str, tuple[float, float]] = {}
    while process.poll() is None:
        phase = _phase(command, before, phase_of, process.pid)
        now = time.monotonic() - started
        seen[phase] = (seen.get(phase, (now, now))[0], now)
        time.sleep(POLL_S)
    assert process.returncode == 0, stderr.read_text(errors="replace")[-3000:]
    seen["end"] = (time.monotonic() - started,) * 2
    return seen


# -- output folders ---------------------------------------------------------------------------------
def _drop(manifest: object, path: tuple[str, ...]) -> None:
    if not isinstance(manifest, dict) or not path:
        return
    head, rest = path[0], path[1:]
    keys = list(manifest) if head == "*" else [head]
    for key in keys:
        if key not in manifest:
            continue
        if rest:
            _drop(manifest[key], rest)
        else:
            del manifest[key]


def stable_manifest(path: Path) -> dict:
    manifest = json.loads(path.read_text("utf-8"))
    for volatile in VOLATILE_MANIFEST_FIELDS:
        _drop(manifest, volatile)
    return manifest


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def assert_same_outputs(folder: Path, reference: Path) -> None:
    """Every file byte-identical to the reference's, manifest.json without its volatile fields."""
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(p.name for p in reference.iterdir()), folder
    for name in names:
        if name == "manifest.json":
            assert stable_manifest(folder / name) == stable_manifest(reference / name), folder / name
        else:
            assert (folder / name).read_bytes() == (reference / name).read_bytes(), folder / name


# -- a disk that fills during the write -------------------------------------------------------------
def run_with_file_limit(command: Command, limit_bytes: int, when: Callable[[int], bool] | None = None
                        ) -> subprocess.CompletedProcess[str]:
    """Run `command` with RLIMIT_FSIZE = limit_bytes, set on the live process (prlimit) at once or once
    `when` holds: a write past it fails with EFBIG, as on a full disk. (Python ignores SIGXFSZ from its
    start, so the write raises OSError instead of the signal ending the process.)"""
    process = subprocess.Popen(command.argv, env=command.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + TIMEOUT_S
    while when is not None and process.poll() is None and not when(process.pid) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    assert process.poll() is None, "the process ended before the limit could be set"
    resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    out, err = process.communicate(timeout=TIMEOUT_S)
    return subprocess.CompletedProcess(command.argv, process.returncode, out, err)


def assert_one_line_error(done: subprocess.CompletedProcess[str]) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("globalign: error: "), done.stderr[-3000:]
