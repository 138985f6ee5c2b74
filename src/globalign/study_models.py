"""The study's checkpoints (PROTOCOL.md, "Models") and which comparisons measure alignment.

Used to pick comparison pairs when re-scoring the study's outputs: each step of a family
(base -> SFT, SFT -> preference-tuned) and the whole of it (base -> final checkpoint).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

# family -> checkpoints in training order (base first)
STUDY_FAMILIES: dict[str, tuple[str, ...]] = {
    "Llama -> Llama Chat": ("meta-llama/Llama-2-7b-hf", "meta-llama/Llama-2-7b-chat-hf"),
    "Llama -> Tulu": ("meta-llama/Llama-2-7b-hf", "allenai/tulu-2-7b", "allenai/tulu-2-dpo-7b"),
    "Mistral -> Zephyr": ("mistralai/Mistral-7B-v0.1", "HuggingFaceH4/mistral-7b-sft-beta",
                          "HuggingFaceH4/zephyr-7b-beta"),
    "Mistral -> Starling": ("mistralai/Mistral-7B-v0.1", "openchat/openchat_3.5", "berkeley-nest/Starling-LM-7B-alpha"),
    "Qwen": ("Qwen/Qwen1.5-7B", "Qwen/Qwen1.5-7B-Chat"),
    "Yi": ("01-ai/Yi-6B", "01-ai/Yi-6B-Chat"),
}


# The study's short names in its output file and folder names (paper_outputs/README.md) -> hub ids.
# "yi-8b" is Yi-6B: the study's names say 8b, its scripts load 01-ai/Yi-6B.
STUDY_SHORT_NAMES: dict[str, str] = {
    "Llama-2-7b-hf": "meta-llama/Llama-2-7b-hf",
    "Llama-2-7b-chat-hf": "meta-llama/Llama-2-7b-chat-hf",
    "Mistral-7B-v0.1": "mistralai/Mistral-7B-v0.1",
    "Mistral-SFT-7B": "HuggingFaceH4/mistral-7b-sft-beta",
    "zephyr-7b-beta": "HuggingFaceH4/zephyr-7b-beta",
    "OpenChat3.5": "openchat/openchat_3.5",
    "OpenChat3.5-7B": "openchat/openchat_3.5",
    "starling-alpha-7b": "berkeley-nest/Starling-LM-7B-alpha",
    "Starling-7B-alpha": "berkeley-nest/Starling-LM-7B-alpha",
    "Tulu-2-SFT": "allenai/tulu-2-7b",
    "Tulu-2-DPO": "allenai/tulu-2-dpo-7b",
    "qwen1.5": "Qwen/Qwen1.5-7B",
    "qwen1.5_chat": "Qwen/Qwen1.5-7B-Chat",
    "yi-8b": "01-ai/Yi-6B",
    "yi-8b-chat": "01-ai/Yi-6B-Chat",
}


def study_model_id(folder_or_stem: str) -> str | None:
    """`{Llama-2-7b-hf_8bit}` or `Llama-2-7b-hf_8bit` -> `meta-llama/Llama-2-7b-hf`; None if not the study's."""
    name = folder_or_stem.strip("{}")
    name = name.removesuffix("_8bit")
    return STUDY_SHORT_NAMES.get(name)


def study_pairs(models: Sequence[str]) -> list[tuple[str, str]]:
    """(earlier, later) checkpoint pairs of the study's families among `models`, without repeats:
    every step, then base -> final where a family has an SFT step in between."""
    present = set(models)
    pairs: list[tuple[str, str]] = []
    for chain in STUDY_FAMILIES.values():
        chain = tuple(m for m in chain if m in present)
        candidates = list(pairwise(chain))
        if len(chain) > 2:
            candidates.append((chain[0], chain[-1]))
        pairs += [p for p in candidates if p not in pairs]
    return pairs


def default_pairs(models: Sequence[str]) -> list[tuple[str, str]]:
    """The study's family pairs when the models are the study's checkpoints, else every model vs the first."""
    pairs = study_pairs(models)
    if pairs:
        return pairs
    return [(models[0], m) for m in models[1:]]
