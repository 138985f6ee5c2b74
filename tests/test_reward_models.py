"""Reward-model backends: classifier and value head on tiny random Llama models with the packaged
SmolLM2 tokenizer; the judge on the real packaged smollm2-135m-instruct."""

from __future__ import annotations

import math
import shutil

import pytest
import torch

from globalign.engine.runner import Engine
from globalign.errors import GlobalignError
from globalign.models.base import RewardModel
from globalign.models.resolve import ModelSpec, locate_model
from globalign.models.reward import (
    SequenceClassificationReward,
    ValueHeadReward,
    llama2_chat_text,
    load_reward_model,
    split_llama2_chat,
)
from globalign.requests import RewardRequest, ScoreRequest
from globalign.store.request_cache import RequestCache
from globalign.tasks.judge import JudgeReward, load_judge

ALIAS = "smollm2-135m-instruct"
TOLERANCE = 1e-5
TEXTS = [
    "Hi",
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\nParis.<|im_end|>",
    "A somewhat longer response that goes on for a while, so the batch has to pad the short rows a lot.",
    "Ends with the pad token<|im_end|>",  # pad id inside the text: the mask, not the id, marks padding
]


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    """The packaged SmolLM2 tokenizer (a real BPE tokenizer; it adds no BOS by default)."""
    try:
        source = locate_model(ModelSpec(ALIAS)).folder
    except GlobalignError as exc:
        pytest.skip(f"packaged model unavailable: {exc}")
    target = tmp_path_factory.mktemp("tokenizer")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(source / name, target / name)
    return target


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir)


def _config(**overrides):
    from transformers import LlamaConfig

    settings = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                "intermediate_size": 64, "vocab_size": 49152, "max_position_embeddings": 4096,
                "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2}
    return LlamaConfig(**{**settings, **overrides})


def _copy_tokenizer(tokenizer_dir, folder):
    for path in tokenizer_dir.iterdir():
        shutil.copy(path, folder / path.name)


def _value_head_folder(folder, tokenizer_dir, *, prefix="transformer.", fmt="bin", with_tokenizer=True):
    """A Starling-RM-style folder: config.json of the trunk + one checkpoint with `prefix`-ed trunk
    weights and v_head.weight. Returns (folder, trunk, v_head) for manual reference passes."""
    from transformers import LlamaModel

    torch.manual_seed(0)
    config = _config()
    config.architectures = ["LLMForSequenceRegression"]  # what Starling-RM-7B-alpha's config says
    trunk = LlamaModel(config).eval()
    v_head = torch.nn.Linear(config.hidden_size, 1, bias=False)
    state = {prefix + k: v.detach().clone() for k, v in trunk.state_dict().items()}
    state["v_head.weight"] = v_head.weight.detach().clone()
    if prefix == "model.model.":
        state["model.lm_head.weight"] = torch.randn(config.vocab_size, config.hidden_size)  # ignored
    folder.mkdir()
    config.save_pretrained(folder)
    if with_tokenizer:
        _copy_tokenizer(tokenizer_dir, folder)
    if fmt == "bin":
        torch.save(state, folder / "pytorch_model.bin")
    else:
        from safetensors.torch import save_file

        save_file(state, str(folder / "model.safetensors"))
    return folder, trunk, v_head


def _classifier_folder(folder, tokenizer_dir, num_labels=1):
    from transformers import LlamaForSequenceClassification

    torch.manual_seed(1)
    model = LlamaForSequenceClassification(_config(num_labels=num_labels)).eval()
    model.save_pretrained(folder)
    _copy_tokenizer(tokenizer_dir, folder)
    return folder, model


def _manual_value(trunk, v_head, ids):
    with torch.inference_mode():
        hidden = trunk(input_ids=torch.tensor([ids])).last_hidden_state
        return v_head(hidden[0, -1]).item()


def _assert_batched_equals_single(model, requests):
    batched = model.reward(requests)
    single = [model.reward([r])[0] for r in requests]
    unpadded = model.reward_unbatched(requests)
    assert all(math.isfinite(x) for x in batched)
    assert len(set(batched)) == len(batched)  # rows differ: nothing mixed up between rows
    for a, b, c in zip(batched, single, unpadded):
        assert abs(a - b) < TOLERANCE and abs(a - c) < TOLERANCE
    return batched


# -- value head (Starling-RM layout) -------------------------------------------------------------
@pytest.mark.parametrize(("prefix", "fmt"), [("transformer.", "bin"), ("model.model.", "safetensors")])
def test_value_head_batched_equals_single_and_reads_the_last_real_token(
    private_cache, tmp_path, tokenizer_dir, tokenizer, prefix, fmt
):
    folder, trunk, v_head = _value_head_folder(tmp_path / "rm", tokenizer_dir, prefix=prefix, fmt=fmt)
    model = load_reward_model(folder)  # auto: a checkpoint holds v_head.weight
    assert isinstance(model, ValueHeadReward) and isinstance(model, RewardModel)
    assert model.info.details["kind"] == "value_head" and model.info.details["trunk_prefix"] == prefix
    assert model.max_length == 2048
    requests = [RewardRequest(t[:5], t[5:]) for t in TEXTS]
    rewards = _assert_batched_equals_single(model, requests)
    for text, reward in zip(TEXTS, rewards):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert abs(reward - _manual_value(trunk, v_head, ids)) < TOLERANCE


