"""A PEFT LoRA adapter folder is a model: it resolves to its base plus the adapter, its hash follows the
adapter's files, and its scores and greedy texts are those of the base with the adapter merged in.

One seeded adapter with non-zero weights on the packaged SmolLM2 for the module; the adapter model, its
merged copy and the base are each loaded once.
"""

from __future__ import annotations

import json

import pytest

from globalign.cli import main
from globalign.data.global_opinions import load_global_opinions
from globalign.engine.runner import Engine
from globalign.errors import GlobalignError
from globalign.models.adapter import ADAPTER_CONFIG, is_adapter_folder, merged_model, write_adapter_sidecar
from globalign.models.resolve import LocatedModel, ModelSpec, load_model, locate_model
from globalign.requests import GenerateRequest, Prompt, ScoreRequest
from globalign.tasks import global_opinions

BASE = "smollm2-135m-instruct"
# Per candidate (a sum over its tokens), float32 on both sides: unmerged LoRA adds s·x·A·B to x·W where
# the merged model computes x·(W + s·A·B); the two differ by float rounding only, accumulated over 30
# layers. Measured on a busy 2-core machine: 1.1e-05 and 1.5e-05 nats at most in two runs (7.6e-06 per
# token) on scores of 2-4 nats; the thread count changes the rounding. The base differs by 0.08.
TOLERANCE_NATS = 1e-4


def _lora_adapter(folder, base_folder, *, seed: int = 221) -> None:
    """A LoRA adapter on the base's attention projections with seeded random (non-zero) A and B, so that
    it changes the model's numbers, saved with globalign's sidecar naming the packaged base."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_folder, dtype=torch.float32)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False,
                        task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, config)
    with torch.no_grad():  # nn.Linear's default init of B moves the model far; a tenth still moves it
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.mul_(0.1)
    peft_model.save_pretrained(folder)
    write_adapter_sidecar(folder, BASE)


@pytest.fixture(scope="module")
def adapter_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("adapter") / "smollm2-lora"
    _lora_adapter(folder, locate_model(ModelSpec(BASE)).folder)
    return folder


def _fake_adapter(folder, base: str | None, *, sidecar: bool = True):
    """An adapter folder's files without real weights: enough for locating, which reads no tensors."""
    folder.mkdir(parents=True)
    config = {"peft_type": "LORA", "base_model_name_or_path": None if sidecar else base, "r": 4}
    (folder / ADAPTER_CONFIG).write_text(json.dumps(config))
    (folder / "adapter_model.safetensors").write_bytes(b"not read when locating")
    if sidecar and base is not None:
        write_adapter_sidecar(folder, base)
    return folder


# -- locating (no model loads) ---------------------------------------------------------------------
def test_an_adapter_folder_resolves_to_its_base_plus_the_adapter(tmp_path):
    folder = _fake_adapter(tmp_path / "a", BASE)
    base = locate_model(ModelSpec(BASE))
    located = locate_model(ModelSpec(str(folder)))
    assert is_adapter_folder(folder) and not is_adapter_folder(base.folder)
    assert located.adapter == folder and located.folder == base.folder
    assert (located.add_bos, located.family) == (base.add_bos, base.family)
    assert located.spec.name == str(folder)
    assert "LoRA adapter" in located.source and str(base.folder) in located.source
    assert located.content_hash != base.content_hash


def test_the_hash_changes_when_the_adapter_weights_change(tmp_path):
    folder = _fake_adapter(tmp_path / "a", BASE)
    before = locate_model(ModelSpec(str(folder))).content_hash
    (folder / "adapter_model.safetensors").write_bytes(b"other weights")
    assert locate_model(ModelSpec(str(folder))).content_hash != before


def test_without_a_sidecar_the_base_comes_from_adapter_config(tmp_path):
    folder = _fake_adapter(tmp_path / "a", BASE, sidecar=False)
    assert locate_model(ModelSpec(str(folder))).folder == locate_model(ModelSpec(BASE)).folder


@pytest.mark.parametrize("base", ["smollm2-135m-instruct-x", "./no/such/base"])
def test_a_missing_base_is_a_one_line_error_naming_adapter_and_base(tmp_path, base):
    folder = _fake_adapter(tmp_path / "a", base)
    with pytest.raises(GlobalignError) as error:
        locate_model(ModelSpec(str(folder)))
    message = str(error.value)
    assert "\n" not in message and str(folder) in message and f"'{base}'" in message


def test_an_adapter_naming_no_base_is_a_one_line_error(tmp_path):
    folder = _fake_adapter(tmp_path / "a", None, sidecar=False)
    with pytest.raises(GlobalignError, match="names no base model.*globalign-adapter.json"):
        locate_model(ModelSpec(str(folder)))


def test_an_adapter_is_refused_on_the_openai_backend(tmp_path):
    folder = _fake_adapter(tmp_path / "a", BASE)
    spec = ModelSpec(str(folder), backend="openai", backend_options=(("base_url", "http://127.0.0.1:9/v1"),))
    with pytest.raises(GlobalignError, match="cannot run on backend 'openai'"):
        locate_model(spec)


def test_the_dry_run_sizes_an_adapter_by_its_base(tmp_path):
    from globalign.plan import model_params

    assert model_params(str(_fake_adapter(tmp_path / "a", BASE))) == 135e6


# -- the adapter model's numbers ---------------------------------------------------------------------
def score_requests(data_dir) -> list[ScoreRequest]:
    """A GlobalOpinionsQA prompt as the task builds it (raw and chat), and a boundary merge."""
    question = load_global_opinions(data_dir).questions[0]
    parts = global_opinions.build_prompt(question)
    options = global_opinions.candidates(question)
    return [ScoreRequest(Prompt.raw(parts.raw), options), ScoreRequest(Prompt.chat(parts.user, parts.assistant_prefix), options),
            ScoreRequest("The answer is ", ("A", "Bahamas", ""))]


