"""LoRA fine-tuning of a base model on a mix file with TRL's SFTTrainer / DPOTrainer and PEFT.

Examples are tokenised by the study's rule (models/tokenization.py, with the BOS the evaluation adds), so
training, scoring and generation see the same tokens: an SFT row is encode(prompt + completion) with the
loss on the tokens past len(encode(prompt)); a DPO row is the shared prompt tokens and each completion's.
TRL receives these pre-tokenised rows and does the rest (no hand-written loop). Examples are fed in the
mix file's order (the mix is already a seeded shuffle), so the first batch is known before training: the
base model's NLL on it, by globalign's own scoring path, is what the first logged loss must match.

A run lives in `work_dir`: checkpoints/ (resumed after a kill), losses.jsonl, adapter/ (the PEFT adapter
with globalign-adapter.json naming the base) and train_result.json, written last: its presence means done.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from importlib.metadata import version
from pathlib import Path

from globalign.errors import ConfigError, DataError
from globalign.intervene.losses import LossLog, StepBar, keep_losses_through, read_losses
from globalign.models.adapter import write_adapter_sidecar
from globalign.models.resolve import LocatedModel
from globalign.models.tokenization import split_candidates
from globalign.requests import Prompt, ScoreRequest
from globalign.store.atomic import write_json_atomically
from globalign.threads import cpu_threads

# Bumped whenever training code changes what an adapter learns (tokenisation, example order, defaults
# passed to TRL): it is part of the adapter key, so an adapter from older code is never reused.
TRAIN_VERSION = "train-1"
METHODS = ("sft", "dpo")
ADAPTER_DIR = "adapter"
CHECKPOINT_DIR = "checkpoints"
LOSSES_FILE = "losses.jsonl"
RESULT_FILE = "train_result.json"
VERSIONED_PACKAGES = ("torch", "transformers", "trl", "peft", "datasets")
# LoRA's B starts at zero, so the first step's loss is the base model's: a first loss this far above the
# base's NLL means the examples are not tokenised as the model expects (e.g. a missing BOS).
FIRST_STEP_TOLERANCE = 0.5
# At the first DPO step policy and reference are the same model, so the loss is -log sigmoid(0) = ln 2.
DPO_FIRST_LOSS = math.log(2)
DPO_FIRST_TOLERANCE = 0.05
# Checkpoints: about 20 per run, at least every 50 steps (a kill loses at most that), the last 2 kept.
CHECKPOINTS_PER_RUN = 20
MAX_SAVE_STEPS = 50


@dataclass(frozen=True)
class Recipe:
    """How an adapter is trained; every field is part of the adapter key."""

    method: str = "sft"  # "sft" or "dpo" (dpo needs preference examples)
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    epochs: float = 1.0
    max_steps: int | None = None  # overrides epochs when set
    learning_rate: float = 2e-4
    max_length: int = 256  # longer examples are dropped (counted), not truncated
    batch_size: int = 4
    grad_accum: int = 1
    dpo_beta: float = 0.1
    seed: int = 221

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"recipe method '{self.method}': use one of {', '.join(METHODS)}")
        for name in ("lora_r", "lora_alpha", "max_length", "batch_size", "grad_accum"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"recipe {name}: {getattr(self, name)!r} is not a positive integer")
        if self.max_steps is not None and (not isinstance(self.max_steps, int) or self.max_steps < 1):
            raise ConfigError(f"recipe max_steps: {self.max_steps!r} is not a positive integer")
        for name in ("epochs", "learning_rate", "dpo_beta"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"recipe {name}: {getattr(self, name)!r} must be > 0")
        if not 0 <= self.lora_dropout < 1:
            raise ConfigError(f"recipe lora_dropout: {self.lora_dropout!r} must be in [0, 1)")
        if not self.target_modules or not all(isinstance(m, str) and m for m in self.target_modules):
            raise ConfigError(f"recipe target_modules: {self.target_modules!r} must name modules")

    def to_json(self) -> dict:
        return {**asdict(self), "target_modules": list(self.target_modules)}

    @classmethod
    def from_json(cls, data: dict) -> Recipe:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"recipe: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        values = dict(data)
        if "target_modules" in values:
            values["target_modules"] = tuple(values["target_modules"])
        return cls(**values)


@dataclass(frozen=True)
class TrainResult:
    adapter_dir: Path
    losses: list[dict]  # one row per logged step: step, loss, learning_rate, epoch (and DPO's rewards/*)
    first_step_loss: float
    base_nll: float  # the base's mean NLL per completion token (DPO: chosen) on the first batch
    steps: int
    examples_used: int
    examples_dropped: int  # longer than max_length
    tokens: int  # tokens fed to the model (prompt + completion, all epochs; DPO: chosen and rejected rows)
    seconds: float  # training time of the call that finished (a resumed run counts its own part)
    resumed_from: str | None  # checkpoint name when a killed run resumed
    versions: dict[str, str] = field(default_factory=dict)  # torch, transformers, trl, peft, datasets

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict:
        # The adapter is stored by its name inside work_dir, so a moved work_dir still finds it.
        return {**asdict(self), "adapter_dir": self.adapter_dir.name}

    @classmethod
    def from_json(cls, data: dict, work_dir: Path) -> TrainResult:
        return cls(**{**data, "adapter_dir": work_dir / data["adapter_dir"]})


def first_step_warning(result: TrainResult, method: str) -> str | None:
    """Why the first logged loss says the examples were not tokenised as the model expects, or None.
    SFT: the first loss must be near the base's NLL on the first batch; DPO: near ln 2."""
    if method == "dpo":
        if abs(result.first_step_loss - DPO_FIRST_LOSS) > DPO_FIRST_TOLERANCE:
            return (f"first DPO loss {result.first_step_loss:.4f} is not ln 2 = {DPO_FIRST_LOSS:.4f} "
                    "(policy and reference should agree at step 1)")
        return None
    if result.first_step_loss > result.base_nll + FIRST_STEP_TOLERANCE:
        return (f"first training loss {result.first_step_loss:.4f} is more than {FIRST_STEP_TOLERANCE} nats above "
                f"the base's NLL {result.base_nll:.4f} on the same batch: the examples are probably not "
                "tokenised as the model expects (e.g. a missing BOS token)")
    return None


