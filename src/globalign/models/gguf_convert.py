"""Convert a GGUF file once into a plain safetensors folder, cached by the file's sha256.

transformers dequantises GGUF on every load (22-52 s here); the converted folder reloads in 2-4 s.
The folder is built in a temporary sibling and renamed into place, so a killed conversion leaves
nothing that looks finished. Its marker records every file's size and sha256; each use checks them
(the hashes are memoised by size and mtime), and a damaged folder is converted again.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from globalign.errors import GlobalignError, first_line
from globalign.models.checks import ModelFileError, check_config, check_tokenizer_files, check_weights
from globalign.models.fingerprint import file_sha256
from globalign.paths import cache_dir

MARKER = "globalign-conversion.json"
CONVERSION_VERSION = "1"


def read_gguf_add_bos(path: Path) -> bool:
    """Whether the GGUF's tokenizer metadata asks for a BOS token (transformers' conversion drops it).
    Reading the metadata also checks that the file is a whole GGUF file, before a slow conversion."""
    import gguf

    try:
        reader = gguf.GGUFReader(str(path))
        field = reader.fields.get("tokenizer.ggml.add_bos_token")
        return False if field is None else bool(field.parts[field.data[0]][0])
    except Exception as exc:  # numpy and struct errors for a truncated file, ValueError for a foreign one
        raise _bad_gguf(path, exc) from exc


def _bad_gguf(path: Path, exc: BaseException) -> ModelFileError:
    return ModelFileError(
        f"{path} is truncated, damaged or not a GGUF model ({first_line(exc)}); download it again"
    )


def converted_folder(gguf_path: Path) -> Path:
    """The safetensors folder for `gguf_path`, converting on first use and again when it is damaged."""
    if not gguf_path.is_file():
        raise GlobalignError(f"GGUF file not found: {gguf_path}")
    sha = file_sha256(gguf_path)
    target = cache_dir() / "converted" / sha[:24]
    if target.exists():
        damage = verify_converted(target)
        if damage is None:
            return target
        _discard_damaged(target, damage, gguf_path)
    add_bos = read_gguf_add_bos(gguf_path)
    # A target still there here: another process finished first, or an older layout; it is replaced.
    with built_beside(target) as work:
        _convert(gguf_path, work)
        meta = {
            "source": str(gguf_path),
            "sha256": sha,
            "add_bos": add_bos,
            "conversion_version": CONVERSION_VERSION,
            "files": _file_manifest(work),
        }
        _write_marker(work, meta)
    return target


@contextmanager
def built_beside(target: Path) -> Iterator[Path]:
    """A temporary sibling folder of `target` to fill; when the block ends without an error it replaces
    `target` whole, so a killed or failed build leaves nothing that looks finished."""
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        yield work
        if target.exists():
            shutil.rmtree(target)
        os.replace(work, target)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def conversion_meta(folder: Path) -> dict:
    return json.loads((folder / MARKER).read_text("utf-8"))


def verify_converted(folder: Path) -> str | None:
    """Why a converted folder cannot be used (a file missing, cut short or changed), or None if sound.

    A folder converted before the marker listed its files is checked by its structure (config, tokenizer,
    safetensors headers against sizes); when sound, its files are recorded so later uses compare hashes."""
    try:
        meta = json.loads((folder / MARKER).read_text("utf-8"))
    except FileNotFoundError:
        return f"it has no {MARKER} (a conversion that did not finish)"
    except (OSError, ValueError) as exc:
        return f"its {MARKER} is unreadable ({first_line(exc)})"
    if not isinstance(meta, dict) or not isinstance(meta.get("sha256"), str) or "add_bos" not in meta:
        return f"its {MARKER} is incomplete"
    files = meta.get("files")
    if files is None:
        try:
            check_config(folder, trust_remote_code=False, auto_class="AutoModelForCausalLM")
            check_tokenizer_files(folder, folder.name)
            check_weights(folder, folder.name)
        except ModelFileError as exc:
            return str(exc)
        try:
            _write_marker(folder, {**meta, "files": _file_manifest(folder)})
        except OSError:
            pass  # a read-only cache: checked by structure each time
        return None
    if not isinstance(files, dict) or not files:
        return f"its {MARKER} lists no files"
    for name, recorded in files.items():
        path = folder / name
        try:
            size = path.stat().st_size
        except OSError:
            return f"{name} is missing"
        if not isinstance(recorded, dict) or size != recorded.get("size"):
            return f"{name} has {size} bytes, {recorded.get('size') if isinstance(recorded, dict) else '?'} expected"
        if file_sha256(path) != recorded.get("sha256"):
            return f"{name} does not match the sha256 recorded at conversion"
    return None


def _file_manifest(folder: Path) -> dict[str, dict]:
    return {
        p.name: {"size": p.stat().st_size, "sha256": file_sha256(p)}
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != MARKER
    }


def _write_marker(folder: Path, meta: dict) -> None:
    tmp = folder / f".{MARKER}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(meta, indent=2), "utf-8")
    os.replace(tmp, folder / MARKER)  # atomic: a reader sees the old marker or the new one


def _discard_damaged(target: Path, damage: str, gguf_path: Path) -> None:
    """Move a damaged conversion out of the way (then delete it); say which folder when that fails."""
    print(f"globalign: warning: converted model folder {target} is damaged ({damage}); "
          f"converting {gguf_path} again", file=sys.stderr)
    try:
        aside = Path(tempfile.mkdtemp(prefix=f".{target.name}-damaged-", dir=target.parent))
        os.replace(target, aside / target.name)
    except OSError as exc:
        raise GlobalignError(
            f"converted model folder {target} is damaged ({damage}) and cannot be moved aside "
            f"({first_line(exc)}); delete that folder and rerun"
        ) from exc
    shutil.rmtree(aside, ignore_errors=True)


def _convert(gguf_path: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        quantised = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except Exception as exc:  # transformers raises many types for unsupported files
        raise ModelFileError(
            f"cannot convert {gguf_path} ({first_line(exc)}): it is damaged, or an architecture that "
            "transformers cannot read from GGUF; download it again or use a safetensors folder"
        ) from exc
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
