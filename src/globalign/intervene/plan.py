"""`globalign intervene --dry-run`: what each arm trains on (examples per source and language), its steps,
tokens and estimated time, and the evaluation's plan, without loading a model (only the base's tokenizer)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from globalign.data.locate import resolve_data_dir
from globalign.intervene.config import Arm, InterventionConfig
from globalign.intervene.mix import Mix, build_mix
from globalign.models.resolve import locate_model
from globalign.plan import format_plan, model_params, plan_run, tokens_per_second

# LoRA training throughput measured on the 2-core development machine (float32, r=16 on q/k/v/o, batch 4,
# TRL's trainer, load ~1.5; docs/interventions.md). gemma-3's 262k-token vocabulary dominates its cost.
MEASURED_TRAIN_TOKENS_PER_S = {"gemma-3-270m": 59.0, "smollm2-135m-instruct": 147.0}
# Elsewhere: a training step costs about three forward passes (forward, backward through the activations),
# so a quarter of the planner's forward rate, rounded down for the optimizer and the LoRA layers.
TRAIN_VS_FORWARD = 0.25


@dataclass(frozen=True)
class ArmPlan:
    arm: Arm
    mix: Mix
    examples_used: int
    examples_dropped: int  # longer than the recipe's max_length
    tokens_per_epoch: int
    steps: int
    tokens: int  # trained on, all epochs
    seconds: float
    rate_source: str


def train_rate(base: str) -> tuple[float, str]:
    if base in MEASURED_TRAIN_TOKENS_PER_S:
        return MEASURED_TRAIN_TOKENS_PER_S[base], "measured on 2 CPU cores"
    return tokens_per_second(model_params(base)) * TRAIN_VS_FORWARD, "estimated from the model's size (GPU)"


def plan_arm(arm: Arm, mix: Mix, count: Callable[[str], int], base: str) -> ArmPlan:
    lengths = [count(e.prompt) + max(count(e.completion or e.chosen), count(e.rejected) if e.rejected else 0)
               for e in mix.examples]
    kept = [n for n in lengths if n <= arm.recipe.max_length]
    per_step = arm.recipe.batch_size * arm.recipe.grad_accum
    if arm.recipe.max_steps is not None:
        steps = arm.recipe.max_steps
        epochs = steps * per_step / max(1, len(kept))
    else:
        epochs = arm.recipe.epochs
        steps = math.ceil(len(kept) / per_step * epochs) if kept else 0
    factor = 2 if arm.recipe.method == "dpo" else 1  # DPO runs chosen and rejected
    tokens = round(sum(kept) * epochs * factor)
    rate, source = train_rate(base)
    return ArmPlan(arm, mix, len(kept), len(lengths) - len(kept), sum(kept), steps, tokens, tokens / rate, source)


def _tokenizer_counter(config: InterventionConfig) -> tuple[Callable[[str], int], str]:
    from transformers import AutoTokenizer

    located = locate_model(config.base)
    tokenizer = AutoTokenizer.from_pretrained(located.folder)
    bos = 1 if located.add_bos else 0  # the BOS the packaged gemma needs and its tokenizer may not add
    return (lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"]) + bos), \
        f"the base's tokenizer ({located.folder})"


def dry_run(config: InterventionConfig, count: Callable[[str], int] | None = None) -> list[str]:
    """The plan, as lines to print."""
    from globalign.pipeline import build_tasks

    data_dir = resolve_data_dir(config.data_dir)
    counter = "given counter"
    if count is None:
        count, counter = _tokenizer_counter(config)
    lines = [(f"Intervention plan (dry run; no model loaded): base {config.base.name}, {len(config.arms)} arm(s); "
             f"output {config.output}"),
             (f"  split: TyDi QA articles, {config.split.eval_fraction:.0%} held out for evaluation "
             f"(seed {config.split.seed}); tokens counted with {counter}")]
    plans = [plan_arm(arm, build_mix(arm.mix, data_dir, config.split), count, config.base.name) for arm in config.arms]
    for plan in plans:
        lines += _arm_lines(plan)
    total = sum(p.seconds for p in plans)
    lines.append(f"  training, all arms: {sum(p.steps for p in plans):,} steps, {sum(p.tokens for p in plans):,} tokens, "
                 f"about {_duration(total)} ({plans[0].rate_source if plans else ''})")
    eval_config = config.eval_config()
    _, tasks, notes = build_tasks(eval_config)
    model_plans, eval_counter = plan_run(eval_config, tasks)
    # the adapters do not exist yet: each is sized by its base (plan.model_params reads a name)
    base_params = model_params(config.base.name)
    model_plans = [p if p.model == config.base.name else replace(p, params=base_params) for p in model_plans]
    lines += ["Evaluation (base and every arm, each arm's adapter over the base):"]
    lines += ["  " + line for line in format_plan(eval_config, model_plans, eval_counter)]
    lines += [f"  Note: {n}" for n in notes]
    return lines


def _arm_lines(plan: ArmPlan) -> list[str]:
    recipe = plan.arm.recipe
    lines = [(f"  arm {plan.arm.name}: {len(plan.mix.examples)} examples (seed {plan.arm.mix.seed}), method {recipe.method}, "
             f"LoRA r={recipe.lora_r} alpha={recipe.lora_alpha} on {','.join(recipe.target_modules)}")]
    for source, by_language in plan.mix.counts.items():
        cells = ", ".join(f"{lang} {n}" for lang, n in sorted(by_language.items()))
        lines.append(f"    {source:18} {sum(by_language.values()):6,}  ({cells})")
    dropped = f", {plan.examples_dropped} longer than max_length {recipe.max_length} dropped" \
        if plan.examples_dropped else ""
    lines.append(f"    {plan.steps:,} steps of {recipe.batch_size}x{recipe.grad_accum}, {plan.tokens:,} tokens"
                 f"{dropped}; about {_duration(plan.seconds)}")
    return lines


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"

