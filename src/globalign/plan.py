"""`globalign run --dry-run`: what a run would ask of each model, without loading one.

Each task is run against a planning engine that records the requests it is handed and answers them
with placeholders, so the plan is exactly what the real run would request (the same items, prompts,
candidates and de-duplication), not a second description of it. Tokens are counted with a proxy
tokenizer (the packaged SmolLM2 tokenizer when it is prepared, else 4 characters per token); a chat
prompt is costed as the raw text plus a typical template's tokens. GPU-hours are an estimate from the
per-token throughput measured in docs/engine.md, scaled by model size (docs/usage.md, "Dry run").
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from globalign.engine.runner import Engine, RewardEngine
from globalign.errors import GlobalignError
from globalign.models.adapter import adapter_base, is_adapter_folder
from globalign.models.base import ModelInfo
from globalign.requests import ContinuationScore, GenerateRequest, Prompt, RewardRequest, ScoreRequest

CHARS_PER_TOKEN = 4.0  # the fallback when no proxy tokenizer is prepared (English-like text)
CHAT_TEMPLATE_TOKENS = 12  # what a typical chat template adds around one user turn
# Measured on an NVIDIA H100 (docs/engine.md, "On a GPU"): batched scoring/generation of MD3 prompts
# (~200 tokens) ran ~14,000 prompt tokens/s for a 135M-parameter model in float32. Forward-pass cost
# grows with parameters, so a model of P parameters is estimated at 14,000 * 135e6 / P tokens/s in bf16
# (a rough, optimistic planning figure: attention, padding and memory limits are not modelled).
REFERENCE_TOKENS_PER_S = 14_000.0
REFERENCE_PARAMS = 135e6
DEFAULT_PARAMS = 7e9
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([bm])\b", re.IGNORECASE)


@dataclass
class TaskPlan:
    task: str
    items: int = 0
    score_requests: int = 0
    candidates: int = 0
    generate_requests: int = 0
    reward_requests: int = 0
    prompt_tokens: int = 0  # unique prompts, each run once (the shared-prompt path)
    candidate_tokens: int = 0
    generated_tokens: int = 0  # upper bound: every generation runs to max_new_tokens

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.candidate_tokens + self.generated_tokens


@dataclass
class ModelPlan:
    model: str
    kind: str  # "lm" or "reward"
    params: float
    tasks: list[TaskPlan] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return sum(t.tokens for t in self.tasks)

    @property
    def gpu_hours(self) -> float:
        return self.tokens / tokens_per_second(self.params) / 3600


def model_params(name: str) -> float:
    """Parameters from a model id (`Llama-2-7b-hf` -> 7e9, `SmolLM2-135M` -> 135e6; a LoRA adapter folder:
    its base's id), else 7e9."""
    if is_adapter_folder(Path(name).expanduser()):
        try:
            name = adapter_base(Path(name).expanduser())[0]
        except GlobalignError:  # the run itself says what is wrong with the adapter
            pass
    sizes = [float(n) * (1e9 if unit.lower() == "b" else 1e6) for n, unit in _SIZE.findall(name.replace("_", " "))]
    return sizes[-1] if sizes else DEFAULT_PARAMS


def tokens_per_second(params: float) -> float:
    return REFERENCE_TOKENS_PER_S * REFERENCE_PARAMS / params


def proxy_token_counter() -> tuple[Callable[[str], int], str]:
    """(count tokens of a text, what counted them)."""
    try:
        from transformers import AutoTokenizer

        from globalign.models.gguf_convert import converted_folder
        from globalign.models.packaged import packaged_gguf_path

        # converted once by `make setup` (`globalign models prepare`); only its tokenizer is read
        tokenizer = AutoTokenizer.from_pretrained(converted_folder(packaged_gguf_path("smollm2-135m-instruct")))
        return (lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])), \
            "the SmolLM2 tokenizer (a proxy for every model)"
    except (ImportError, OSError, GlobalignError, ValueError):
        pass
    return (lambda text: max(1, round(len(text) / CHARS_PER_TOKEN))), f"{CHARS_PER_TOKEN:g} characters per token"


class _PlanningModel:
    """Stands in for a language model: a name, and chat prompts allowed (counted as their user turn plus
    CHAT_TEMPLATE_TOKENS)."""

    has_chat_template = True
    requests_per_call: ClassVar[dict[str, int]] = {}

    def __init__(self, name: str) -> None:
        self.info = ModelInfo(name=name, backend="plan", fingerprint="plan", source="plan", dtype="", add_bos=False)