def test_value_head_truncates_on_the_left(private_cache, tmp_path, tokenizer_dir, tokenizer):
    folder, trunk, v_head = _value_head_folder(tmp_path / "rm", tokenizer_dir)
    model = load_reward_model(folder, "value_head", max_length=8)
    long = "The first words will be cut away, but the very end of this response is what gets scored."
    ids = tokenizer(long, add_special_tokens=False)["input_ids"]
    assert len(ids) > 8
    assert model.encode(long) == ids[-8:]
    (reward,) = model.reward([RewardRequest("", long)])
    assert abs(reward - _manual_value(trunk, v_head, ids[-8:])) < TOLERANCE
    # batched with short rows, the truncated row still gives the same value
    batched = model.reward([RewardRequest("", "Hi"), RewardRequest("", long)])
    assert abs(batched[1] - reward) < TOLERANCE


def test_bos_is_added_once_and_kept_when_truncating(private_cache, tmp_path, tokenizer_dir):
    """A tokenizer that adds BOS (as Llama-2's does): a text already starting with the BOS string is
    not given a second one; left truncation keeps the tokenizer's BOS and the text's end."""
    from transformers import AutoTokenizer

    bos_tokenizer = tmp_path / "bos_tokenizer"
    AutoTokenizer.from_pretrained(tokenizer_dir, add_bos_token=True).save_pretrained(bos_tokenizer)
    folder, _, _ = _value_head_folder(tmp_path / "rm", tokenizer_dir, with_tokenizer=False)
    with pytest.raises(GlobalignError, match="no tokenizer files; pass tokenizer="):
        load_reward_model(folder)
    model = load_reward_model(folder, tokenizer=bos_tokenizer, max_length=4)
    plain = model.tokenizer("one two three four five", add_special_tokens=False)["input_ids"]
    assert model.encode("one two three four five") == [1, *plain[-3:]]
    assert model.encode("<|im_start|>user")[:2] != [1, 1] and model.encode("<|im_start|>user")[0] == 1
    forced = load_reward_model(folder, tokenizer=bos_tokenizer, max_length=4, add_special_tokens=True)
    assert forced.encode("<|im_start|>user")[:2] == [1, 1]  # the tokenizer's defaults, as asked
    assert forced.info.fingerprint != model.info.fingerprint


def test_value_head_errors_are_one_line(private_cache, tmp_path, tokenizer_dir):
    folder, _, _ = _value_head_folder(tmp_path / "rm", tokenizer_dir, prefix="weird.")
    with pytest.raises(GlobalignError) as error:
        load_reward_model(folder)
    assert "no complete trunk" in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(GlobalignError, match="unknown reward model kind"):
        load_reward_model(folder, "ranker")  # type: ignore[arg-type]
    with pytest.raises(GlobalignError, match="packaged language model"):
        load_reward_model(ALIAS)
    with pytest.raises(GlobalignError, match="not a folder or a Hugging Face hub id"):
        load_reward_model(str(tmp_path / "missing"))


# -- sequence classifier ---------------------------------------------------------------------------
def test_classifier_batched_equals_single_and_manual_pass(private_cache, tmp_path, tokenizer_dir, tokenizer):
    folder, reference = _classifier_folder(tmp_path / "clf", tokenizer_dir)
    model = load_reward_model(folder)  # auto: *ForSequenceClassification with one label
    assert isinstance(model, SequenceClassificationReward)
    assert model.info.details["kind"] == "classifier"
    requests = [RewardRequest(t, "") for t in TEXTS]
    rewards = _assert_batched_equals_single(model, requests)
    with torch.inference_mode():
        for text, reward in zip(TEXTS, rewards):
            ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
            assert abs(reward - reference(input_ids=ids).logits[0, 0].item()) < TOLERANCE
    again = load_reward_model(folder)
    assert again.info.fingerprint == model.info.fingerprint
    assert load_reward_model(folder, max_length=16).info.fingerprint != model.info.fingerprint


def test_classifier_truncates_on_the_left(private_cache, tmp_path, tokenizer_dir, tokenizer):
    folder, reference = _classifier_folder(tmp_path / "clf", tokenizer_dir)
    model = load_reward_model(folder, "classifier", max_length=6)
    long = "Only the last six tokens of this fairly long text should reach the classifier."
    ids = tokenizer(long, add_special_tokens=False)["input_ids"]
    rewards = model.reward([RewardRequest(long, ""), RewardRequest("Hi", "")])
    with torch.inference_mode():
        expected = reference(input_ids=torch.tensor([ids[-6:]])).logits[0, 0].item()
    assert abs(rewards[0] - expected) < TOLERANCE


