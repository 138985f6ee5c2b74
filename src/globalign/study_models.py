"""The study's checkpoints (PROTOCOL.md, "Models") and which comparisons measure alignment.

Used to pick the families (and so the comparisons, families.py) when re-scoring the study's outputs:
each step of a family (base -> SFT, SFT -> preference-tuned) and the whole of it (base -> final).
"""

from __future__ import annotations

from collections.abc import Sequence

from globalign.families import Family, Stage, default_stage_names, families_for, pairs, restricted

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


def study_families() -> list[Family]:
    """The study's six families, stages named base, then sft and pt (three checkpoints) or aligned (two)."""
    return [Family(name, tuple(Stage(stage, model) for stage, model in zip(default_stage_names(len(chain)), chain)))
            for name, chain in STUDY_FAMILIES.items()]


def study_pairs(models: Sequence[str]) -> list[tuple[str, str]]:
    """(earlier, later) checkpoint pairs of the study's families among `models`, without repeats:
    every step, then base -> final where a family has an SFT step in between (families.py)."""
    return pairs(restricted(study_families(), models))


def default_families(models: Sequence[str]) -> list[Family]:
    """The study's families when the models are its checkpoints, else the models (first = base) as one family."""
    return families_for(models, study_families())


def default_pairs(models: Sequence[str]) -> list[tuple[str, str]]:
    return pairs(default_families(models))
