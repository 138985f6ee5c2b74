"""The run config: what a valid config becomes, and how a bad one is refused (field and source named)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from globalign.config import RunConfig, TaskConfig, load_config_file, parse_config
from globalign.errors import ConfigError
from globalign.models.resolve import ModelSpec
from globalign.tasks.base import StatsSettings

FULL = {
    "models": [
        "gemma-3-270m",
        {"name": "smollm2-135m-instruct", "dtype": "bfloat16", "batch_size": 8},
        {"name": "models/my-sft", "trust_remote_code": True, "revision": "v2"},
    ],
    "tasks": [{"name": "global_opinions", "countries": "study7", "study_parser": True}],
    "output": "out/run1",
    "limit": 50,
    "seed": 7,
    "prompt_format": "chat",
    "data_dir": "../shared/data",
    "compare": [["gemma-3-270m", "smollm2-135m-instruct"], ["smollm2-135m-instruct", "models/my-sft"]],
    "stats": {"n_boot": 2000, "n_perm": 3000, "seed": 1},
    "cache": False,
    "threads": 4,
    "batch_size": 16,
}
EXPECTED = RunConfig(
    models=(
        ModelSpec("gemma-3-270m", threads=4, batch_size=16),
        ModelSpec("smollm2-135m-instruct", dtype="bfloat16", threads=4, batch_size=8),
        ModelSpec("models/my-sft", trust_remote_code=True, revision="v2", threads=4, batch_size=16),
    ),
    tasks=(TaskConfig("global_opinions", {"countries": "study7", "study_parser": True}),),
    output=Path("out/run1"),
    limit=50,
    seed=7,
    prompt_format="chat",
    data_dir="../shared/data",
    compare=(("gemma-3-270m", "smollm2-135m-instruct"), ("smollm2-135m-instruct", "models/my-sft")),
    stats=StatsSettings(n_boot=2000, n_perm=3000, seed=1),
    cache=False,
)


def minimal(**changes) -> dict:
    return {"models": ["base", "aligned"], "tasks": ["global_opinions"], "output": "out/run", **changes}


def test_full_config_parses_to_the_typed_config():
    assert parse_config(FULL, "run.yaml") == EXPECTED


def test_full_config_round_trips_through_yaml_and_the_manifest_form(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(FULL), "utf-8")
    config = parse_config(load_config_file(path), str(path))
    assert config == EXPECTED
    # The manifest records config.to_json(); reading it back gives the same run.
    assert parse_config(config.to_json(), "manifest.json") == config


def test_defaults():
    config = parse_config({"models": ["m"], "tasks": ["global_opinions"], "output": "out"}, "flags")
    assert config == RunConfig(models=(ModelSpec("m"),), tasks=(TaskConfig("global_opinions"),), output=Path("out"))
    assert (config.limit, config.seed, config.prompt_format, config.cache) == (None, 221, "raw", True)
    assert config.stats == StatsSettings()
    assert config.models[0] == ModelSpec("m", dtype="float32", batch_size=32, threads=None)


def test_default_comparisons_are_the_steps_of_the_models_as_one_family_and_base_to_last():
    config = parse_config(minimal(models=["base", "sft", "dpo"]), "flags")
    assert config.comparison_pairs() == [("base", "sft"), ("sft", "dpo"), ("base", "dpo")]
    assert [(c.family, c.stage_a, c.stage_b, c.kind) for c in config.comparisons()] == [
        ("run", "base", "sft", "step"), ("run", "sft", "pt", "step"), ("run", "base", "pt", "whole")]


def test_one_model_has_no_comparisons():
    assert parse_config(minimal(models=["base"]), "flags").comparison_pairs() == []


def test_explicit_compare_replaces_the_default_pairs():
    config = parse_config(minimal(models=["base", "sft", "dpo"], compare=[["sft", "dpo"]]), "flags")
    assert config.comparison_pairs() == [("sft", "dpo")]


def test_run_level_threads_and_batch_size_reach_every_model_unless_overridden():
    config = parse_config(
        minimal(models=["base", {"name": "aligned", "dtype": "float16", "batch_size": 2}], threads=3, batch_size=64),
        "flags",
    )
    assert config.models == (
        ModelSpec("base", dtype="float32", threads=3, batch_size=64),
        ModelSpec("aligned", dtype="float16", threads=3, batch_size=2),
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (["models", "tasks"], "run.yaml: must be a mapping of fields"),
        (minimal(colour="blue"), "run.yaml: colour: unknown field"),
        (minimal(models="base"), "run.yaml: models: must be a list of models, got the text 'base'"),
        (minimal(models=[]), "run.yaml: models: give at least one model"),
        (minimal(models=["base", "base"]), "run.yaml: models: a model is listed twice"),
        (minimal(models=[{"dtype": "float16"}]), "run.yaml: models[0]: must be a model id or a mapping with a 'name'"),
        (minimal(models=[{"name": "m", "gpu": 1}]), "run.yaml: models[0]: unknown field 'gpu'"),
        (minimal(models=[{"name": "m", "dtype": "float64"}]), "run.yaml: models[0].dtype: must be one of"),
        (minimal(models=[{"name": "m", "trust_remote_code": "yes"}]), "models[0].trust_remote_code: must be true"),
        (minimal(threads=0), "run.yaml: models[0].threads: must be an integer >= 1, got 0"),
        (minimal(tasks=[]), "run.yaml: tasks: give at least one task"),
        (minimal(tasks=[{"countries": "all"}]), "run.yaml: tasks[0]: must be a task name or a mapping"),
        (minimal(tasks=["global_opinions", {"name": "global_opinions"}]), "run.yaml: tasks: a task is listed twice"),
        (minimal(output=None), "run.yaml: output: give the output folder"),
        (minimal(limit=0), "run.yaml: limit: must be an integer >= 1, got 0"),
        (minimal(limit=True), "run.yaml: limit: must be an integer >= 1, got True"),
        (minimal(seed=-1), "run.yaml: seed: must be an integer >= 0, got -1"),
        (minimal(prompt_format="chatty"), "run.yaml: prompt_format: must be one of raw, chat, got 'chatty'"),
        (minimal(compare=[["base", "llama"]]), "run.yaml: compare[0]: must be [model_a, model_b] naming listed"),
        (minimal(compare=[["base"]]), "run.yaml: compare[0]: must be [model_a, model_b]"),
        (minimal(compare="base,aligned"), "run.yaml: compare: must be a list of [model_a, model_b] pairs"),
        (minimal(stats={"n_boot": 10, "alpha": 0.05}), "run.yaml: stats: may hold n_boot, n_perm and seed"),
        (minimal(stats={"n_boot": 0}), "run.yaml: stats.n_boot: must be an integer >= 1, got 0"),
        (minimal(data_dir=["a", "b"]), "run.yaml: data_dir: must be a folder path"),
        (minimal(cache="no"), "run.yaml: cache: must be true or false, got 'no'"),
    ],
)
def test_bad_config_is_refused_naming_source_and_field(raw, message):
    with pytest.raises(ConfigError) as error:
        parse_config(raw, "run.yaml")
    assert message in str(error.value)


# ---------------------------------------------------------------- reading the file
def test_empty_file_is_an_empty_mapping(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("# nothing yet\n", "utf-8")
    assert load_config_file(path) == {}


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("models: [base]\ntasks: [global_opinions]\nlimit: 5: 6\n", "utf-8")
    with pytest.raises(ConfigError) as error:
        load_config_file(path)
    assert str(error.value).startswith(f"{path}:3: invalid YAML (mapping values are not allowed here)")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config_file(tmp_path / "nope.yaml")


def test_non_utf8_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_bytes(b"models: [caf\xe9]\n")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_config_file(path)


@pytest.mark.parametrize("text", ["- base\n- aligned\n", "just a sentence\n"])
def test_file_that_is_not_a_mapping(tmp_path, text):
    path = tmp_path / "run.yaml"
    path.write_text(text, "utf-8")
    with pytest.raises(ConfigError, match="must be a mapping of fields"):
        load_config_file(path)


def test_a_task_level_limit_overrides_the_run_limit_and_is_not_a_task_option():
    from globalign.config import parse_config

    config = parse_config({"models": ["m"], "tasks": [{"name": "global_opinions", "limit": 7}, "other"],
                           "limit": 50, "output": "out"}, "test")
    assert config.tasks[0].limit == 7 and "limit" not in config.tasks[0].options
    assert config.tasks[1].limit is None and config.limit == 50
