"""A user error at the CLI is one line on stderr (`globalign: error: ...`), exit code 2, no traceback
(unless --debug), and nothing half-written in the output folder.

Every error here happens before any model weights load: config validation, task construction (which
reads the data), the output-folder check, and model-name resolution.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import globalign.pipeline
from globalign.cli import EXIT_USER_ERROR, main
from globalign.errors import GlobalignError

GOQA_FILE = Path("globalopinionsqa") / "global_opinions_best_estimate.jsonl"
ROWS = [
    {
        "question": f"Question {i}?",
        "options": ["Yes", "No", "DK/Refused"],
        "selections": {"United States": [0.5, 0.4, 0.1], "France": [0.3, 0.6, 0.1], "Germany": [0.2, 0.7, 0.1]},
        "source": "GAS",
    }
    for i in range(4)
]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under folder (relative path -> bytes): equal snapshots mean an untouched folder."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith("globalign: error: "), lines[0]
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLOBALIGN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GLOBALIGN_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def small_data(tmp_path: Path) -> Path:
    """A small valid GlobalOpinionsQA data folder (same format as ../shared/data)."""
    path = tmp_path / "data"
    (path / GOQA_FILE).parent.mkdir(parents=True)
    (path / GOQA_FILE).write_text("".join(json.dumps(r) + "\n" for r in ROWS), "utf-8")
    return path


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "runs" / "run1"


def cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_flags(data: Path, out: Path, *, model: str = "gemma-3-270m", task: str = "global_opinions") -> list:
    return ["run", "--model", model, "--task", task, "--data-dir", data, "--output", out]


# ---------------------------------------------------------------- unknown names, with suggestions
def test_unknown_task_suggests_the_near_miss(capsys, small_data, out):
    code, _, err = cli(capsys, *run_flags(small_data, out, task="global_opinion"))
    assert code == EXIT_USER_ERROR
    assert one_error_line(err) == "globalign: error: unknown task 'global_opinion'; did you mean 'global_opinions'?"
    assert not out.exists()


def test_unknown_model_suggests_the_near_miss_and_writes_nothing(capsys, small_data, out):
    code, _, err = cli(capsys, *run_flags(small_data, out, model="smolm2-135m-instruct"))
    assert code == EXIT_USER_ERROR
    assert "unknown model 'smolm2-135m-instruct'; did you mean 'smollm2-135m-instruct'?" in one_error_line(err)
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_unknown_short_model_name_names_the_packaged_models(capsys, small_data, out):
    code, _, err = cli(capsys, *run_flags(small_data, out, model="smolm2"))
    assert code == EXIT_USER_ERROR
    line = one_error_line(err)
    assert "unknown model 'smolm2'" in line
    assert "smollm2-135m-instruct" in line


def test_unknown_model_leaves_an_existing_run_folder_unchanged(capsys, small_data, out):
    # The model name is resolved only after the data is read; by then nothing may have been written.
    out.mkdir(parents=True)
    (out / "manifest.json").write_text('{"globalign_version": "0.1.0"}\n', "utf-8")
    (out / "metrics.csv").write_text("task,model,group,metric,value,ci_low,ci_high,n\n", "utf-8")
    before = snapshot(out)
    code, _, err = cli(capsys, *run_flags(small_data, out, model="smolm2-135m-instruct"))
    assert code == EXIT_USER_ERROR
    assert "unknown model" in one_error_line(err)
    assert snapshot(out) == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["run1"]  # no .partial or .old sibling


def test_unknown_country_label_suggests_the_near_miss(capsys, small_data, out):
    code, _, err = cli(capsys, *run_flags(small_data, out), "--countries", "Frnace")
    assert code == EXIT_USER_ERROR
    assert "unknown country label or preset 'Frnace'; did you mean 'France'?" in one_error_line(err)
    assert not out.exists()


def test_run_without_model_or_config_says_what_to_give(capsys, out):
    code, _, err = cli(capsys, "run", "--task", "global_opinions", "--output", out)
    assert code == EXIT_USER_ERROR
    assert "give a config file or at least one --model" in one_error_line(err)


# ---------------------------------------------------------------- config files
BASE_CONFIG = {
    "models": ["gemma-3-270m", "smollm2-135m-instruct"],
    "tasks": ["global_opinions"],
    "output": "runs/run1",
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "blue"}, "colour: unknown field"),
        ({"models": "gemma-3-270m"}, "models: must be a list of models"),
        ({"limit": 0}, "limit: must be an integer >= 1, got 0"),
        ({"prompt_format": "chatty"}, "prompt_format: must be one of raw, chat, got 'chatty'"),
        ({"compare": [["gemma-3-270m", "llama-7b"]]}, "compare[0]: must be [model_a, model_b] naming listed models"),
        ({"compare": "gemma-3-270m"}, "compare: must be a list of [model_a, model_b] pairs"),
        ({"stats": {"n_boot": 100, "alpha": 0.05}}, "stats: may hold n_boot, n_perm and seed"),
        ({"models": [{"name": "gemma-3-270m", "dtype": "float64"}]}, "models[0].dtype: must be one of"),
        ({"tasks": ["global_opinions", "global_opinions"]}, "tasks: a task is listed twice"),
        ({"cache": "no"}, "cache: must be true or false, got 'no'"),
        ({"data_dir": 5}, "data_dir: must be a folder path, got 5"),
    ],
)
def test_bad_config_field_names_file_and_field(capsys, tmp_path, change, message):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({**BASE_CONFIG, **change}), "utf-8")
    code, _, err = cli(capsys, "run", config)
    assert code == EXIT_USER_ERROR
    line = one_error_line(err)
    assert line.startswith(f"globalign: error: {config}: ")
    assert message in line
    assert not (tmp_path / "runs").exists()


def test_bad_flag_value_is_a_config_error_from_the_command_line(capsys, small_data, out):
    code, _, err = cli(capsys, *run_flags(small_data, out), "--limit", "0")
    assert code == EXIT_USER_ERROR
    assert one_error_line(err) == "globalign: error: command line: limit: must be an integer >= 1, got 0"


def test_invalid_yaml_names_the_line(capsys, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("models: [gemma-3-270m]\ntasks: [global_opinions]\noutput: out: bad\n", "utf-8")
    code, _, err = cli(capsys, "run", config)
    assert code == EXIT_USER_ERROR
    assert one_error_line(err).startswith(f"globalign: error: {config}:3: invalid YAML")


def test_missing_config_file(capsys, tmp_path):
    code, _, err = cli(capsys, "run", tmp_path / "nope.yaml")
    assert code == EXIT_USER_ERROR
    assert one_error_line(err) == f"globalign: error: {tmp_path / 'nope.yaml'}: no such config file"


def test_config_path_that_is_a_folder(capsys, tmp_path):
    code, _, err = cli(capsys, "run", tmp_path)
    assert code == EXIT_USER_ERROR
    assert f"{tmp_path}: cannot read the config file" in one_error_line(err)


def test_non_utf8_config(capsys, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_bytes("models: [caf\u00e9]\n".encode("latin-1"))
    code, _, err = cli(capsys, "run", config)
    assert code == EXIT_USER_ERROR
    assert one_error_line(err) == f"globalign: error: {config}: not UTF-8 text"


def test_config_that_is_not_a_mapping_is_refused_even_with_flag_overrides(capsys, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("- gemma-3-270m\n- global_opinions\n", "utf-8")
    code, _, err = cli(capsys, "run", config, "--model", "gemma-3-270m")
    assert code == EXIT_USER_ERROR
    assert "must be a mapping of fields" in one_error_line(err)


@pytest.mark.parametrize(
    ("change", "flags", "message"),
    [
        ({"stats": [100]}, ["--n-boot", "7"], "stats: may hold n_boot, n_perm and seed"),
        ({"models": ["gemma-3-270m", 5]}, ["--dtype", "float16"], "models[1]: must be a model id or a mapping"),
        ({"tasks": [5]}, ["--countries", "study7"], "tasks[0]: must be a task name or a mapping"),
    ],
)
def test_flag_overrides_on_malformed_config_entries_are_config_errors(capsys, tmp_path, change, flags, message):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({**BASE_CONFIG, **change}), "utf-8")
    code, _, err = cli(capsys, "run", config, *flags)
    assert code == EXIT_USER_ERROR
    assert message in one_error_line(err)


def test_flags_override_the_config_file(capsys, monkeypatch, tmp_path):
    seen = []

    def stop_before_work(config, **kwargs):
        seen.append(config)
        raise GlobalignError("stopped before work")

    monkeypatch.setattr(globalign.pipeline, "run", stop_before_work)
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(BASE_CONFIG) + "stats:\n", "utf-8")  # an empty `stats:` is null
    code, _, err = cli(capsys, "run", config, "--n-boot", "7", "--dtype", "bfloat16", "--countries", "study7",
                       "--limit", "5", "--no-cache")
    assert code == EXIT_USER_ERROR
    assert one_error_line(err) == "globalign: error: stopped before work"
    (parsed,) = seen
    assert parsed.stats.n_boot == 7
    assert [m.dtype for m in parsed.models] == ["bfloat16", "bfloat16"]
    assert parsed.tasks[0].options == {"countries": "study7"}
    assert (parsed.limit, parsed.cache) == (5, False)


def test_interrupt_says_how_to_resume(capsys, monkeypatch, small_data, out):
    def interrupted(config, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(globalign.pipeline, "run", interrupted)
    code, _, err = cli(capsys, *run_flags(small_data, out))
    assert code == 130
    assert err.strip().splitlines() == [
        "globalign: interrupted; rerun the same command to resume where it stopped"
    ]


# ---------------------------------------------------------------- data
def test_malformed_data_row_names_file_and_line(capsys, small_data, out):
    path = small_data / GOQA_FILE
    lines = path.read_text("utf-8").splitlines()
    lines[2] = '{"question": "Broken?", "options": ['  # line 3
    path.write_text("\n".join(lines) + "\n", "utf-8")
    code, _, err = cli(capsys, *run_flags(small_data, out))
    assert code == EXIT_USER_ERROR
    assert f"{path}:3: malformed JSON" in one_error_line(err)
    assert not out.exists()


def test_missing_data_says_where_it_looked(capsys, tmp_path, out):
    empty = tmp_path / "empty-data"
    empty.mkdir()
    code, _, err = cli(capsys, *run_flags(empty, out))
    assert code == EXIT_USER_ERROR
    line = one_error_line(err)
    assert "GlobalOpinionsQA not found" in line
    assert str(empty) in line
    assert not out.exists()


def test_missing_data_folder(capsys, tmp_path, out):
    code, _, err = cli(capsys, *run_flags(tmp_path / "no-such-data", out))
    assert code == EXIT_USER_ERROR
    assert one_error_line(err) == f"globalign: error: --data-dir {tmp_path / 'no-such-data'}: no such folder"


# ---------------------------------------------------------------- output folder
def test_foreign_output_folder_is_refused_before_any_work_and_left_untouched(capsys, tmp_path, out):
    out.mkdir(parents=True)
    (out / "thesis.tex").write_text("\\documentclass{article}\n", "utf-8")
    before = snapshot(out)
    # The data folder is missing too: refusing the output first proves no data was read.
    code, _, err = cli(capsys, *run_flags(tmp_path / "no-such-data", out))
    assert code == EXIT_USER_ERROR
    assert f"output {out} exists and is not a globalign run folder" in one_error_line(err)
    assert snapshot(out) == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["run1"]


def test_output_path_that_is_a_file_is_refused(capsys, small_data, tmp_path):
    target = tmp_path / "results.csv"
    target.write_text("keep me\n", "utf-8")
    code, _, err = cli(capsys, *run_flags(small_data, target))
    assert code == EXIT_USER_ERROR
    assert "exists and is not a folder" in one_error_line(err)
    assert target.read_text("utf-8") == "keep me\n"


# ---------------------------------------------------------------- --debug
@pytest.mark.parametrize("where", ["before the command", "after the command"])
def test_debug_shows_the_traceback_then_the_error_line(capsys, small_data, out, where):
    flags = run_flags(small_data, out, task="global_opinion")
    argv = ["--debug", *flags] if where == "before the command" else [*flags, "--debug"]
    code, _, err = cli(capsys, *argv)
    assert code == EXIT_USER_ERROR
    assert "Traceback (most recent call last)" in err
    assert "UnknownNameError" in err
    assert err.strip().splitlines()[-1].startswith("globalign: error: unknown task 'global_opinion'")


# ---------------------------------------------------------------- listings and help
def test_tasks_lists_each_task_with_its_options(capsys):
    code, out, _ = cli(capsys, "tasks")
    assert code == 0
    lines = out.splitlines()
    assert "global_opinions" in lines
    assert any(line.strip().startswith("countries:") for line in lines)
    assert any(line.strip().startswith("study_parser:") for line in lines)


def test_models_lists_the_packaged_models_as_base_or_aligned(capsys):
    code, out, _ = cli(capsys, "models")
    assert code == 0
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines() if line and not line.startswith("Also")}
    assert rows == {"smollm2-135m-instruct": "aligned", "gemma-3-270m": "base"}
    assert "a local Hugging Face folder, a .gguf file, or a hub id" in out


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("run", "demo", "models", "tasks", "--debug"):
        assert command in out


def test_run_help_lists_the_run_flags(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--model", "--task", "--limit", "--seed", "--prompt-format", "--countries", "--output",
                 "--data-dir", "--dtype", "--no-cache", "--n-boot", "--debug"):
        assert flag in out


# ---------------------------------------------------------------- the real process
def test_real_process_prints_one_line_and_exits_2(tmp_path, small_data, out):
    env = {**os.environ, "GLOBALIGN_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("GLOBALIGN_DATA_DIR", None)
    result = subprocess.run(
        [sys.executable, "-m", "globalign.cli", *map(str, run_flags(small_data, out, task="global_opinion"))],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "globalign: error: unknown task 'global_opinion'; did you mean 'global_opinions'?"
    ]
    assert not out.exists()