def test_classifier_needs_exactly_one_label(private_cache, tmp_path, tokenizer_dir):
    folder, _ = _classifier_folder(tmp_path / "clf", tokenizer_dir, num_labels=2)
    for kind in ("auto", "classifier"):
        with pytest.raises(GlobalignError, match="has 2 labels; a reward model needs exactly 1"):
            load_reward_model(folder, kind)
    with pytest.raises(GlobalignError, match="no checkpoint .* holds v_head.weight"):
        load_reward_model(folder, "value_head")


def test_plain_causal_lm_folder_is_refused(private_cache, tmp_path, tokenizer_dir):
    folder = tmp_path / "lm"
    folder.mkdir()
    config = _config()
    config.architectures = ["LlamaForCausalLM"]
    config.save_pretrained(folder)
    _copy_tokenizer(tokenizer_dir, folder)
    with pytest.raises(GlobalignError, match="neither a checkpoint with v_head.weight") as error:
        load_reward_model(folder)
    assert "\n" not in str(error.value)
    with pytest.raises(GlobalignError, match="no \\*ForSequenceClassification architecture"):
        load_reward_model(folder, "classifier")


# -- text helpers ----------------------------------------------------------------------------------
def test_split_llama2_chat():
    assert split_llama2_chat("<s>[INST] Hello? </s> [/INST] Hi, how can I help you?</s>") == (
        "Hello?", "Hi, how can I help you?")
    assert split_llama2_chat("<s>[INST] What is 2+2? [/INST] 4</s>") == ("What is 2+2?", "4")
    assert split_llama2_chat("[INST] q [/INST] r") == ("q", "r")
    assert split_llama2_chat("<s>[INST] <<SYS>>\nBe nice.\n<</SYS>>\n\nLine 1\nLine 2 [/INST] A\nB </s>") == (
        "Line 1\nLine 2", "A\nB")
    assert split_llama2_chat(llama2_chat_text("Why?", "Because.")) == ("Why?", "Because.")
    with pytest.raises(GlobalignError, match="single-turn"):
        split_llama2_chat("<s>[INST] a [/INST] b </s><s>[INST] c [/INST] d</s>")
    with pytest.raises(GlobalignError, match="not a Llama-2 chat text"):
        split_llama2_chat("just text")


def test_reward_request_key_is_stable_and_keeps_the_boundary():
    assert RewardRequest("a", "b").key() == RewardRequest("a", "b").key()
    assert RewardRequest("a", "b").key() != RewardRequest("ab", "").key()
    assert RewardRequest("a", "b").text == "ab"


# -- judge (real packaged model) -------------------------------------------------------------------
@pytest.mark.slow
def test_judge_on_the_packaged_model(private_cache, tmp_path):
    cache = RequestCache(tmp_path / "requests.sqlite")
    judge = load_judge(ALIAS, cache=cache)
    assert isinstance(judge, JudgeReward) and isinstance(judge, RewardModel)
    question, good_answer = split_llama2_chat(llama2_chat_text("What is 2+2?", "4"))
    requests = [
        RewardRequest(question, good_answer),
        RewardRequest(question, "Purple elephants dance."),
        RewardRequest("What is the capital of France?", "The capital of France is Paris."),
        RewardRequest("What is the capital of France?", "Bananas are a kind of shoe."),
    ]
    rewards = judge.reward(requests)
    assert all(math.isfinite(r) for r in rewards)
    print("judge rewards (good, bad, good, bad):", rewards)
    assert judge.engine.computed == 2 * len(requests)

    # independent: the prompt built by hand, both answers scored with full naive passes
    lm = judge.lm
    for request, reward in zip(requests, rewards):
        user = (f"Here is a question and a response.\n\nQuestion: {request.prompt}\n\n"
                f"Response: {request.response}\n\nIs this a good, helpful response? Answer Yes or No.")
        (yes, no), = lm.score_naive([ScoreRequest(lm.apply_chat_template(user), ("Yes", "No"))])
        assert yes.n_tokens == 1 and no.n_tokens == 1  # the next token itself
        assert abs(reward - (no.nll_sum - yes.nll_sum)) < 1e-4

    # cached: a fresh engine on the same cache computes nothing and gives the same numbers
    again = JudgeReward.from_engine(Engine(lm, cache, progress=False))
    assert again.info.fingerprint == judge.info.fingerprint
    assert again.reward(requests) == rewards
    assert again.engine.computed == 0 and again.engine.reused == 2 * len(requests)
    # at least the arithmetic example is ordered sensibly
    assert rewards[0] > rewards[1]
    judge.close()
    cache.close()
