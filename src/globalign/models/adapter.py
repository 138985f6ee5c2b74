"""PEFT LoRA adapters as models: a folder with `adapter_config.json` is a model id like any other.

Its base is named by the folder's `globalign-adapter.json` (`{"base": "<model id>"}`, what `globalign
intervene` writes, e.g. a packaged alias), else by `adapter_config.json`'s `base_model_name_or_path`; it
is located like any model id (models/resolve.py), and the adapter's content hash joins the base's. The hf
backend applies the adapter unmerged (PEFT's LoRA layers on the loaded base); the vllm backend loads a
merged copy made once in the cache (`merged_model`); a served model (openai) cannot take one.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from globalign.errors import GlobalignError, first_line
from globalign.models.gguf_convert import MARKER, built_beside
from globalign.paths import cache_dir
from globalign.store.atomic import write_json_atomically

if TYPE_CHECKING:
    from globalign.models.resolve import LocatedModel

ADAPTER_CONFIG = "adapter_config.json"
SIDECAR = "globalign-adapter.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
# Files of a base folder that a merged copy does not take over: the weights (the merged ones replace
# them) and globalign's record of a GGUF conversion (it describes the base's files, not the merge's).
_NOT_COPIED_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
_NOT_COPIED_NAMES = (MARKER, "model.safetensors.index.json", "pytorch_model.bin.index.json")


def is_adapter_folder(path: Path) -> bool:
    """Whether `path` is a PEFT adapter folder (it holds adapter_config.json)."""
    return path.is_dir() and (path / ADAPTER_CONFIG).is_file()


def write_adapter_sidecar(folder: Path, base: str) -> None:
    """Write `folder/globalign-adapter.json` naming the adapter's base as a model id that `run` accepts."""
    if not base:
        raise GlobalignError(f"adapter {folder}: the base model id is empty")
    write_json_atomically(folder / SIDECAR, {"base": base})  # a killed writer never leaves half a sidecar


def adapter_base(folder: Path) -> tuple[str, str]:
    """(the base's model id, the file that named it): the sidecar's `base`, else adapter_config.json's
    `base_model_name_or_path`. One-line errors for a folder that is not a usable LoRA adapter."""
    config = _read_object(folder / ADAPTER_CONFIG, folder)
    peft_type = config.get("peft_type")
    if peft_type != "LORA":
        raise GlobalignError(f"adapter {folder}: {ADAPTER_CONFIG} has peft_type {peft_type!r}; only LoRA "
                             "adapters (peft_type 'LORA') can be used as models")
    if not any((folder / name).is_file() for name in ADAPTER_WEIGHTS):
        raise GlobalignError(f"adapter {folder}: no adapter weights ({' or '.join(ADAPTER_WEIGHTS)})")
    if (folder / SIDECAR).is_file():
        base = _read_object(folder / SIDECAR, folder).get("base")
        where = SIDECAR
        field = "base"
    else:
        base = config.get("base_model_name_or_path")
        where = ADAPTER_CONFIG
        field = "base_model_name_or_path"
    if not isinstance(base, str) or not base.strip():
        raise GlobalignError(f"adapter {folder}: {where} names no base model ({field} is {base!r}); write "
                             f"{SIDECAR} with {{\"base\": \"<model id>\"}}")
    return base.strip(), where


def _read_object(path: Path, folder: Path) -> dict:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise GlobalignError(f"adapter {folder}: cannot read {path.name} ({first_line(exc)})") from exc
    if not isinstance(data, dict):
        raise GlobalignError(f"adapter {folder}: {path.name} is not a JSON object")
    return data


def apply_adapter(model, folder: Path, name: str):
    """`model` (a loaded transformers causal LM) with the LoRA adapter in `folder` applied, unmerged, in
    eval mode: the transformers model itself, its layers now PEFT's LoRA layers, so scoring and
    generation run the same code as for any model."""
    inner = _peft_model(model, folder, name).get_base_model()
    inner.eval()
    return inner


def _peft_model(model, folder: Path, name: str):
    try:
        from peft import PeftModel
    except ImportError as exc:
        raise GlobalignError(f"model '{name}': a LoRA adapter needs PEFT ({first_line(exc)}); install the "
                             "train extra: pip install 'globalign[train]'") from exc
    try:
        return PeftModel.from_pretrained(model, str(folder), is_trainable=False)
    except Exception as exc:  # PEFT raises many types for an adapter that does not fit its base
        raise GlobalignError(f"model '{name}': cannot apply the LoRA adapter {folder} to its base "
                             f"({first_line(exc)})") from exc


def merged_model(located: LocatedModel) -> LocatedModel:
    """The adapter model as a plain model folder: the base with the adapter merged, made once into
    `cache_dir()/merged/<content hash>/` (the hash covers base and adapter, so a changed adapter is a new
    folder). Same name, content hash and BOS rule, so its cached answers stay the adapter model's."""
    if located.adapter is None:
        return located
    target = cache_dir() / "merged" / located.content_hash
    if not (target / "config.json").is_file():
        merge_adapter(located, target)
    return replace(located, folder=target, adapter=None, source=f"{located.source} (merged: {target})")


def merge_adapter(located: LocatedModel, out: Path) -> Path:
    """Merge the adapter into its base (PEFT `merge_and_unload`) and save a Hugging Face folder at `out`
    (replaced whole when done, so a killed merge leaves nothing): the merged weights, the base's config,
    and the base's tokenizer files copied byte for byte (the same tokens as the unmerged model)."""
    import torch
    from transformers import AutoModelForCausalLM

    spec, base, adapter = located.spec, located.folder, located.adapter
    if base is None or adapter is None:
        raise GlobalignError(f"model '{spec.name}': not a LoRA adapter on a local base; nothing to merge")
    try:
        # float32 whatever the run's dtype: the merge is made once and should not round twice.
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, weights_only=True,
                                                     trust_remote_code=spec.trust_remote_code)
    except Exception as exc:  # transformers raises many types for bad files
        raise GlobalignError(f"model '{spec.name}': cannot load the base {base} to merge the adapter "
                             f"({first_line(exc)})") from exc
    merged = _peft_model(model, adapter, spec.name).merge_and_unload()
    with built_beside(out) as work:
        merged.save_pretrained(work)
        written = {p.name for p in work.iterdir()}
        for entry in sorted(base.iterdir()):
            if (entry.is_file() and entry.name not in written and entry.name not in _NOT_COPIED_NAMES
                    and entry.suffix not in _NOT_COPIED_SUFFIXES):
                shutil.copy2(entry, work / entry.name)
    return out
