"""Checks of a model folder's files before anything loads them: a damaged, truncated or foreign file is
one line naming the file and what to do, never a library's traceback.

What is checked without reading the weights: config.json (JSON, a `model_type` this transformers knows,
remote code only when allowed), the tokenizer files' presence, every safetensors header against the
file's size, every torch checkpoint with `weights_only=True` (memory-mapped: no weights read), and that
an index's shards exist. What slips through (a flipped byte inside the weights, a broken tokenizer.json)
fails at load, where `load_failure` words it.
"""

from __future__ import annotations

import json
import math
import pickle
import struct
import zipfile
from pathlib import Path

from globalign.errors import GlobalignError, first_line

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model",
                   "sentencepiece.bpe.model", "tokenizer.tiktoken")
TORCH_SUFFIXES = (".bin", ".pt", ".pth")
NOT_WEIGHTS = ("optim", "training_args", "rng_state", "scheduler", "trainer_state")
INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
_REDOWNLOAD = "download or copy the model again"
_MAX_HEADER = 100 * 1024 * 1024  # the safetensors library's own limit
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                "BOOL": 1, "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "C64": 8}


class ModelFileError(GlobalignError):
    """A model file that is damaged, truncated, missing or foreign (named in the message)."""


def read_json_object(path: Path, what_to_do: str = _REDOWNLOAD) -> dict:
    """A JSON file that must hold an object (config.json, an index): one line when it is not."""
    try:
        value = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ModelFileError(f"{path} is missing; {what_to_do}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"cannot read {path} ({first_line(exc)}); {what_to_do}") from None
    except ValueError as exc:
        raise ModelFileError(f"{path} is not valid JSON ({first_line(exc)}); {what_to_do}") from None
    if not isinstance(value, dict):
        raise ModelFileError(f"{path} does not hold a JSON object; {what_to_do}")
    return value


def check_config(folder: Path, *, trust_remote_code: bool, auto_class: str) -> dict:
    """config.json parsed, with an architecture this transformers can build (remote code only if allowed)."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    path = folder / "config.json"
    config = read_json_object(path)
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        raise ModelFileError(f"{path} has no model_type (not a transformers config); {_REDOWNLOAD}")
    auto_map = config.get("auto_map") if isinstance(config.get("auto_map"), dict) else {}
    remote = [str(auto_map[k]) for k in (auto_class, "AutoConfig") if auto_map.get(k)]
    if remote and trust_remote_code:
        _check_remote_code_files(folder, remote)
    if model_type in CONFIG_MAPPING:
        return config  # built-in code; an auto_map beside it is ignored, as transformers does without trust
    if remote:
        if not trust_remote_code:
            raise ModelFileError(
                f"{path}: model_type '{model_type}' needs the checkpoint's own Python code (auto_map); "
                "read that code, then pass --trust-remote-code (trust_remote_code: true in a config) to run it"
            )
        return config
    from transformers import __version__

    raise ModelFileError(
        f"{path}: unknown architecture (model_type '{model_type}') for transformers {__version__}; "
        "upgrade transformers, or check that this is the model you meant"
    )


def _check_remote_code_files(folder: Path, references: list[str]) -> None:
    """Each auto_map entry "module.Class" (not "repo--module.Class", fetched from the hub) needs module.py."""
    for reference in references:
        if "--" not in reference and "." in reference:
            module = folder / (reference.rsplit(".", 1)[0].replace(".", "/") + ".py")
            if not module.is_file():
                raise ModelFileError(
                    f"{folder / 'config.json'} names the code {reference} (auto_map), but {module} is missing; "
                    f"{_REDOWNLOAD}"
                )


def check_tokenizer_files(folder: Path, name: str) -> None:
    if not any((folder / f).is_file() for f in TOKENIZER_FILES):
        raise ModelFileError(
            f"model '{name}': {folder} has no tokenizer files ({', '.join(TOKENIZER_FILES[:3])}, ...); "
            "copy the tokenizer files of the checkpoint into it"
        )


def weight_files(folder: Path) -> list[Path]:
    """Top-level weight files, safetensors first, training state (optimizer, rng, args) left out."""
    files = [p for p in sorted(folder.iterdir()) if p.is_file() and not any(w in p.name for w in NOT_WEIGHTS)]
    return [p for p in files if p.suffix == ".safetensors"] + [p for p in files if p.suffix in TORCH_SUFFIXES]


def check_weights(folder: Path, name: str, *, require: bool = True) -> None:
    """Every weight file readable (headers and sizes), every shard an index names present; with
    `require`, at least one weight file."""
    for index_name in INDEX_FILES:
        index = folder / index_name
        if index.is_file():
            weight_map = read_json_object(index).get("weight_map")
            if not isinstance(weight_map, dict):
                raise ModelFileError(f"{index} has no weight_map; {_REDOWNLOAD}")
            for shard in sorted(set(map(str, weight_map.values()))):
                if not (folder / shard).is_file():
                    raise ModelFileError(f"{folder / shard} is missing (named in {index.name}); {_REDOWNLOAD}")
    files = weight_files(folder)
    if not files and require:
        raise ModelFileError(
            f"model '{name}': {folder} has no weight files (*.safetensors or pytorch_model.bin); {_REDOWNLOAD}"
        )
    for path in files:
        if path.suffix == ".safetensors":
            check_safetensors(path)
        else:
            check_torch_file(path)


def check_safetensors(path: Path) -> None:
    """The header is JSON and every tensor's bytes lie inside the file, which ends where the last one does."""
    damaged = f"{path} is truncated or not a safetensors file"
    size = path.stat().st_size
    try:
        with path.open("rb") as handle:
            prefix = handle.read(8)
            header_len = struct.unpack("<Q", prefix)[0] if len(prefix) == 8 else None
            if header_len is None or header_len > min(size - 8, _MAX_HEADER):
                raise ModelFileError(f"{damaged} (header length does not fit the file's {size} bytes); {_REDOWNLOAD}")
            header = json.loads(handle.read(header_len))
    except OSError as exc:
        raise ModelFileError(f"cannot read {path} ({first_line(exc)})") from None
    except (ValueError, UnicodeDecodeError):
        raise ModelFileError(f"{damaged} (its header is not JSON); {_REDOWNLOAD}") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{damaged} (its header is not a JSON object); {_REDOWNLOAD}")
    end = 0
    for tensor, entry in header.items():
        if tensor == "__metadata__":
            continue
        try:
            start, stop = entry["data_offsets"]
            expected = math.prod(entry["shape"]) * _DTYPE_BYTES.get(entry["dtype"], 0)
        except (TypeError, KeyError, ValueError):
            raise ModelFileError(f"{damaged} (tensor '{tensor}' has no valid offsets); {_REDOWNLOAD}") from None
        if entry["dtype"] in _DTYPE_BYTES and stop - start != expected:
            raise ModelFileError(f"{damaged} (tensor '{tensor}' has the wrong number of bytes); {_REDOWNLOAD}")
        end = max(end, stop)
    if 8 + header_len + end != size:
        raise ModelFileError(
            f"{damaged} (the header needs {8 + header_len + end} bytes, the file has {size}); {_REDOWNLOAD}"
        )


def load_torch_state(path: Path, *, mmap: bool = True):
    """torch.load with weights_only=True (never plain pickle), memory-mapped when the file is a zip archive;
    a refused pickle or a damaged file is one line naming the file."""
    import torch

    is_zip = zipfile.is_zipfile(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap and is_zip)
    except pickle.UnpicklingError as exc:
        detail = next((line.strip() for line in str(exc).splitlines() if "WeightsUnpickler error" in line),
                      first_line(exc)).split(". ")[0]  # "...: Unsupported global: GLOBAL builtins.exec ..."
        raise ModelFileError(
            f"{path} is a pickle that loading with weights_only=True refuses ({detail}): it holds more than "
            "tensors; use a safetensors copy of the checkpoint, or convert it in a Python session you trust"
        ) from None
    except Exception as exc:  # a truncated zip, a damaged legacy file: torch raises several types
        with path.open("rb") as handle:
            cut_zip = handle.read(4) == b"PK\x03\x04" and not is_zip
        detail = "a zip archive without its end" if cut_zip else first_line(exc)
        raise ModelFileError(f"{path} is truncated or not a torch checkpoint ({detail}); {_REDOWNLOAD}") from exc


def check_torch_file(path: Path) -> None:
    load_torch_state(path)


def check_model_folder(folder: Path, name: str, *, trust_remote_code: bool, auto_class: str,
                       tokenizer: bool = True) -> None:
    """Everything a load of this folder needs, checked before the load: config, tokenizer, weights."""
    check_config(folder, trust_remote_code=trust_remote_code, auto_class=auto_class)
    if tokenizer:
        check_tokenizer_files(folder, name)
    check_weights(folder, name)


def load_failure(name: str, what: str, folder: Path, exc: BaseException) -> ModelFileError:
    """What a failed transformers load becomes: one line naming the folder, the part and the fix."""
    return ModelFileError(
        f"model '{name}': cannot load the {what} from {folder} ({first_line(exc)}); "
        f"check its files or {_REDOWNLOAD}"
    )
