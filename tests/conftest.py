"""Shared fixtures: the real data folder, and a private cache dir that reuses converted models."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

DATA_DIR_ENV = "GLOBALIGN_TEST_DATA"  # another evaluation data folder for the tests


HERE = Path(__file__).resolve()


def shared_data_dir(start: Path = HERE) -> Path:
    """$GLOBALIGN_TEST_DATA, else the nearest folder above `start` that holds shared/data (the checkout's
    ../shared/data; also found from a copy of the tests one level deeper, as mutmut's mutants/tests)."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV])
    for folder in start.parents:
        if (folder / "shared" / "data").is_dir():
            return folder / "shared" / "data"
    return start.parents[2] / "shared" / "data"


SHARED_DATA = shared_data_dir()


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require_data(path: Path) -> Path:
    """`path` if it is a folder. Otherwise skip the test locally, but fail it in CI (CI=true): a CI
    without the data must not pass green on skipped tests."""
    if path.is_dir():
        return path
    message = f"evaluation data not found at {path}"
    if in_ci():
        pytest.fail(f"{message}; CI=true needs it (lay shared/data beside the checkout, or set {DATA_DIR_ENV})",
                    pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return require_data(SHARED_DATA)


@pytest.fixture
def private_cache(tmp_path, monkeypatch) -> Path:
    """A fresh GLOBALIGN_CACHE_DIR (empty request cache) that links the user's converted models,
    so tests do not convert GGUF files again (that takes minutes)."""
    from globalign.paths import CACHE_DIR_ENV, cache_dir

    real = cache_dir()
    private = tmp_path / "cache"
    private.mkdir()
    for name in ("converted", "gguf"):
        (real / name).mkdir(exist_ok=True)
        os.symlink(real / name, private / name)
    monkeypatch.setenv(CACHE_DIR_ENV, str(private))
    return private


def pytest_configure(config):
    # The commands the tests start as real processes inherit this: what they print on stderr must not
    # depend on how busy the machine running the tests is (the suite itself keeps it busy).
    from globalign.threads import BUSY_WARNING_ENV

    os.environ[BUSY_WARNING_ENV] = "0"


@pytest.fixture(autouse=True)
def idle_machine(monkeypatch):
    """Runs and audits warn on stderr when the machine is busy at start-up; what a test reads on stderr
    must not depend on how busy the machine running the tests is (tests of the warning patch it back)."""
    from globalign import threads

    monkeypatch.setattr(threads, "load_average_1min", lambda: 0.0)
    monkeypatch.delenv(threads.BUSY_WARNING_ENV, raising=False)


@dataclass(frozen=True)
class DemoRun:
    output: Path
    stdout: str
    stderr: str
    returncode: int
    seconds: float


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory, data_dir) -> DemoRun:
    """`globalign demo` once per session (minutes on real models), in a private request cache that links
    the user's converted models; the demo test and the browser test both read its output."""
    from globalign.paths import CACHE_DIR_ENV, cache_dir

    base = tmp_path_factory.mktemp("demo")
    private = base / "cache"
    private.mkdir()
    real = cache_dir()
    for name in ("converted", "gguf"):
        (real / name).mkdir(exist_ok=True)
        os.symlink(real / name, private / name)
    output = base / "demo"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "globalign.cli", "demo", "--quiet", "--output", str(output),
                           "--data-dir", str(data_dir)], check=False, capture_output=True, text=True, timeout=900,
                          env={**os.environ, CACHE_DIR_ENV: str(private)})
    return DemoRun(output, done.stdout, done.stderr, done.returncode, time.perf_counter() - started)
