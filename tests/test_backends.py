"""The backend registry, backend options in configs and flags, and the requests' prompt parts."""

from __future__ import annotations

import pytest

from globalign.cli import _config_from_args, build_parser
from globalign.config import parse_config
from globalign.errors import ConfigError, GlobalignError
from globalign.models.backends import BACKENDS, check_backend_options, reward_model_loader
from globalign.models.resolve import ModelSpec, locate_model
from globalign.requests import GenerateRequest, Prompt, ScoreRequest, content_hash


def test_a_raw_prompt_keeps_the_cache_keys_of_plain_text_requests():
    """Answers cached before prompts had parts stay valid: a raw prompt's keys are the old text keys."""
    assert ScoreRequest("Q: ", ("a",)).candidate_key(0) == content_hash("score", "Q: ", "a")
    assert GenerateRequest("Q: ", 5, ("\n",)).key() == content_hash("generate", "Q: ", "5", "\n")
    assert ScoreRequest("Q: ", ("a",)) == ScoreRequest(Prompt.raw("Q: "), ("a",))


def test_a_chat_prompt_is_keyed_by_its_parts_never_like_a_raw_one():
    chat = Prompt.chat("Where are you from?", "I am from")
    raw = Prompt.raw("I am from")
    assert chat.is_chat and not raw.is_chat
    assert chat.hash() != raw.hash()
    assert ScoreRequest(chat, (" France",)).candidate_key(0) != ScoreRequest(raw, (" France",)).candidate_key(0)
    # the user turn and the assistant prefix cannot trade text: JSON-encoded parts
    assert Prompt.chat("ab", "c").hash() != Prompt.chat("a", "bc").hash()


def test_backend_options_are_checked_against_the_backend():
    assert check_backend_options("vllm", {"tensor_parallel_size": 8, "gpu_memory_utilization": 1}, "m") == {
        "tensor_parallel_size": 8, "gpu_memory_utilization": 1.0}
    with pytest.raises(ConfigError, match=r"m: unknown option of backend vllm 'tensor_paralel_size'; did you mean "
                                          r"'tensor_parallel_size'"):
        check_backend_options("vllm", {"tensor_paralel_size": 8}, "m")
    with pytest.raises(ConfigError, match=r"m.tensor_parallel_size: must be int, got True"):
        check_backend_options("vllm", {"tensor_parallel_size": True}, "m")
    with pytest.raises(ConfigError, match="backend 'hf' takes no options"):
        check_backend_options("hf", {"x": 1}, "m")


def test_config_model_entries_take_a_backend_and_its_options():
    config = parse_config({"models": [{"name": "org/m", "backend": "vllm", "backend_options": {"tensor_parallel_size": 2}},
                                      "smollm2-135m-instruct"], "tasks": ["md3"], "output": "o"}, "c.yaml")
    first, second = config.models
    assert first.backend == "vllm" and first.option("tensor_parallel_size") == 2
    assert second.backend == "hf" and second.backend_options == ()
    assert config.to_json()["models"][0]["backend_options"] == {"tensor_parallel_size": 2}
    with pytest.raises(ConfigError, match=r"c.yaml: models\[0\].backend: must be one of hf, vllm, openai, got 'vlm'"):
        parse_config({"models": [{"name": "m", "backend": "vlm"}], "tasks": ["md3"], "output": "o"}, "c.yaml")
    with pytest.raises(ConfigError, match=r"backend_options.base_url: is required for backend openai"):
        parse_config({"models": [{"name": "m", "backend": "openai"}], "tasks": ["md3"], "output": "o"}, "c.yaml")


def test_flags_set_the_backend_and_options_of_every_model():
    args = build_parser().parse_args(
        ["run", "--model", "served-a", "--model", "served-b", "--task", "md3", "--output", "o", "--backend", "openai",
         "--backend-option", "base_url=http://127.0.0.1:8000/v1", "--backend-option", "max_concurrency=4",
         "--backend-option", "timeout=2.5"])
    config = _config_from_args(args)
    for spec in config.models:
        assert spec.backend == "openai"
        assert dict(spec.backend_options) == {"base_url": "http://127.0.0.1:8000/v1", "max_concurrency": 4,
                                              "timeout": 2.5}
    bad = build_parser().parse_args(["run", "--model", "m", "--task", "md3", "--output", "o", "--backend-option", "nothing"])
    with pytest.raises(GlobalignError, match="--backend-option 'nothing': expected KEY=VALUE"):
        _config_from_args(bad)


def test_a_served_model_is_located_without_files():
    spec = ModelSpec("my-served-model", backend="openai", backend_options=(("base_url", "http://h:1/v1"),))
    located = locate_model(spec)
    assert located.folder is None and located.source == "http://h:1/v1"


def test_a_backend_without_reward_models_says_which_have_them():
    assert BACKENDS["openai"].reward_model is None
    with pytest.raises(GlobalignError, match="reward model 'rm': backend 'openai' cannot run reward models; use hf, vllm"):
        reward_model_loader("openai", "rm")


def test_globalign_backends_lists_every_backend_and_option(capsys):
    from globalign.cli import main

    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    for backend in BACKENDS.values():
        assert out.count(f"{backend.name}: ") >= 1
        for option in backend.options:
            assert f"  {option} (" in out
