"""Families (families.py): the one place comparison pairs come from, for configs, plain model lists,
the study's checkpoints and explicit `compare:` lists."""

from __future__ import annotations

import json

import pytest
import yaml

from globalign.config import load_config_file, parse_config
from globalign.errors import ConfigError
from globalign.families import Family, Stage, comparisons, families_for, one_family, pairs, restricted
from globalign.study_models import STUDY_FAMILIES, default_families, study_families

PAPER_LIKE = {
    "families": {
        "tulu": {"base": "llama-2-7b", "sft": "tulu-2-7b", "pt": "tulu-2-dpo-7b"},
        "llama-chat": {"base": "llama-2-7b", "chat": "llama-2-7b-chat"},
    },
    "tasks": ["md3"],
    "output": "out",
}


def test_a_family_is_compared_step_by_step_then_base_to_last():
    family = Family("f", (Stage("base", "a"), Stage("sft", "b"), Stage("pt", "c"), Stage("rl", "d")))
    assert [(c.model_a, c.model_b, c.kind) for c in comparisons([family])] == [
        ("a", "b", "step"), ("b", "c", "step"), ("c", "d", "step"), ("a", "d", "whole")]


def test_two_stages_are_one_comparison_and_a_shared_pair_is_compared_once():
    first = Family("one", (Stage("base", "a"), Stage("aligned", "b")))
    second = Family("two", (Stage("base", "a"), Stage("sft", "b"), Stage("pt", "c")))
    found = comparisons([first, second])
    assert [c.pair for c in found] == [("a", "b"), ("b", "c"), ("a", "c")]
    assert found[0].family == "one"  # the first family that has the pair names it


def test_plain_model_lists_are_one_family_with_default_stage_names():
    assert one_family(["a", "b"]).stages == (Stage("base", "a"), Stage("aligned", "b"))
    assert [s.name for s in one_family(["a", "b", "c"]).stages] == ["base", "sft", "pt"]
    assert [s.name for s in one_family(list("abcde")).stages] == ["base", "stage2", "stage3", "stage4", "stage5"]
    assert families_for(["only"]) == []


def test_config_families_keep_order_share_models_and_list_each_model_once():
    config = parse_config(PAPER_LIKE, "paper.yaml")
    assert [m.name for m in config.models] == ["llama-2-7b", "tulu-2-7b", "tulu-2-dpo-7b", "llama-2-7b-chat"]
    assert config.comparison_pairs() == [("llama-2-7b", "tulu-2-7b"), ("tulu-2-7b", "tulu-2-dpo-7b"),
                                         ("llama-2-7b", "tulu-2-dpo-7b"), ("llama-2-7b", "llama-2-7b-chat")]
    assert [(c.family, c.stage_b) for c in config.comparisons()][-1] == ("llama-chat", "chat")


def test_config_families_round_trip_through_yaml_and_the_manifest_form(tmp_path):
    path = tmp_path / "paper.yaml"
    path.write_text(yaml.safe_dump(PAPER_LIKE, sort_keys=False), "utf-8")
    config = parse_config(load_config_file(path), str(path))
    again = parse_config(json.loads(json.dumps(config.to_json())), "manifest.json")
    assert again == config


def test_a_stage_may_carry_model_settings_and_flags_reach_them(tmp_path, monkeypatch):
    from globalign import cli

    raw = {"families": {"f": {"base": {"name": "a", "dtype": "bfloat16"}, "sft": "b"}}, "tasks": ["md3"],
           "output": "out"}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), "utf-8")
    args = cli.build_parser().parse_args(["run", str(path), "--dtype", "float16"])
    config = cli._config_from_args(args)
    assert {m.name: m.dtype for m in config.models} == {"a": "float16", "b": "float16"}


def test_explicit_compare_overrides_and_is_labelled_with_its_family():
    config = parse_config({**PAPER_LIKE, "compare": [["tulu-2-dpo-7b", "llama-2-7b-chat"], ["llama-2-7b", "tulu-2-7b"]]},
                          "paper.yaml")
    found = config.comparisons()
    assert [c.pair for c in found] == [("tulu-2-dpo-7b", "llama-2-7b-chat"), ("llama-2-7b", "tulu-2-7b")]
    assert (found[0].family, found[0].kind) == ("", "chosen") and (found[1].family, found[1].kind) == ("tulu", "step")


@pytest.mark.parametrize(("families", "message"), [
    ("tulu", "must map a family name to its stages"),
    ({}, "must map a family name to its stages"),
    ({"f": {"base": "a"}}, "give at least two stages"),
    ({"f": ["a", "b"]}, "give at least two stages"),
    ({"f": {"base": "a", "sft": "a"}}, "a model is two stages of the same family"),
    ({"f": {"base": {"name": "a", "dtype": "float16"}, "sft": "b"},
      "g": {"base": {"name": "a", "dtype": "bfloat16"}, "sft": "c"}}, "given elsewhere with other settings"),
    ({"f": {"base": {"dtype": "float16"}, "sft": "b"}}, "families.f.base: must be a model id"),
    ({"f": {"base": "a", "sft": {"name": "b", "dtype": "int3"}}}, "families.f.sft.dtype"),
])
def test_bad_families_name_the_family_and_stage(families, message):
    with pytest.raises(ConfigError) as error:
        parse_config({"families": families, "tasks": ["md3"], "output": "o"}, "run.yaml")
    assert message in str(error.value) and "run.yaml" in str(error.value)


def test_the_study_families_give_its_twelve_comparisons_with_stage_names():
    families = study_families()
    assert [f.name for f in families] == list(STUDY_FAMILIES)
    zephyr = next(f for f in families if f.name == "Mistral -> Zephyr")
    assert [s.name for s in zephyr.stages] == ["base", "sft", "pt"]
    assert len(pairs(families)) == 12


def test_rescoring_some_study_models_keeps_only_their_families_else_one_family():
    present = ["mistralai/Mistral-7B-v0.1", "HuggingFaceH4/zephyr-7b-beta", "01-ai/Yi-6B"]
    assert pairs(default_families(present)) == [("mistralai/Mistral-7B-v0.1", "HuggingFaceH4/zephyr-7b-beta")]
    assert restricted(study_families(), ["01-ai/Yi-6B"]) == []
    assert pairs(default_families(["x", "y"])) == [("x", "y")]
