"""Readable names for group codes and numbers in the report's units (a code without a name shows as itself)."""

from __future__ import annotations

import math

GROUP_NAMES = {
    "en_us": "US English", "en_in": "Indian English", "en_ng": "Nigerian English",
    "ar": "Arabic", "bn": "Bengali", "en": "English", "fi": "Finnish", "id": "Indonesian", "ko": "Korean",
    "ru": "Russian", "sw": "Swahili", "te": "Telugu", "all": "all items",
    "gallup_2017": "Gallup 2017", "gallup_2023": "Gallup 2023", "range": "best-minus-worst",
}


def group_name(code: str) -> str:
    return GROUP_NAMES.get(code, code)


def gap_name(group: str) -> str:
    """'en_us-en_in' -> 'the US-Indian English gap'; 'range' -> 'the best-minus-worst gap'."""
    if group == "range":
        return "the best-minus-worst gap"
    high, sep, low = group.partition("-")
    if not sep:
        return f"the {group_name(group)} gap"
    a, b = group_name(high), group_name(low)
    if a.endswith(" English") and b.endswith(" English"):
        return f"the {a.removesuffix(' English')}-{b} gap"
    return f"the {a}-{b} gap"


def metric_name(metric: str) -> str:
    return metric.replace("_", " ")


def scale(unit: str) -> tuple[float, str]:
    """(multiplier, unit word) for a declared unit: fractions are shown in points (x100)."""
    return (100.0, "points") if unit == "fraction" else (1.0, {"rank": "ranks", "nats": "nats"}.get(unit, ""))


def number(value: float, unit: str, *, signed: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    factor, _ = scale(unit)
    digits = 2 if unit in ("correlation", "reward", "nats") else 1
    return f"{factor * value:+.{digits}f}" if signed else f"{factor * value:.{digits}f}"


def p_text(p: float) -> str:
    if p is None or not math.isfinite(p):
        return "n/a"
    return f"{p:.2g}" if p >= 0.001 else f"{p:.1e}"
