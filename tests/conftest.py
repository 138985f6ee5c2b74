"""Shared fixtures: the real data folder, and a private cache dir that reuses converted models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"evaluation data not found at {SHARED_DATA}")
    return SHARED_DATA


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


@pytest.fixture(autouse=True)
def idle_machine(monkeypatch):
    """Runs and audits warn on stderr when the machine is busy at start-up; what a test reads on stderr
    must not depend on how busy the machine running the tests is (tests of the warning patch it back)."""
    from globalign import threads

    monkeypatch.setattr(threads, "load_average_1min", lambda: 0.0)
