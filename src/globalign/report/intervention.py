"""The report's intervention section: each arm's mix next to its effect.

An intervention's run folder holds `intervention.json` (intervene/run.py). For every arm, one table row per
language: the examples of that language in the arm's mix, and the paired change of every tydiqa metric from
the base to the arm on the held-out items (delta, 95% CI, p_holm), then what training did (steps, loss from
the first to the last step, the first-step check, time). Every text from the manifest is escaped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from globalign.errors import GlobalignError
from globalign.records import ComparisonRow
from globalign.report.labels import group_name

MANIFEST = "intervention.json"
SCHEMA = "globalign.intervention"
EFFECT_TASK, EFFECT_METRIC = "tydiqa", "f1"


def esc(text: object) -> str:
    # sections.esc's rule; not imported from there (sections imports the report's inputs, which read this file)
    return escape(str(text), quote=True)


def read_intervention(folder: Path) -> dict[str, Any] | None:
    """The folder's intervention manifest, None when it has none; a damaged one is a one-line error."""
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise GlobalignError(f"{path}: not a readable intervention manifest ({type(exc).__name__})") from None
    if not isinstance(value, dict) or value.get("schema") != SCHEMA or not isinstance(value.get("arms"), dict):
        raise GlobalignError(f"{path}: not a globalign intervention manifest")
    return value


def _mix_languages(mix: Mapping[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for by_language in (mix.get("counts") or {}).values():
        if isinstance(by_language, dict):
            for language, n in by_language.items():
                counts[str(language)] = counts.get(str(language), 0) + int(n)
    return counts


def _cell(row: ComparisonRow | None, factor: float) -> str:
    if row is None:
        return "<td>-</td>"
    significant = row.p_adjusted < 0.05
    return (f'<td class="{"sig" if significant else "ns"}">{factor * row.delta:+.1f} '
            f"[{factor * row.ci_low:+.1f}, {factor * row.ci_high:+.1f}]<br>p_holm {row.p_adjusted:.2g}, n {row.n}</td>")


def _arm_table(name: str, arm: Mapping[str, Any], base: str, comparisons: Sequence[ComparisonRow],
               factor: float, unit: str) -> str:
    adapter = str(arm.get("adapter", ""))
    effects = {r.group: r for r in comparisons if r.task == EFFECT_TASK and r.metric == EFFECT_METRIC
               and r.model_a == base and r.model_b == adapter}
    mix = arm.get("mix") or {}
    in_mix = _mix_languages(mix)
    groups = list(dict.fromkeys([*(g for g in effects if g != "all"), *in_mix]))
    rows = "".join(f"<tr><th scope=\"row\">{esc(group_name(g))}</th><td>{in_mix.get(g, 0):,}</td>"
                   f"{_cell(effects.get(g), factor)}</tr>" for g in groups)
    if "all" in effects:
        rows += f"<tr><th scope=\"row\">all questions</th><td>{sum(in_mix.values()):,}</td>{_cell(effects['all'], factor)}</tr>"
    training = arm.get("training") or {}
    recipe = arm.get("recipe") or {}
    first, last = training.get("first_step_loss"), training.get("final_loss")
    losses = f"{first:.3f} -> {last:.3f}" if isinstance(first, int | float) and isinstance(last, int | float) else "-"
    audit = arm.get("audit") or {}
    non_english = (audit.get("non_english_share") or {}).get("agree")
    facts = [f"{training.get('steps', '?')} steps of {recipe.get('batch_size', '?')}x{recipe.get('grad_accum', 1)}",
             f"method {recipe.get('method', '?')}, LoRA r={recipe.get('lora_r', '?')}",
             (f"loss {losses} (base NLL {training.get('base_nll', float('nan')):.3f}; first-step check "
             f"{training.get('first_step_check', '?')})"),
             f"{training.get('tokens', 0):,} tokens in {training.get('seconds', 0):.0f} s"
             + (" (adapter reused)" if training.get("reused") else "")]
    if isinstance(non_english, int | float):
        facts.append(f"audit: {non_english:.1%} of the mix's messages non-English (both identifiers agree)")
    return (f"<h3>Arm {esc(name)}</h3><p class=\"src\">{esc('; '.join(facts))}<br>adapter {esc(adapter)}</p>"
            f"<table><thead><tr><th>language</th><th>examples in the mix</th><th>change in TyDi QA {EFFECT_METRIC} "
            f"from the base ({esc(unit) or 'value'}; held-out items; 95% CI)</th></tr></thead><tbody>{rows}</tbody></table>")


def intervention_section(manifest: Mapping[str, Any], comparisons: Sequence[ComparisonRow],
                         factor: float = 1.0, unit: str = "") -> str:
    """`factor` and `unit`: how the report shows the effect metric (labels.scale of its declared unit)."""
    base = str((manifest.get("base") or {}).get("name", ""))
    split = manifest.get("split") or {}
    intro = (f"<p>Each arm fine-tunes <b>{esc(base)}</b> with LoRA on its own mix; every arm is measured against the "
             f"base on TyDi QA articles held out of every mix ({esc(split.get('eval_fraction', '?'))} of the articles, "
             f"split seed {esc(split.get('seed', '?'))}). Bold on a tint: p_holm &lt; 0.05 (Holm across the languages "
             "of one pair). The mixes' audits are in the data audit section.</p>")
    arms = "".join(_arm_table(str(n), a, base, comparisons, factor, unit) for n, a in (manifest.get("arms") or {}).items()
                   if isinstance(a, dict))
    return f'<section id="intervention"><h2>Intervention</h2>{intro}{arms}</section>'
