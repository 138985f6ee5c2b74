"""Bad inputs found by trying them as a new user would: each gets one line that names what is wrong,
where, and the fix (exit 2), before any model loads; and wrong data is never accepted silently.

Classes: misleading messages (config fields, data files, model paths, data folders, YAML), silent
acceptance (survey distributions of zeros, countries a probe does not have), late failures (data a
task reads after the models ran), and numbers out of range in predictions.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
import yaml

import globalign.models.resolve
import globalign.workers.model_units
from globalign.cli import main
from globalign.data.reward_probe import COUNTRY_SET_181, SUBDIR, WHERE_FROM_REFERENCE
from globalign.tasks.base import TaskSettings
from globalign.tasks.global_opinions import GlobalOpinionsTask

GOQA = Path("globalopinionsqa") / "global_opinions_best_estimate.jsonl"


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("globalign: error: "), err
    assert "Traceback" not in err
    return lines[0]


def error_of(capsys, *argv) -> str:
    code = main([str(a) for a in argv])
    line = one_error_line(capsys.readouterr().err)
    assert code == 2
    return line


@pytest.fixture(autouse=True)
def no_model_loads(tmp_path, monkeypatch):
    """Every error here must come before a model loads."""
    monkeypatch.setenv("GLOBALIGN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GLOBALIGN_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(globalign.workers.model_units, "load_model", lambda *a, **k: pytest.fail("a model loaded"))
    monkeypatch.setattr(globalign.models.resolve, "converted_folder", lambda *a, **k: pytest.fail("a model converted"))
    monkeypatch.setattr(globalign.workers.model_units, "reward_model_loader", lambda *a, **k: pytest.fail("a model loaded"))


def goqa_folder(tmp_path: Path, rows: list[dict]) -> Path:
    folder = tmp_path / "data"
    (folder / GOQA).parent.mkdir(parents=True, exist_ok=True)
    (folder / GOQA).write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    return folder


def goqa_row(i: int, selections: dict) -> dict:
    return {"question": f"Question {i}?", "options": ["Yes", "No"], "selections": selections, "source": "GAS"}


# ---------------------------------------------------------------- misleading messages
CONFIG_CASES = {
    "models-as-text": ({"models": "gemma-3-270m", "tasks": ["global_opinions"]},
                       ["models", "must be a list of models", "models: [gemma-3-270m]"]),
    "tasks-as-text": ({"models": ["gemma-3-270m"], "tasks": "global_opinions"},
                      ["tasks", "must be a list of tasks", "tasks: [global_opinions]"]),
    "models-as-number": ({"models": 3, "tasks": ["global_opinions"]}, ["models", "must be a list of models, got int"]),
    "models-as-mapping": ({"models": {"name": "gemma-3-270m"}, "tasks": ["md3"]}, ["models", "must be a list"]),
    "models-empty": ({"models": [], "tasks": ["md3"]}, ["models", "give at least one model"]),
    "data-dir-missing": ({"models": ["gemma-3-270m"], "tasks": ["md3"], "data_dir": "nowhere"},
                         ["config.yaml: data_dir", "nowhere: no such folder"]),
}


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_config_errors_name_the_field_the_file_and_the_fix(capsys, tmp_path, case):
    raw, expected = CONFIG_CASES[case]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({**raw, "output": "out"}), "utf-8")
    line = error_of(capsys, "run", tmp_path / "config.yaml")
    for part in expected:
        assert part in line, line
    assert "--data-dir" not in line


def test_a_missing_data_dir_flag_is_named_as_the_flag_even_with_a_config(capsys, tmp_path):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"models": ["gemma-3-270m"], "tasks": ["md3"],
                                                          "output": "out"}), "utf-8")
    line = error_of(capsys, "run", tmp_path / "config.yaml", "--data-dir", tmp_path / "nowhere")
    assert "--data-dir" in line and "config.yaml" not in line


def test_demo_names_a_missing_data_dir_as_its_flag(capsys, tmp_path):
    assert "--data-dir" in error_of(capsys, "demo", "--data-dir", tmp_path / "nowhere", "--output", tmp_path / "d")


@pytest.mark.parametrize("name", ["./no-such-model", "/no/such/model", "~/no-such-model", "models/org/no-such",
                                  "../no-such-model"])
def test_a_missing_model_path_says_no_such_file_not_unknown_model(capsys, tmp_path, name):
    line = error_of(capsys, "run", "--model", name, "--task", "global_opinions", "--data-dir",
                    goqa_folder(tmp_path, [goqa_row(0, {"United States": [1, 0]})]), "--output", tmp_path / "o")
    assert f"model '{name}': no such file or folder" in line
    assert "unknown model" not in line


def test_a_model_path_to_a_plain_file_says_what_to_give(capsys, tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"\0" * 16)
    line = error_of(capsys, "run", "--model", tmp_path / "weights.bin", "--task", "global_opinions", "--data-dir",
                    goqa_folder(tmp_path, [goqa_row(0, {"United States": [1, 0]})]), "--output", tmp_path / "o")
    assert "not a .gguf" in line and "config.json" in line


def test_an_unknown_alias_still_suggests_the_packaged_model(capsys, tmp_path):
    line = error_of(capsys, "run", "--model", "smollm2", "--task", "global_opinions", "--data-dir",
                    goqa_folder(tmp_path, [goqa_row(0, {"United States": [1, 0]})]), "--output", tmp_path / "o")
    assert "unknown model 'smollm2'" in line and "smollm2-135m-instruct" in line


def test_an_empty_global_opinions_file_names_the_file_not_the_limit(capsys, tmp_path):
    data = goqa_folder(tmp_path, [])
    line = error_of(capsys, "run", "--model", "gemma-3-270m", "--task", "global_opinions", "--data-dir", data,
                    "--output", tmp_path / "o")
    assert str(data / GOQA) in line and "no questions" in line and "--limit" not in line


@pytest.mark.parametrize(("text", "line_no"), [("skip: [a\nspelling: {}\n", 2), ("skip:\n  - a\n - b\n", 3),
                                               ("spelling: {a: b\n", 2), ("\tskip: []\n", 1)])
def test_a_yaml_error_in_an_md3_overrides_file_is_one_line_with_its_line(capsys, tmp_path, data_dir, text, line_no):
    overrides = tmp_path / "overrides.yaml"
    overrides.write_text(text, "utf-8")
    line = error_of(capsys, "items", "md3", "--source", "raw", "--overrides", overrides, "--data-dir", data_dir)
    assert f"{overrides}:" in line and "invalid YAML" in line


def test_a_json_error_in_an_md3_overrides_file_names_its_line(capsys, tmp_path, data_dir):
    overrides = tmp_path / "overrides.json"
    overrides.write_text('{"skip": [\n  "a",\n]}\n', "utf-8")
    line = error_of(capsys, "items", "md3", "--source", "raw", "--overrides", overrides, "--data-dir", data_dir)
    assert f"{overrides}:3: not valid JSON" in line


# ---------------------------------------------------------------- silent acceptance
def _task(data: Path, **options) -> GlobalOpinionsTask:
    return GlobalOpinionsTask(TaskSettings(data_dir=data, options=options))


def test_survey_distributions_of_zeros_are_counted_said_and_recorded(tmp_path):
    rows = [goqa_row(0, {"United States": [0, 0], "France": [0.5, 0.5]}),
            goqa_row(1, {"United States": [1, 0], "France": [0.0, 0.0], "Chad": [0, 0]}),
            goqa_row(2, {"United States": [0.2, 0.8]})]
    task = _task(goqa_folder(tmp_path, rows))
    manifest = task.manifest()["excluded"]
    assert manifest["zero_sum_survey_distributions"] == 3
    assert manifest["pairs"] == [{"question_index": 0, "country": "United States"},
                                 {"question_index": 1, "country": "France"},
                                 {"question_index": 1, "country": "Chad"}]
    (note,) = task.notes()
    assert "3 (question, country) survey distributions sum to zero" in note and "2 question(s)" in note


def test_a_clean_file_has_no_exclusion_note(tmp_path):
    task = _task(goqa_folder(tmp_path, [goqa_row(0, {"United States": [0.4, 0.6]})]))
    assert task.notes() == [] and task.manifest()["excluded"]["zero_sum_survey_distributions"] == 0


@pytest.mark.parametrize("countries", [None, "United States,France"])
def test_only_zero_distributions_is_an_error_not_an_empty_table(capsys, tmp_path, countries):
    rows = [goqa_row(i, {"United States": [0, 0], "France": [0.0, 0.0]}) for i in range(3)]
    argv = ["run", "--model", "gemma-3-270m", "--task", "global_opinions", "--data-dir", goqa_folder(tmp_path, rows),
            "--output", tmp_path / "o"]
    if countries:
        argv += ["--countries", countries]
    line = error_of(capsys, *argv)
    assert "sums to zero" in line and not (tmp_path / "o").exists()


def test_the_real_data_counts_its_85_zero_distributions(data_dir):
    task = _task(data_dir)
    assert task.manifest()["excluded"]["zero_sum_survey_distributions"] == 85  # data/README.md, section 3


def _where_from_file(tmp_path: Path, data_dir: Path, rename: dict[str, str]) -> Path:
    text = (data_dir / SUBDIR / WHERE_FROM_REFERENCE).read_text("utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    for row in rows:
        row["country"] = rename.get(row["country"], row["country"])
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    path = tmp_path / "rewards.csv"
    path.write_text(out.getvalue(), "utf-8")
    return path


@pytest.mark.parametrize(("rename", "suggestion"), [({"France": "Frnace"}, "France"),
                                                    ({"Chad": "Atlantis"}, None),
                                                    ({"United States of America": "USA"}, None)])
def test_rescore_where_from_refuses_a_country_the_probe_does_not_have(capsys, tmp_path, data_dir, rename,
                                                                      suggestion):
    predictions = _where_from_file(tmp_path, data_dir, rename)
    line = error_of(capsys, "rescore", "--task", "where_from", "--predictions", predictions, "--data-dir", data_dir,
                    "--output", tmp_path / "o")
    (bad,) = rename.values()
    assert f"unknown country '{bad}'" in line and "rewards.csv: row" in line
    if suggestion:
        assert f"did you mean '{suggestion}'" in line
    assert not (tmp_path / "o").exists()


def test_rescore_askreddit_says_which_columns_it_left_out(capsys, tmp_path, data_dir):
    source = data_dir / SUBDIR / "reference_askreddit_rewards_starling-rm-7b-alpha.csv"
    text = source.read_text("utf-8").splitlines()
    text[0] = text[0] + ",Atlantis"
    text[1:] = [line + ",0.5" for line in text[1:]]
    (tmp_path / "ar.csv").write_text("\n".join(text) + "\n", "utf-8")
    code = main(["rescore", "--task", "askreddit", "--predictions", str(tmp_path / "ar.csv"), "--n-boot", "20",
                 "--data-dir", str(data_dir), "--output", str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert code == 0
    assert "1 column(s) are not probe countries and were left out: Atlantis" in out
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text("utf-8"))
    assert any("Atlantis" in n for n in manifest["notes"])


# ---------------------------------------------------------------- late failures
def _probe_data(tmp_path: Path, data_dir: Path, damage) -> Path:
    folder = tmp_path / "data"
    shutil.copytree(data_dir / SUBDIR, folder / SUBDIR)
    damage(folder / SUBDIR / COUNTRY_SET_181)
    return folder


DAMAGED_COUNTRY_SETS = {
    "not-utf8": (lambda p: p.write_bytes(p.read_bytes() + b"\xff\xfe\n"), "not UTF-8"),
    "unknown-name": (lambda p: p.write_text(p.read_text("utf-8").replace("France", "Frnace"), "utf-8"),
                     "unknown country 'Frnace'"),
    "truncated-line": (lambda p: p.write_text(p.read_text("utf-8").replace("Germany", "Germ"), "utf-8"),
                       "unknown country 'Germ'"),
    "duplicate": (lambda p: p.write_text(p.read_text("utf-8") + "France\n", "utf-8"), "appears twice"),
    "empty": (lambda p: p.write_text("\n", "utf-8"), "no country names"),
    "missing": (lambda p: p.unlink(), "cannot read"),
    "a-folder": (lambda p: (p.unlink(), p.mkdir()), "cannot read"),
}


@pytest.mark.parametrize("task", ["askreddit", "where_from"])
@pytest.mark.parametrize("damage", DAMAGED_COUNTRY_SETS)
def test_a_damaged_country_set_fails_before_any_model_loads(capsys, tmp_path, data_dir, task, damage):
    change, expected = DAMAGED_COUNTRY_SETS[damage]
    data = _probe_data(tmp_path, data_dir, change)
    line = error_of(capsys, "run", "--model", "smollm2-135m-instruct", "--task", task, "--limit", "1",
                    "--data-dir", data, "--output", tmp_path / "o")
    assert COUNTRY_SET_181 in line and expected in line


# ---------------------------------------------------------------- numbers out of range in predictions
def _md3_file(tmp_path: Path, data_dir: Path, column: str, value: str) -> Path:
    source = data_dir / "paper_outputs" / "outputs" / "md3-game" / "Llama-2-7b-hf_8bit-no-answers.csv"
    with source.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = [next(reader) for _ in range(5)]
        fields = reader.fieldnames
    rows[3][column] = value
    path = tmp_path / "md3" / "model.csv"
    path.parent.mkdir()
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


MD3_BAD_NUMBERS = {
    "prob-overflow": ("correct_answer_prob", "1e999"),
    "prob-inf": ("correct_answer_prob", "inf"),
    "prob-negative": ("correct_answer_prob", "-0.2"),
    "prob-above-one": ("correct_answer_prob", "1.5"),
    "prob-text": ("correct_answer_prob", "high"),
    "distractor-overflow": ("distractor_probs", "[1e999, 0.1, 0.1, 0.1, 0.1]"),
    "distractor-negative": ("distractor_probs", "[-0.1, 0.1, 0.1, 0.1, 0.1]"),
    "distractor-above-one": ("distractor_probs", "[0.1, 0.1, 7, 0.1, 0.1]"),
    "distractor-wrong-length": ("distractor_probs", "[0.1, 0.1]"),
    "distractor-call": ("distractor_probs", "[__import__('os').getpid()]"),
}


@pytest.mark.parametrize("case", MD3_BAD_NUMBERS)
def test_md3_predictions_out_of_range_are_one_line_naming_the_row(capsys, tmp_path, data_dir, case):
    column, value = MD3_BAD_NUMBERS[case]
    path = _md3_file(tmp_path, data_dir, column, value)
    line = error_of(capsys, "rescore", "--task", "md3", "--predictions", path, "--output", tmp_path / "o")
    assert f"{path}: row 4" in line and not (tmp_path / "o").exists()


@pytest.mark.parametrize("value", ["1e999", "-inf", "nan", "NaN", "", "1,5"])
def test_where_from_rewards_that_are_not_finite_numbers_are_refused(capsys, tmp_path, data_dir, value):
    text = (data_dir / SUBDIR / WHERE_FROM_REFERENCE).read_text("utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    rows[7]["reward"] = value
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    (tmp_path / "r.csv").write_text(out.getvalue(), "utf-8")
    line = error_of(capsys, "rescore", "--task", "where_from", "--predictions", tmp_path / "r.csv", "--data-dir",
                    data_dir, "--output", tmp_path / "o")
    assert "row 8" in line and "reward" in line


@pytest.mark.parametrize("blocker", ["file", "file-above"])
def test_a_cache_folder_that_cannot_be_created_is_one_line(capsys, tmp_path, monkeypatch, data_dir, blocker):
    (tmp_path / "blocker").write_text("x", "utf-8")
    cache = tmp_path / "blocker" if blocker == "file" else tmp_path / "blocker" / "cache"
    monkeypatch.setenv("GLOBALIGN_CACHE_DIR", str(cache))
    line = error_of(capsys, "run", "--model", "gemma-3-270m", "--task", "global_opinions", "--limit", "1",
                    "--data-dir", data_dir, "--output", tmp_path / "o")
    assert "GLOBALIGN_CACHE_DIR" in line and "cannot be created" in line
