"""Reward models on the vllm backend: single-label `*ForSequenceClassification` folders through vLLM's
pooling runner, with the hf backend's text conventions (models/reward.py: the caller's full text,
BOS rule, left truncation) and its pooling position.

A value-head checkpoint (the Starling-RM layout) has no vLLM model class: it runs on the hf backend.
"""

from __future__ import annotations

from collections.abc import Sequence

from globalign.errors import GlobalignError
from globalign.models.base import REWARD, ModelInfo
from globalign.models.fingerprint import combine
from globalign.models.hf import tokenizer_adds_bos
from globalign.models.packaged import PACKAGED_MODELS
from globalign.models.resolve import ModelSpec
from globalign.models.reward import (
    REWARD_CODE_VERSION,
    _check_classifier_config,
    _is_classifier_config,
    _load_tokenizer,
    _model_max_length,
    _TokenizedReward,
    _tokenizer_folder,
    _tokenizer_pad_id,
    _value_head_files,
    locate_reward_folder,
)
from globalign.models.vllm_backend import DEFAULT_REQUESTS_PER_CALL, engine_device, start_engine, stop_engine
from globalign.requests import RewardRequest

_USE_HF = "run it with backend hf (backend: hf in its model entry, or --backend hf)"


class VllmReward(_TokenizedReward):
    """reward = the classifier's one raw logit at the text's last token that is not the pad id: where
    transformers' sequence classifiers pool (their rightmost non-pad token), so trailing pad ids are
    dropped before vLLM, which pools at the last token it is given."""

    def __init__(self, spec: ModelSpec) -> None:
        from transformers import AutoConfig

        name = spec.name
        if name in PACKAGED_MODELS:
            raise GlobalignError(f"model '{name}' is a packaged language model, not a reward model; a language "
                                 "model can judge instead (the probes' option scorer: judge)")
        folder, source, folder_hash = locate_reward_folder(spec)
        if spec.kind == "value_head" or _value_head_files(folder):
            raise GlobalignError(f"reward model '{name}': a value-head checkpoint (v_head.weight, the Starling-RM "
                                 f"layout) has no vLLM model class; {_USE_HF}")
        if not _is_classifier_config(folder):
            raise GlobalignError(f"reward model '{name}': config.json names no *ForSequenceClassification "
                                 f"architecture, and backend vllm runs only single-label classifiers; {_USE_HF}")
        config = AutoConfig.from_pretrained(folder, trust_remote_code=spec.trust_remote_code)
        _check_classifier_config(config, name)
        tokenizer_folder, tokenizer_hash = _tokenizer_folder(folder, spec.tokenizer, spec)
        tokenizer = _load_tokenizer(tokenizer_folder, name, spec.trust_remote_code)
        pad_id = config.get_text_config().pad_token_id
        if pad_id is None:  # what the hf backend writes into the config (models/reward.py)
            pad_id = _tokenizer_pad_id(tokenizer)
        # The hf backend's truncation length by default; a smaller max_model_len (a big model's KV cache on
        # CPU) truncates more, and then long texts get other rewards than on hf.
        max_model_len = spec.option("max_model_len") or _model_max_length(config, tokenizer)
        max_length = min(_model_max_length(config, tokenizer), max_model_len)
        super().__init__(tokenizer, max_length=max_length, add_special_tokens=None, pad_id=pad_id,
                         device=engine_device(), batch_size=spec.batch_size, max_batch_tokens=0)
        content_hash = combine(folder_hash, tokenizer_hash)
        self.llm = start_engine(folder, spec, content_hash, max_model_len=max_model_len,
                                tokenizer=tokenizer_folder, runner="pooling")
        import vllm

        self.info = ModelInfo(
            name=name,
            backend="vllm",
            fingerprint=combine("vllm-reward", REWARD_CODE_VERSION, "classifier", content_hash, spec.dtype,
                                str(max_length)),
            source=source,
            dtype=spec.dtype,
            add_bos=tokenizer_adds_bos(tokenizer),
            details={"kind": "classifier", "architecture": ",".join(config.architectures or []),
                     "vllm": vllm.__version__, "device": self.device, "max_length": str(max_length),
                     "pad_token_id": str(pad_id), **{k: str(v) for k, v in spec.backend_options}},
        )
        self.requests_per_call = {REWARD: spec.option("requests_per_call", DEFAULT_REQUESTS_PER_CALL)}

    def reward(self, requests: Sequence[RewardRequest]) -> list[float]:
        from vllm import PoolingParams, TokensPrompt

        prompts = [TokensPrompt(prompt_token_ids=self._pooled_prefix(ids)) for ids in self._encode_all(requests)]
        # use_activation=False: the raw logit (vLLM applies a sigmoid to a one-label classifier by default).
        outputs = self.llm.classify(prompts, pooling_params=PoolingParams(use_activation=False), use_tqdm=False)
        return [float(output.outputs.probs[0]) for output in outputs]

    def _pooled_prefix(self, ids: list[int]) -> list[int]:
        """`ids` up to its last token that is not the pad id (transformers' pooling position; a causal
        model's state there does not depend on the tokens after it). All pads: the first token, as there."""
        end = len(ids)
        while end > 1 and ids[end - 1] == self.pad_id:
            end -= 1
        return ids[:end]

    def close(self) -> None:
        stop_engine(self.llm)
        self.llm = None