def training_versions() -> dict[str, str]:
    """Versions of the packages that decide what an adapter learns."""
    return {name: version(name) for name in VERSIONED_PACKAGES}


def adapter_key(base_content_hash: str, mix_sha256: str, recipe: Recipe, versions: dict[str, str]) -> str:
    """32 hex digits naming an adapter by everything it depends on: same key, same adapter (reused)."""
    payload = {"code": TRAIN_VERSION, "base": base_content_hash, "mix": mix_sha256,
               "recipe": recipe.to_json(), "versions": dict(sorted(versions.items()))}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


def read_mix_rows(mix_file: Path, method: str) -> list[dict]:
    """The mix file's rows (JSON objects with the Example fields); a row the method cannot train on is an
    error naming the file and line."""
    needed = ("completion",) if method == "sft" else ("chosen", "rejected")
    rows = []
    try:
        lines = mix_file.read_text("utf-8").splitlines()
    except OSError as exc:
        raise DataError(f"mix file {mix_file}: {exc.strerror or exc}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise DataError(f"{mix_file}:{number}: not JSON ({exc})") from None
        if not isinstance(row, dict) or not isinstance(row.get("prompt"), str) or not row["prompt"]:
            raise DataError(f"{mix_file}:{number}: a row needs a non-empty 'prompt' string")
        for key in needed:
            if not isinstance(row.get(key), str) or not row[key]:
                kind = "an SFT example (prompt + completion)" if method == "sft" else "a preference pair"
                raise DataError(f"{mix_file}:{number}: method {method} trains on {kind}; this row has no "
                                f"'{key}' (example {row.get('example_id', '?')})")
        rows.append(row)
    if not rows:
        raise DataError(f"mix file {mix_file}: no examples")
    return rows


def sft_row(encode, prompt: str, completion: str) -> dict:
    """input_ids = encode(prompt + completion); completion_mask marks the tokens past the prompt's count."""
    split = split_candidates(encode, prompt, [completion])[0]
    return {"input_ids": [*split.prefix_ids, *split.continuation_ids],
            "completion_mask": [0] * len(split.prefix_ids) + [1] * len(split.continuation_ids)}


def dpo_row(encode, prompt: str, chosen: str, rejected: str) -> dict:
    """Shared prompt tokens and each completion's tokens. When a token merges across the boundary in one of
    the two, the prompt part is their common prefix (as TRL does), so both rows are exactly encode(prompt +
    completion)."""
    chosen_split, rejected_split = split_candidates(encode, prompt, [chosen, rejected])
    full_chosen = [*chosen_split.prefix_ids, *chosen_split.continuation_ids]
    full_rejected = [*rejected_split.prefix_ids, *rejected_split.continuation_ids]
    n = len(chosen_split.prefix_ids)
    while n and full_chosen[:n] != full_rejected[:n]:
        n -= 1
    return {"prompt_ids": full_chosen[:n], "chosen_ids": full_chosen[n:], "rejected_ids": full_rejected[n:]}


def tokenise_rows(encode, rows: list[dict], method: str, max_length: int) -> tuple[list[dict], list[dict]]:
    """(kept mix rows, their tokenised rows); rows longer than max_length tokens are left out."""
    kept, tokenised = [], []
    for row in rows:
        if method == "sft":
            item = sft_row(encode, row["prompt"], row["completion"])
            length = len(item["input_ids"])
        else:
            item = dpo_row(encode, row["prompt"], row["chosen"], row["rejected"])
            length = len(item["prompt_ids"]) + max(len(item["chosen_ids"]), len(item["rejected_ids"]))
        if length <= max_length:
            kept.append(row)
            tokenised.append(item)
    return kept, tokenised


def base_nll_first_batch(model, rows: list[dict], method: str) -> float:
    """Mean NLL per completion token (DPO: chosen) of the first batch, by globalign's scoring path."""
    target = "completion" if method == "sft" else "chosen"
    scores = model.score([ScoreRequest(Prompt.raw(row["prompt"]), (row[target],)) for row in rows])
    nll = sum(score[0].nll_sum for score in scores)
    tokens = sum(score[0].n_tokens for score in scores)
    return nll / tokens


def last_checkpoint(folder: Path) -> Path | None:
    """The newest checkpoint that was saved completely (its trainer_state.json, written last, parses)."""
    found = []
    for path in folder.glob("checkpoint-*") if folder.is_dir() else ():
        suffix = path.name.removeprefix("checkpoint-")
        try:
            json.loads((path / "trainer_state.json").read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if suffix.isdigit():
            found.append((int(suffix), path))
    return max(found)[1] if found else None


def planned_steps(n_examples: int, recipe: Recipe) -> int:
    if recipe.max_steps is not None:
        return recipe.max_steps
    per_epoch = math.ceil(math.ceil(n_examples / recipe.batch_size) / recipe.grad_accum)
    return max(1, math.ceil(per_epoch * recipe.epochs))


def train_adapter(located_base: LocatedModel, mix_file: Path, recipe: Recipe, work_dir: Path,
                  *, threads: int | None = None, progress: bool = True) -> TrainResult:
    """Train a LoRA adapter on `mix_file` (JSONL rows with the Example fields) into `work_dir/adapter`;
    the stored result at once when `work_dir` holds a finished run, resumed from the last checkpoint when it
    holds a killed one."""
    result_path = work_dir / RESULT_FILE
    if result_path.is_file():
        return TrainResult.from_json(json.loads(result_path.read_text("utf-8")), work_dir)
    # Training never needs the hub (local folder, in-memory dataset): read by what TRL imports next.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    import torch
    from transformers import PrinterCallback

    from globalign.models.hf import TransformersModel

    if located_base.folder is None:
        raise ConfigError(f"model '{located_base.spec.name}': a served model has no weights to fine-tune")
    rows = read_mix_rows(mix_file, recipe.method)
    torch.set_num_threads(cpu_threads(threads))
    # One model: globalign's scorer (the same tokenisation and scoring as every evaluation) for the base's
    # NLL, and then TRL trains its weights under a LoRA wrapper. float32: training in half precision on CPU
    # is slow and loses the first-step comparison.
    spec = located_base.spec
    base = TransformersModel(located_base.folder, name=spec.name, source=located_base.source,
                             content_hash=located_base.content_hash, dtype="float32", add_bos=located_base.add_bos,
                             family=located_base.family, device=spec.device, threads=threads,
                             trust_remote_code=spec.trust_remote_code)
    kept, tokenised = tokenise_rows(base.encode, rows, recipe.method, recipe.max_length)
    if not kept:
        raise DataError(f"mix file {mix_file}: all {len(rows)} examples are longer than max_length "
                        f"{recipe.max_length} tokens for {spec.name}")
    first_batch = kept[: recipe.batch_size * recipe.grad_accum]
    base_nll = base_nll_first_batch(base, first_batch, recipe.method)

    work_dir.mkdir(parents=True, exist_ok=True)
    checkpoints = work_dir / CHECKPOINT_DIR
    losses_path = work_dir / LOSSES_FILE
    resume = last_checkpoint(checkpoints)
    # Steps a killed run logged after its last checkpoint are trained (and logged) again.
    keep_losses_through(losses_path, _checkpoint_step(resume))
    trainer = _trainer(base, tokenised, recipe, checkpoints, planned_steps(len(kept), recipe))
    # The trainer prints every log when its own bar is off; the losses go to losses.jsonl and our bar.
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(LossLog(losses_path))
    if progress:
        trainer.add_callback(StepBar(f"training {recipe.method} [{spec.name}]"))
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    seconds = time.perf_counter() - start

    adapter_dir = work_dir / ADAPTER_DIR
    staging = work_dir / f"{ADAPTER_DIR}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    trainer.model.save_pretrained(staging)
    write_adapter_sidecar(staging, spec.name)
    shutil.rmtree(adapter_dir, ignore_errors=True)
    os.replace(staging, adapter_dir)

    losses = read_losses(losses_path)
    result = TrainResult(
        adapter_dir=adapter_dir, losses=losses, first_step_loss=float(losses[0]["loss"]) if losses else math.nan,
        base_nll=base_nll, steps=trainer.state.global_step, examples_used=len(kept),
        examples_dropped=len(rows) - len(kept), tokens=int(trainer.state.num_input_tokens_seen),
        seconds=seconds, resumed_from=resume.name if resume else None, versions=training_versions())
    warning = first_step_warning(result, recipe.method)
    if warning:
        warnings.warn(f"{spec.name}: {warning}", stacklevel=2)
    write_json_atomically(result_path, result.to_json(), indent=1, sort_keys=True)  # its presence means done
    base.close()
    return result


def _checkpoint_step(checkpoint: Path | None) -> int:
    return int(checkpoint.name.removeprefix("checkpoint-")) if checkpoint else 0


def _trainer(base, tokenised: list[dict], recipe: Recipe, output_dir: Path, steps: int):
    """TRL's trainer for the recipe, over the pre-tokenised rows in their order."""
    from datasets import Dataset, disable_progress_bars
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    disable_progress_bars()  # TRL's dataset passes over a few hundred pre-tokenised rows: noise beside the step bar

    lora = LoraConfig(r=recipe.lora_r, lora_alpha=recipe.lora_alpha, lora_dropout=recipe.lora_dropout,
                      target_modules=list(recipe.target_modules), bias="none", task_type="CAUSAL_LM")
    common = {
        "output_dir": str(output_dir), "per_device_train_batch_size": recipe.batch_size,
        "gradient_accumulation_steps": recipe.grad_accum, "num_train_epochs": recipe.epochs,
        "max_steps": recipe.max_steps or -1, "learning_rate": recipe.learning_rate, "max_length": recipe.max_length,
        "seed": recipe.seed, "data_seed": recipe.seed,
        "logging_steps": 1, "save_strategy": "steps", "save_total_limit": 2,
        "save_steps": max(1, min(MAX_SAVE_STEPS, math.ceil(steps / CHECKPOINTS_PER_RUN))),
        # The mix file's order (a seeded shuffle already): the first batch is the one base_nll scored.
        "train_sampling_strategy": "sequential",
        "include_num_input_tokens_seen": "non_padding",
        # TRL's defaults are for GPUs: bf16 and gradient checkpointing would slow small CPU runs and move
        # the first loss off the float32 base NLL.
        "bf16": False, "fp16": False, "gradient_checkpointing": False,
        "report_to": "none", "disable_tqdm": True, "push_to_hub": False, "dataloader_num_workers": 0,
        "dataloader_pin_memory": base.device != "cpu",  # pinned memory only helps copies to a GPU
    }
    dataset = Dataset.from_list(tokenised)
    if recipe.method == "sft":
        args = SFTConfig(**common, completion_only_loss=True, packing=False)
        return SFTTrainer(model=base.model, args=args, train_dataset=dataset, processing_class=base.tokenizer,
                          peft_config=lora)
    args = DPOConfig(**common, beta=recipe.dpo_beta)

    class PretokenisedDPOTrainer(DPOTrainer):
        """DPOTrainer on rows that already hold prompt_ids / chosen_ids / rejected_ids: TRL 1.16's DPO has
        no pre-tokenised path (it re-tokenises the text and appends EOS), and the study's rule decides tokens."""

        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            return dataset

    return PretokenisedDPOTrainer(model=base.model, args=args, train_dataset=dataset,
                                  processing_class=base.tokenizer, peft_config=lora)
