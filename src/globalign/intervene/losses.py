"""What a training run writes step by step: losses.jsonl (one row per logged step) and a tqdm bar of
steps, as TRL trainer callbacks; and reading back the rows a resumed run keeps."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from transformers import TrainerCallback

# What a logged step row keeps from the trainer's logs: the step's loss and schedule, and DPO's reward
# and log-probability summaries (rewards/*, logps/*); TRL's other metrics (entropy, token accuracy) are
# not part of the result.
_KEPT = ("loss", "learning_rate", "epoch", "grad_norm", "num_tokens")
_KEPT_PREFIXES = ("rewards/", "logps/")


def step_row(step: int, logs: dict) -> dict | None:
    """The losses.jsonl row of one training log, or None for logs without a loss (the run's summary)."""
    if "loss" not in logs or "train_loss" in logs:
        return None
    row: dict = {"step": step}
    for key, value in logs.items():
        if key in _KEPT or key.startswith(_KEPT_PREFIXES):
            row[key] = float(value) if isinstance(value, int | float) and math.isfinite(value) else value
    return row


def read_losses(path: Path) -> list[dict]:
    """The rows of losses.jsonl in step order; a half-written last line (a killed run) is skipped."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text("utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return sorted(rows, key=lambda row: row["step"])


def keep_losses_through(path: Path, last_step: int) -> None:
    """Drop the rows of steps after `last_step` (logged by a killed run after its last checkpoint: the
    resumed run logs those steps again)."""
    rows = [row for row in read_losses(path) if row["step"] <= last_step]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(row) + "\n" for row in rows), "utf-8")
    tmp.replace(path)


class LossLog(TrainerCallback):
    """Appends each logged step to losses.jsonl as it happens, so a killed run keeps what it logged."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):
        row = step_row(state.global_step, logs or {})
        if row is not None and state.is_world_process_zero:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")


class StepBar(TrainerCallback):
    """A tqdm bar of optimizer steps with the last loss (the trainer's own bar also prints every log)."""

    def __init__(self, desc: str) -> None:
        self.desc = desc
        self.bar = None

    def on_train_begin(self, args, state, control, **kwargs):
        from tqdm import tqdm

        self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc=self.desc, unit=" steps",
                        file=sys.stderr, dynamic_ncols=True)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is not None and logs and "loss" in logs and "train_loss" not in logs:
            self.bar.set_postfix(loss=f"{logs['loss']:.4f}", refresh=False)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
