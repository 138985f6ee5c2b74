"""Turn the model id a user gives into a loaded backend.

Accepted: a packaged alias (`smollm2-135m-instruct`, `gemma-3-270m`), a local HF folder, a GGUF file
(converted once to a safetensors cache), a Hugging Face hub id (`owner/name`, online only), or a PEFT LoRA
adapter folder on any of these (models/adapter.py).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from globalign.errors import GlobalignError, first_line, unknown_name
from globalign.models.adapter import adapter_base, is_adapter_folder
from globalign.models.backends import get_backend, language_model_loader
from globalign.models.base import LanguageModel
from globalign.models.checks import check_model_folder
from globalign.models.fingerprint import combine, folder_sha256
from globalign.models.gguf_convert import conversion_meta, converted_folder
from globalign.models.packaged import PACKAGED_MODELS, packaged_gguf_path

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_HUB_FILES = ["*.json", "*.safetensors", "tokenizer*", "*.model", "*.jinja", "*.txt"]


# What a model entry is: a language model ("lm"), or a trained reward model: "reward" detects the
# layout (value head or classifier, models/reward.py), "classifier" / "value_head" name it.
MODEL_KINDS = ("lm", "reward", "classifier", "value_head")
REWARD_KINDS = ("reward", "classifier", "value_head")


@dataclass(frozen=True)
class ModelSpec:
    """How to load one model: what the config's `models:` entries and `--model` flags become."""

    name: str
    kind: str = "lm"
    tokenizer: str | None = None  # reward models whose folder ships none (Starling-RM-7B-alpha)
    dtype: str = "float32"
    revision: str | None = None  # hub revision (branch, tag or commit)
    trust_remote_code: bool = False  # only when the user asks for it
    batch_size: int = 32
    device: str | None = None
    threads: int | None = None
    backend: str = "hf"  # models/backends.py: hf, vllm, openai
    backend_options: tuple[tuple[str, Any], ...] = ()  # (option, value), checked against the backend's list

    @property
    def is_reward_model(self) -> bool:
        return self.kind in REWARD_KINDS

    def option(self, key: str, default: Any = None) -> Any:
        return dict(self.backend_options).get(key, default)


@dataclass(frozen=True)
class LocatedModel:
    """A model's files found on disk (downloaded or converted if needed), not yet loaded. A served model
    (backend openai) has no files: `folder` is None and `source` its server. A LoRA adapter's model is its
    base's files (`folder`, `add_bos`, `family`) plus `adapter`, the adapter folder; its `content_hash`
    covers both."""

    spec: ModelSpec
    folder: Path | None
    source: str
    content_hash: str
    add_bos: bool | None  # None: ask the tokenizer
    family: str
    adapter: Path | None = None  # a PEFT LoRA adapter folder applied on top of `folder`


def locate_model(spec: ModelSpec) -> LocatedModel:
    """Find (and if needed convert or download) a model's files; fails fast on an unknown name."""
    path = Path(spec.name).expanduser()
    if not get_backend(spec.backend).needs_files:
        if is_adapter_folder(path):
            raise GlobalignError(f"model '{spec.name}': a LoRA adapter folder cannot run on backend "
                                 f"'{spec.backend}' (a served model has no local files); serve it merged or as "
                                 "the server's LoRA module and name the served model, or use --backend hf / vllm")
        return LocatedModel(spec, None, str(spec.option("base_url", "")), "", None, "")
    if is_adapter_folder(path):
        return _locate_adapter(spec, path)
    return LocatedModel(spec, *_locate(spec))


def _locate_adapter(spec: ModelSpec, folder: Path) -> LocatedModel:
    """The adapter's base located like any model id, with the adapter on top."""
    base_name, named_in = adapter_base(folder)
    if is_adapter_folder(Path(base_name).expanduser()):
        raise GlobalignError(f"adapter {folder}: its base '{base_name}' ({named_in}) is itself an adapter; "
                             "merge that one first")
    try:
        base, source, base_hash, add_bos, family = _locate(replace(spec, name=base_name))
    except GlobalignError as exc:
        raise GlobalignError(f"adapter {folder}: its base model '{base_name}' ({named_in}) cannot be found: "
                             f"{first_line(exc)}") from exc
    return LocatedModel(spec, base, f"{source} + LoRA adapter {folder.resolve()}",
                        combine(base_hash, folder_sha256(folder)), add_bos, family, adapter=folder)


def load_model(spec: ModelSpec | LocatedModel) -> LanguageModel:
    """The model on its spec's backend (models/backends.py)."""
    located = spec if isinstance(spec, LocatedModel) else locate_model(spec)
    return language_model_loader(located.spec.backend)(located)


def load_transformers(located: LocatedModel) -> LanguageModel:
    """The `hf` backend's loader."""
    from globalign.models.hf import TransformersModel

    spec = located.spec
    assert located.folder is not None
    return TransformersModel(
        located.folder,
        name=spec.name,
        source=located.source,
        content_hash=located.content_hash,
        dtype=spec.dtype,
        add_bos=located.add_bos,
        family=located.family,
        device=spec.device,
        threads=spec.threads,
        batch_size=spec.batch_size,
        trust_remote_code=spec.trust_remote_code,
        adapter=located.adapter,
    )


def _locate(spec: ModelSpec) -> tuple[Path, str, str, bool | None, str]:
    """(folder, source description, content hash, add_bos or None to ask the tokenizer, family)."""
    name = spec.name
    if name in PACKAGED_MODELS:
        gguf = packaged_gguf_path(name)
        folder = converted_folder(gguf)
        meta = conversion_meta(folder)
        return folder, f"{gguf} (converted: {folder})", meta["sha256"], meta["add_bos"], PACKAGED_MODELS[name].family
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise GlobalignError(f"model '{name}': GGUF file not found")
        folder = converted_folder(path)
        meta = conversion_meta(folder)
        return folder, f"{path} (converted: {folder})", meta["sha256"], meta["add_bos"], ""
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise GlobalignError(f"model '{name}': folder has no config.json (not a Hugging Face model folder)")
        _check_lm_folder(path, spec)
        return path, str(path.resolve()), folder_sha256(path), None, ""
    if _HUB_ID.match(name) and not path.exists():
        folder = _download(name, spec.revision)
        _check_lm_folder(folder, spec)
        # snapshot folders are named by commit: the hub's content address is our content hash.
        return folder, f"hub:{name}@{folder.name}", f"hub:{name}@{folder.name}", None, ""
    if path.exists():
        raise GlobalignError(f"model '{name}': a file that is not a .gguf; give a Hugging Face model folder (with "
                             "config.json), a .gguf file, a packaged alias or a hub id")
    if _looks_like_a_path(name):
        raise GlobalignError(f"model '{name}': no such file or folder")
    raise unknown_name("model", name, PACKAGED_MODELS)


def _looks_like_a_path(name: str) -> bool:
    """`./m`, `/models/m`, `~/m`, `a/b/c`: meant as a local path (a hub id is exactly `owner/name`)."""
    return name.startswith((".", "~", os.sep)) or name.count("/") > 1


def _check_lm_folder(folder: Path, spec: ModelSpec) -> None:
    check_model_folder(folder, spec.name, trust_remote_code=spec.trust_remote_code,
                       auto_class="AutoModelForCausalLM")


def _download(repo_id: str, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=_HUB_FILES))
    except Exception as exc:  # offline, gated, missing: the hub client raises many types
        raise GlobalignError(
            f"model '{repo_id}': cannot fetch from the Hugging Face hub ({first_line(exc)}); "
            "pass a local folder or GGUF file instead"
        ) from exc
