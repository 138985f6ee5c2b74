"""Convert a GGUF file once into a plain safetensors folder, cached by the file's sha256.

transformers dequantises GGUF on every load (22-52 s here); the converted folder reloads in 2-4 s.
The folder is built in a temporary sibling and renamed into place, so a killed conversion leaves
nothing that looks finished.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from globalign.errors import GlobalignError
from globalign.models.fingerprint import file_sha256
from globalign.paths import cache_dir

MARKER = "globalign-conversion.json"
CONVERSION_VERSION = "1"


def read_gguf_add_bos(path: Path) -> bool:
    """Whether the GGUF's tokenizer metadata asks for a BOS token (transformers' conversion drops it)."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    field = reader.fields.get("tokenizer.ggml.add_bos_token")
    if field is None:
        return False
    return bool(field.parts[field.data[0]][0])


def converted_folder(gguf_path: Path) -> Path:
    """The safetensors folder for `gguf_path`, converting on first use."""
    if not gguf_path.is_file():
        raise GlobalignError(f"GGUF file not found: {gguf_path}")
    sha = file_sha256(gguf_path)
    target = cache_dir() / "converted" / sha[:24]
    if (target / MARKER).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        _convert(gguf_path, work)
        meta = {
            "source": str(gguf_path),
            "sha256": sha,
            "add_bos": read_gguf_add_bos(gguf_path),
            "conversion_version": CONVERSION_VERSION,
        }
        (work / MARKER).write_text(json.dumps(meta, indent=2), "utf-8")
        if target.exists():  # an unfinished folder from an older layout; replace it
            shutil.rmtree(target)
        os.replace(work, target)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return target


def conversion_meta(folder: Path) -> dict:
    return json.loads((folder / MARKER).read_text("utf-8"))


def _convert(gguf_path: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        quantised = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except Exception as exc:  # transformers raises many types for unsupported files
        raise GlobalignError(f"cannot load GGUF {gguf_path}: {exc}") from exc
    # A GGUF-loaded model refuses save_pretrained; copy its dequantised weights into a plain model.
    plain = AutoModelForCausalLM.from_config(quantised.config, dtype=torch.float32)
    plain.load_state_dict(quantised.state_dict())
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)
    config_path = out / "config.json"
    config = json.loads(config_path.read_text("utf-8"))
    # vLLM rejects the stale GGUF quantization_config; the weights are plain fp32 now.
    config.pop("quantization_config", None)
    config.pop("_model_name_or_path", None)
    config_path.write_text(json.dumps(config, indent=2), "utf-8")