GENERATE = [GenerateRequest(Prompt.chat("Name one country in Africa."), 8),
            GenerateRequest(Prompt.raw("The capital of France is"), 8, stop=("\n",))]


def _nll(engine: Engine, requests) -> list[tuple[float, int]]:
    return [(c.nll_sum, c.n_tokens) for row in engine.score(requests, desc="") for c in row]


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory):
    """A private cache for the module (merged folders land here) that links the converted models."""
    from globalign.paths import CACHE_DIR_ENV, cache_dir

    private = tmp_path_factory.mktemp("cache")
    for name in ("converted", "gguf"):
        (private / name).symlink_to(cache_dir() / name)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv(CACHE_DIR_ENV, str(private))
        yield private


@pytest.fixture(scope="module")
def answers(adapter_dir, data_dir, module_cache):
    """Scores and greedy texts of the adapter model and its merged folder, and the base's scores (each
    loaded once)."""
    located = locate_model(ModelSpec(str(adapter_dir)))
    merged = merged_model(located)
    made = (merged.folder / "model.safetensors").stat().st_mtime_ns
    requests = score_requests(data_dir)
    out = {"located": located, "merged": merged}
    for key, model, generate in (("adapter", located, True), ("merged_model", merged, True),
                                 ("base", ModelSpec(BASE), False)):
        loaded = load_model(model)
        engine = Engine(loaded, progress=False)
        out[key] = (_nll(engine, requests), engine.generate(GENERATE, desc="") if generate else [], loaded.info)
        loaded.close()
    out["merged_again"] = merged_model(located)
    out["merged_untouched"] = (merged.folder / "model.safetensors").stat().st_mtime_ns == made
    return out


@pytest.mark.slow
def test_the_merged_folder_is_made_once_in_the_cache_with_the_base_tokenizer(answers):
    located, merged = answers["located"], answers["merged"]
    assert isinstance(merged, LocatedModel) and merged.adapter is None
    assert merged.folder.parent.name == "merged" and merged.folder.name == located.content_hash
    assert (merged.content_hash, merged.add_bos, merged.spec) == (located.content_hash, located.add_bos, located.spec)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        assert (merged.folder / name).read_bytes() == (located.folder / name).read_bytes()
    assert answers["merged_again"].folder == merged.folder
    assert answers["merged_untouched"]  # found in the cache, not merged again


@pytest.mark.slow
def test_adapter_scores_equal_the_merged_models_and_differ_from_the_base(answers):
    adapter, merged, base = (answers[k][0] for k in ("adapter", "merged_model", "base"))
    worst = max(abs(a[0] - m[0]) for a, m in zip(adapter, merged, strict=True))
    per_token = max(abs(a[0] - m[0]) / max(a[1], 1) for a, m in zip(adapter, merged, strict=True))
    print(f"adapter vs merged: largest difference {worst:.3g} nats per candidate, {per_token:.3g} per token, "
          f"over {len(adapter)} candidates ({sum(a[1] for a in adapter)} tokens); values {[round(a[0], 3) for a in adapter]}")
    assert worst < TOLERANCE_NATS
    assert max(abs(a[0] - b[0]) for a, b in zip(adapter, base, strict=True)) > 0.01


@pytest.mark.slow
def test_adapter_greedy_texts_equal_the_merged_models(answers):
    assert answers["adapter"][1] == answers["merged_model"][1]
    assert all(answers["adapter"][1])


@pytest.mark.slow
def test_adapter_model_info_names_base_and_adapter(answers, adapter_dir):
    info = answers["adapter"][2]
    assert info.name == str(adapter_dir)
    assert "LoRA adapter" in info.source and info.details["adapter"] == str(adapter_dir.resolve())
    assert info.fingerprint != answers["base"][2].fingerprint


@pytest.mark.slow
def test_a_run_on_an_adapter_folder_names_it(adapter_dir, private_cache, data_dir, tmp_path):
    output = tmp_path / "run"
    assert main(["run", "--model", str(adapter_dir), "--task", "global_opinions", "--limit", "2", "--n-boot", "20",
                 "--quiet", "--data-dir", str(data_dir), "--output", str(output)]) == 0
    manifest = json.loads((output / "manifest.json").read_text())
    [model] = manifest["models"]
    assert model["name"] == str(adapter_dir) and "LoRA adapter" in model["source"]
    assert str(adapter_dir) in (output / "metrics.csv").read_text()


@pytest.mark.slow
def test_on_vllm_an_adapter_runs_merged_with_the_hf_backends_numbers(answers, adapter_dir, data_dir, module_cache):
    """The vllm backend loads the merged folder (made once, by the hf answers above) under the adapter
    model's name and content hash: its scores are the hf adapter model's within vLLM's tolerance."""
    from test_vllm_backend import TOLERANCE_NATS as VLLM_TOLERANCE_NATS
    from test_vllm_backend import require_vllm

    require_vllm()
    model = load_model(ModelSpec(str(adapter_dir), backend="vllm"))
    try:
        scores = _nll(Engine(model, progress=False), score_requests(data_dir))
        texts = Engine(model, progress=False).generate(GENERATE, desc="")
    finally:
        model.close()
    assert model.info.name == str(adapter_dir) and f"merged: {answers['merged'].folder}" in model.info.source
    worst = max(abs(v[0] - h[0]) for v, h in zip(scores, answers["adapter"][0], strict=True))
    print(f"vllm (merged) vs hf (adapter): largest difference {worst:.3g} nats per candidate")
    assert worst < VLLM_TOLERANCE_NATS
    assert texts == answers["adapter"][1]

