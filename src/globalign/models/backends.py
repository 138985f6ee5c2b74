"""The backends a model can run on, by name: what each is, the options it takes, and how it loads.

    hf      transformers in this process (CPU or one GPU); the default
    vllm    vLLM in this process (`vllm.LLM`): GPUs with tensor parallelism, several nodes through its
            Ray executor, or the CPU build (`make vllm`)
    openai  a served model behind an OpenAI-compatible API (vLLM's server, llama.cpp's server, a hosted API)

Loaders are named as "module:function" and imported only when a model needs them, so that the optional
engines (vLLM) are not imported by a run that does not use them. A loader takes a `LocatedModel`
(models/resolve.py) and returns a `LanguageModel` or a `RewardModel` (models/base.py).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from globalign.errors import ConfigError, GlobalignError, unknown_name

DEFAULT_BACKEND = "hf"


@dataclass(frozen=True)
class BackendOption:
    """One option a backend takes (`backend_options:` in a model entry, `--backend-option K=V`)."""

    kind: type  # int, float, str or bool
    help: str


@dataclass(frozen=True)
class Backend:
    name: str
    summary: str
    language_model: str  # "module:function" loading a LanguageModel
    reward_model: str | None = None  # "module:function" loading a RewardModel, None: not supported
    needs_files: bool = True  # False: the model lives on a server, nothing is located on disk
    options: Mapping[str, BackendOption] = field(default_factory=dict)


BACKENDS: dict[str, Backend] = {
    "hf": Backend(
        "hf", "transformers in this process (CPU or one GPU)",
        "globalign.models.resolve:load_transformers", "globalign.models.reward:load_reward_spec",
    ),
    "vllm": Backend(
        "vllm", "vLLM in this process: GPUs (tensor parallel), nodes (its Ray executor) or its CPU build",
        "globalign.models.vllm_backend:load_vllm", "globalign.models.vllm_backend:load_vllm_reward",
        options={
            "tensor_parallel_size": BackendOption(int, "GPUs one model is split over (default 1)"),
            "pipeline_parallel_size": BackendOption(int, "pipeline stages, e.g. one per node (default 1)"),
            "gpu_memory_utilization": BackendOption(float, "share of each GPU's memory vLLM may take (0.9)"),
            "max_model_len": BackendOption(int, "longest prompt + continuation in tokens (default 4096)"),
            "max_num_seqs": BackendOption(int, "sequences vLLM schedules at once"),
            "distributed_executor_backend": BackendOption(str, "'mp' (one node) or 'ray' (several nodes)"),
            "requests_per_call": BackendOption(int, "requests handed to vLLM per call (default 2048)"),
            "enforce_eager": BackendOption(bool, "no CUDA graphs / torch.compile (default true on CPU)"),
        },
    ),
    "openai": Backend(
        "openai", "a served model behind an OpenAI-compatible API",
        "globalign.models.openai_backend:load_openai", None, needs_files=False,
        options={
            "base_url": BackendOption(str, "the API root, e.g. http://127.0.0.1:8000/v1 (required)"),
            "api_key_env": BackendOption(str, "environment variable holding the API key (default OPENAI_API_KEY; "
                                              "the key is never written to the manifest or logs)"),
            "api": BackendOption(str, "where generations go: 'completions' (default) or 'chat' (the server renders "
                                      "chat prompts); scores always use /completions"),
            "tokenizer": BackendOption(str, "local tokenizer folder or packaged alias: prompts go as token ids (the "
                                            "study's exact tokenisation) and chat prompts are rendered here"),
            "max_concurrency": BackendOption(int, "requests in flight at once (default 8)"),
            "timeout": BackendOption(float, "seconds per request before it is retried (default 120)"),
            "max_retries": BackendOption(int, "retries of a 429, 5xx or dropped connection (default 6)"),
        },
    ),
}


def get_backend(name: str) -> Backend:
    if name not in BACKENDS:
        raise unknown_name("backend", name, BACKENDS)
    return BACKENDS[name]


def check_backend_options(backend: str, options: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The options as their declared types; an unknown option or a wrong type is a ConfigError at `where`."""
    known = get_backend(backend).options
    checked: dict[str, Any] = {}
    for key, value in options.items():
        if key not in known:
            if not known:
                raise ConfigError(f"{where}: backend '{backend}' takes no options, got '{key}'")
            raise ConfigError(f"{where}: {unknown_name(f'option of backend {backend}', key, known)}")
        kind = known[key].kind
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(f"{where}.{key}: must be {kind.__name__}, got {value!r}")
        checked[key] = value
    return checked


def _load(target: str):
    module, function = target.split(":")
    try:
        return getattr(importlib.import_module(module), function)
    except ImportError as exc:
        backend = module.rsplit(".", 1)[-1].removesuffix("_backend")
        raise GlobalignError(f"backend '{backend}' is not installed here ({exc.name or exc}): "
                             f"see docs/backends.md for how to install it") from exc


def language_model_loader(backend: str):
    return _load(get_backend(backend).language_model)


def reward_model_loader(backend: str, model: str):
    target = get_backend(backend).reward_model
    if target is None:
        supported = ", ".join(b.name for b in BACKENDS.values() if b.reward_model)
        raise GlobalignError(f"reward model '{model}': backend '{backend}' cannot run reward models; use {supported}")
    return _load(target)
