"""A run killed with SIGKILL midway resumes from the request cache and ends identical to a clean run."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
# More prompts than one scoring call takes (64 for the hf backend): the kill lands after the first
# call's commit, while the second is computing.
LIMIT = 100


def _command(output: Path, data_dir: Path) -> list[str]:
    return [sys.executable, "-m", "globalign.cli", "run", "--model", "smollm2-135m-instruct",
            "--task", "global_opinions", "--limit", str(LIMIT), "--n-boot", "300", "--quiet",
            "--data-dir", str(data_dir), "--output", str(output)]


def _cached_answers(cache: Path) -> int:
    path = cache / "requests.sqlite"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
    except sqlite3.OperationalError:  # table not created yet
        return 0


def _run_to_end(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]


def test_killed_run_resumes_and_matches_uninterrupted_run(private_cache, data_dir, tmp_path):
    env = dict(os.environ)
    output = tmp_path / "resumed"
    process = subprocess.Popen(_command(output, data_dir), env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while _cached_answers(private_cache) < 40 and process.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert process.poll() is None, "the run finished before it could be killed; raise LIMIT"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    partial = _cached_answers(private_cache)
    assert partial >= 40
    assert not output.exists(), "a killed run must not leave an output folder"
    assert not list(tmp_path.glob(".resumed.partial-*"))

    _run_to_end(_command(output, data_dir), env)
    import json

    manifest = json.loads((output / "manifest.json").read_text())
    counts = manifest["engine"]["smollm2-135m-instruct"]
    assert counts["from_cache"] == partial  # everything computed before the kill was reused
    assert counts["computed"] > 0 and counts["computed"] + counts["from_cache"] == _cached_answers(private_cache)

    # The same command on an empty cache, never interrupted.
    clean_cache = tmp_path / "clean-cache"
    clean_cache.mkdir()
    for name in ("converted", "gguf"):
        os.symlink(private_cache / name, clean_cache / name)
    clean = tmp_path / "clean"
    _run_to_end(_command(clean, data_dir), {**env, "GLOBALIGN_CACHE_DIR": str(clean_cache)})
    assert (output / "samples.jsonl").read_text() == (clean / "samples.jsonl").read_text()
    assert (output / "metrics.csv").read_text() == (clean / "metrics.csv").read_text()
