"""A missing evaluation data folder skips the tests that need it on a developer's machine, but fails them in
CI (CI=true): a CI run without ../shared/data must not pass green on skipped tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DATA_DIR_ENV, require_data, shared_data_dir

HERE = Path(__file__).resolve()


def test_the_data_dir_fixture_gives_a_folder(data_dir: Path) -> None:
    assert data_dir.is_dir()  # the probe the subprocess runs below


def _run_probe(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env[DATA_DIR_ENV] = str(tmp_path / "no-such-data")
    if ci is not None:
        env["CI"] = ci
    probe = f"{HERE}::test_the_data_dir_fixture_gives_a_folder"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", probe],
                          check=False, cwd=HERE.parents[1], env=env, capture_output=True, text=True, timeout=300)


def test_missing_data_fails_the_run_in_ci(tmp_path: Path) -> None:
    result = _run_probe(tmp_path, "true")
    assert result.returncode == 1, result.stdout
    assert "1 error" in result.stdout
    assert f"evaluation data not found at {tmp_path / 'no-such-data'}; CI=true needs it" in result.stdout


def test_missing_data_skips_outside_ci(tmp_path: Path) -> None:
    result = _run_probe(tmp_path, None)
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout and "evaluation data not found" in result.stdout


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), ("1", pytest.fail.Exception),
                                             ("", pytest.skip.Exception), ("false", pytest.skip.Exception)])
def test_require_data_by_ci_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ci: str, outcome) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome):
        require_data(tmp_path / "missing")
    assert require_data(tmp_path) == tmp_path  # a folder that exists is returned in CI or not


def test_the_data_folder_is_found_from_a_deeper_copy_of_the_tests(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    (tmp_path / "shared" / "data").mkdir(parents=True)
    conftest = tmp_path / "repo" / "mutants" / "tests" / "conftest.py"  # mutmut runs tests from such a copy
    assert shared_data_dir(conftest) == tmp_path / "shared" / "data"
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "elsewhere"))
    assert shared_data_dir(conftest) == tmp_path / "elsewhere"
