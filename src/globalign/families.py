"""Families of checkpoints (base -> SFT -> preference-tuned) and the comparisons that measure alignment.

This is the one place that derives comparison pairs: `run`, `rescore`, `import-paper`, the manifest,
the "different families" notes and the report all take them from here. A family is an ordered list
of stages, each a model; its comparisons are every step (base -> sft, sft -> pt) and, when there is
a stage in between, the whole of it (base -> last stage). A model may be in several families (the
study's Llama-2 base is in two); a pair is compared once.

Stage names are the user's (`base`, `sft`, `pt`, or anything); a plain list of models
(`--model A --model B [--model C]`) is one family named `run` with stages `base`, then `aligned`
(two models) or `sft`, `pt` (three) or `stage2`, `stage3`, ... (more).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from globalign.errors import ConfigError

DEFAULT_FAMILY = "run"
STEP, WHOLE = "step", "whole"


@dataclass(frozen=True)
class Stage:
    name: str  # base, sft, pt, ...
    model: str  # the model's name as the user gave it


@dataclass(frozen=True)
class Family:
    name: str
    stages: tuple[Stage, ...]

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(stage.model for stage in self.stages)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "stages": [{"stage": s.name, "model": s.model} for s in self.stages]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Family:
        return cls(str(data["name"]), tuple(Stage(str(s["stage"]), str(s["model"])) for s in data["stages"]))


@dataclass(frozen=True)
class Comparison:
    """model_b - model_a on the same items: one step of a family, or the whole of it."""

    family: str
    model_a: str
    model_b: str
    stage_a: str
    stage_b: str
    kind: str  # STEP or WHOLE

    @property
    def pair(self) -> tuple[str, str]:
        return self.model_a, self.model_b

    def to_json(self) -> dict[str, str]:
        return {"family": self.family, "model_a": self.model_a, "model_b": self.model_b,
                "stage_a": self.stage_a, "stage_b": self.stage_b, "kind": self.kind}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Comparison:
        return cls(*(str(data[k]) for k in ("family", "model_a", "model_b", "stage_a", "stage_b", "kind")))


def default_stage_names(n: int) -> tuple[str, ...]:
    if n == 2:
        return ("base", "aligned")
    if n == 3:
        return ("base", "sft", "pt")
    return ("base", *(f"stage{i}" for i in range(2, n + 1)))[:n]


def one_family(models: Sequence[str], name: str = DEFAULT_FAMILY) -> Family:
    """A plain list of models, base first, as one family."""
    return Family(name, tuple(Stage(s, m) for s, m in zip(default_stage_names(len(models)), models)))


def comparisons(families: Iterable[Family]) -> list[Comparison]:
    """Every step of every family, then base -> last stage where a stage lies between; each pair once."""
    out: list[Comparison] = []
    seen: set[tuple[str, str]] = set()
    for family in families:
        stages = family.stages
        candidates = [(a, b, STEP) for a, b in pairwise(stages)]
        if len(stages) > 2:
            candidates.append((stages[0], stages[-1], WHOLE))
        for a, b, kind in candidates:
            if (a.model, b.model) not in seen and a.model != b.model:
                seen.add((a.model, b.model))
                out.append(Comparison(family.name, a.model, b.model, a.name, b.name, kind))
    return out


def pairs(families: Iterable[Family]) -> list[tuple[str, str]]:
    return [c.pair for c in comparisons(families)]


def explicit(pairs_given: Sequence[tuple[str, str]], families: Sequence[Family]) -> list[Comparison]:
    """Comparisons the user named (`compare:` / `--compare`), labelled with their family where one has both."""
    known = {c.pair: c for c in comparisons(families)}
    out = []
    for a, b in pairs_given:
        family = next((f for f in families if a in f.models and b in f.models), None)
        if (a, b) in known:
            out.append(known[(a, b)])
        elif family is not None:
            stage = {s.model: s.name for s in family.stages}
            out.append(Comparison(family.name, a, b, stage[a], stage[b], "chosen"))
        else:
            out.append(Comparison("", a, b, "", "", "chosen"))
    return out


def restricted(families: Iterable[Family], present: Iterable[str]) -> list[Family]:
    """The families' stages whose models are present (families left with fewer than two stages dropped)."""
    have = set(present)
    out = []
    for family in families:
        stages = tuple(s for s in family.stages if s.model in have)
        if len(stages) > 1:
            out.append(Family(family.name, stages))
    return out


def families_for(models: Sequence[str], known: Sequence[Family] = ()) -> list[Family]:
    """`known` families (the study's, say) restricted to `models` when any applies, else the models as one family."""
    chosen = restricted(known, models)
    if chosen:
        return chosen
    return [one_family(models)] if len(models) > 1 else []


def parse_families(raw: Any, where: str) -> list[tuple[str, list[tuple[str, Any]]]]:
    """A config's `families:` mapping {family: {stage: model spec}} (ordered) -> [(family, [(stage, spec)])].
    The model specs are validated by the config (they are the same as `models:` entries)."""
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{where}: must map a family name to its stages, e.g. "
                          "{zephyr: {base: mistralai/Mistral-7B-v0.1, sft: ..., pt: ...}}")
    out = []
    for name, stages in raw.items():
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{where}: a family name must be text, got {name!r}")
        if not isinstance(stages, dict) or len(stages) < 2:
            raise ConfigError(f"{where}.{name}: give at least two stages in order, as stage: model "
                              "(e.g. base: ..., sft: ..., pt: ...)")
        for stage in stages:
            if not isinstance(stage, str) or not stage.strip():
                raise ConfigError(f"{where}.{name}: a stage name must be text, got {stage!r}")
        out.append((name, list(stages.items())))
    return out