class PlanningEngine(Engine):
    """Records what a task asks and answers with placeholders (every candidate equally likely)."""

    def __init__(self, name: str, count: Callable[[str], int]) -> None:
        super().__init__(_PlanningModel(name), None, progress=False)  # type: ignore[arg-type]
        self.count, self.current = count, TaskPlan("")
        self._prompts: set[Prompt] = set()

    def _prompt_tokens(self, prompt: Prompt) -> int:
        if prompt in self._prompts:
            return 0
        self._prompts.add(prompt)
        return self.count((prompt.user or "") + prompt.text) + (CHAT_TEMPLATE_TOKENS if prompt.is_chat else 0)

    def score(self, requests: Sequence[ScoreRequest], desc: str = "") -> list[list[ContinuationScore]]:
        plan = self.current
        plan.score_requests += len(requests)
        for request in requests:
            plan.candidates += len(request.continuations)
            plan.prompt_tokens += self._prompt_tokens(request.prompt)
            plan.candidate_tokens += sum(self.count(c) for c in request.continuations)
        return [[ContinuationScore(1.0, 1) for _ in r.continuations] for r in requests]

    def generate(self, requests: Sequence[GenerateRequest], desc: str = "") -> list[str]:
        plan = self.current
        plan.generate_requests += len(requests)
        for request in requests:
            plan.prompt_tokens += self._prompt_tokens(request.prompt)
            plan.generated_tokens += request.max_new_tokens
        return ["" for _ in requests]


class PlanningRewardEngine(RewardEngine):
    def __init__(self, name: str, count: Callable[[str], int]) -> None:
        super().__init__(_PlanningModel(name), None, progress=False)  # type: ignore[arg-type]
        self.count, self.current = count, TaskPlan("")

    def reward(self, requests: Sequence[RewardRequest], desc: str = "") -> list[float]:
        self.current.reward_requests += len(requests)
        self.current.prompt_tokens += sum(self.count(r.prompt) + self.count(r.response) for r in requests)
        return [0.0 for _ in requests]


def _task_plans(tasks: Sequence[Any], engine: PlanningEngine | PlanningRewardEngine, prompt_format: str,
                reward: bool) -> list[TaskPlan]:
    plans = []
    for task in tasks:
        if reward and not getattr(task, "accepts_reward_models", False):
            continue
        engine.current = TaskPlan(task.name)
        engine.current.items = len(task.run(engine, prompt_format))
        plans.append(engine.current)
    return plans


def plan_run(config: Any, tasks: Sequence[Any]) -> tuple[list[ModelPlan], str]:
    """Each model's plan over the built tasks, and what counted the tokens. Every language model gets
    the same requests (so does every reward model): each kind is planned once."""
    count, counter = proxy_token_counter()
    count = functools.lru_cache(maxsize=1 << 16)(count)  # candidates repeat across questions
    by_kind: dict[bool, list[TaskPlan]] = {}
    plans = []
    for spec in config.models:
        reward = spec.is_reward_model
        if reward not in by_kind:
            engine = (PlanningRewardEngine(spec.name, count) if reward
                      else PlanningEngine(spec.name, count))
            by_kind[reward] = _task_plans(tasks, engine, config.prompt_format, reward)
        plans.append(ModelPlan(spec.name, "reward" if reward else "lm", model_params(spec.name), by_kind[reward]))
    return plans, counter


def format_plan(config: Any, plans: Sequence[ModelPlan], counter: str) -> list[str]:
    lines = [(f"Plan (dry run; no model loaded): {len(plans)} model(s), {len(config.tasks)} task(s), "
              f"{len(config.comparisons())} comparison(s); output {config.output}")]
    for family in config.model_families():
        lines.append(f"  family {family.name}: " + " -> ".join(f"{s.name} {s.model}" for s in family.stages))
    for kind, what in (("lm", "language model"), ("reward", "reward model")):
        chosen = [p for p in plans if p.kind == kind]
        if not chosen:
            continue
        title = f"  each {what} ({len(chosen)}): "
        lines.append(f"{title}{'task':16} {'items':>7} {'requests':>9} {'candidates':>11} {'tokens':>12}")
        for task in chosen[0].tasks:
            requests = task.score_requests + task.generate_requests + task.reward_requests
            lines.append(f"{'':{len(title)}}{task.task:16} {task.items:7,} {requests:9,} {task.candidates:11,} "
                         f"{task.tokens:12,}")
    total_tokens = sum(p.tokens for p in plans)
    hours = sum(p.gpu_hours for p in plans)
    lines.append(f"Total: {total_tokens:,} tokens (counted with {counter}); estimated {hours:.1f} GPU-hours "
                 "(bf16, one H100-class GPU per model; docs/usage.md, \"Dry run\")")
    for plan in plans:
        lines.append(f"  {plan.model}: {plan.params / 1e9:g}B parameters, {plan.tokens:,} tokens, "
                     f"{plan.gpu_hours:.2f} GPU-hours")
    return lines


def format_units(config: Any, units: Sequence[Any], shard: Any | None) -> list[str]:
    """The run's work units (model x task), and with `shard` (units.ShardSpec) which shard runs which."""
    from globalign.units import config_hash, shard_of

    models = len({u.model_name for u in units})
    lines = [f"Work units: {len(units)} (model x task, {models} model(s)); config hash {config_hash(config)}"]
    if shard is None:
        return lines
    mine = 0
    for position, unit in enumerate(units):
        owner = shard_of(position, len(units), shard.count)
        mine += owner == shard.index
        marker = "  <- this shard" if owner == shard.index else ""
        lines.append(f"  shard {owner}/{shard.count}: {unit.id}{marker}")
    lines.append(f"Shard {shard}: {mine} of {len(units)} unit(s); merge all {shard.count} shard folders with "
                 "`globalign merge DIR... --output DIR`")
    return lines
