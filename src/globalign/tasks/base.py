"""What every task (protocol) provides, and the typed rows that flow from tasks to the output folder."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from globalign.engine.runner import Engine
from globalign.errors import GlobalignError, unknown_name

# The row types live in records.py (readers never import a task); re-exported for the tasks.
from globalign.records import ComparisonRow, MetricRow, SampleRecord, TaskDeclaration  # noqa: F401
from globalign.requests import Prompt

PROMPT_FORMATS = ("raw", "chat")


@dataclass(frozen=True)
class PromptParts:
    """One prompt in both formats: the study's raw text, or a user turn + the start of the answer."""

    raw: str
    user: str
    assistant_prefix: str = ""


def render_prompt(parts: PromptParts, prompt_format: str, engine: Engine) -> Prompt:
    """The prompt in the run's format (a recorded run factor, never guessed). A chat prompt keeps its parts:
    the backend renders them (a chat template, or messages for a chat server)."""
    if prompt_format == "raw":
        return Prompt.raw(parts.raw)
    if not engine.model.has_chat_template:
        raise GlobalignError(f"model '{engine.model.info.name}' has no chat template; use --prompt-format raw")
    return Prompt.chat(parts.user, parts.assistant_prefix)


def check_task_options(task: str, options: Mapping[str, Any], known: Mapping[str, str]) -> None:
    """Reject an option the task does not have, with a near-miss suggestion."""
    unknown = set(options) - set(known)
    if unknown:
        raise unknown_name(f"option of task {task}", min(unknown), known)


def choice_distribution(nll_means: Sequence[float]) -> list[float]:
    """The scoring primitive's distribution: exp(-mean NLL) per candidate, renormalised (uniform when
    every candidate has zero probability)."""
    scores = [math.exp(-x) if math.isfinite(x) else 0.0 for x in nll_means]
    total = sum(scores)
    return [s / total for s in scores] if total > 0 else [1.0 / len(scores)] * len(scores)


@dataclass(frozen=True)
class StatsSettings:
    n_boot: int = 10_000
    n_perm: int = 10_000
    seed: int = 0


@dataclass(frozen=True)
class TaskSettings:
    """Run-wide settings plus this task's own options (validated by the task)."""

    limit: int | None = None
    seed: int = 221
    prompt_format: str = "raw"
    data_dir: Path | None = None
    stats: StatsSettings = field(default_factory=StatsSettings)
    options: Mapping[str, Any] = field(default_factory=dict)


class Task(Protocol):
    name: str

    def manifest(self) -> dict[str, Any]:
        """What the manifest records about this task's data and options."""
        ...

    def run(self, engine: Engine, prompt_format: str) -> list[SampleRecord]:
        """Score every item with the engine's model."""
        ...

    def metrics(self, records: Mapping[str, Sequence[SampleRecord]]) -> list[MetricRow]:
        """Aggregates with CIs, per model (records keyed by model name)."""
        ...

    def comparisons(
        self, records: Mapping[str, Sequence[SampleRecord]], pairs: Sequence[tuple[str, str]]
    ) -> list[ComparisonRow]:
        """Paired model_b - model_a differences on the same items, with corrected p-values."""
        ...
