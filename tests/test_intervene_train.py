"""LoRA training (intervene/train.py): the first step starts at the base's NLL, finished runs are reused,
a killed run resumes to the same losses, DPO trains; plus the pieces that need no model."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from globalign.errors import ConfigError, DataError
from globalign.intervene.losses import keep_losses_through, read_losses
from globalign.intervene.train import (
    Recipe,
    TrainResult,
    adapter_key,
    dpo_row,
    first_step_warning,
    last_checkpoint,
    read_mix_rows,
    sft_row,
    train_adapter,
)

MODEL = "smollm2-135m-instruct"
# Small and fast on 2 cores: 8 short English/Indonesian/Swahili/Finnish passages, 3 steps of 2 examples.
RECIPE = Recipe(max_steps=3, batch_size=2, max_length=192)
DPO_RECIPE = Recipe(method="dpo", max_steps=2, batch_size=2, max_length=192)
ROOT = Path(__file__).resolve().parents[1]


def _example(item, **fields) -> dict:
    from globalign.tasks.tydiqa import INSTRUCTION, QUERY

    row = {"example_id": f"tydiqa:{item.item_id}", "source": "tydiqa", "language": item.language,
           "prompt": INSTRUCTION + QUERY.format(context=item.context, question=item.question),
           "completion": "", "chosen": "", "rejected": "", "passage_hash": ""}
    return {**row, **fields}


def _wrong_span(item) -> str | None:
    """A span of the passage with as many words as the gold answer that is not (and holds no) gold answer."""
    words, n = item.context.split(), len(item.answers[0].split())
    for start in range(len(words) - n + 1):
        span = " ".join(words[start:start + n])
        if not any(gold in span or span in gold for gold in item.answers):
            return span
    return None


@pytest.fixture(scope="module")
def questions(data_dir):
    from globalign.data.tydiqa import load_tydiqa

    short = [q for q in load_tydiqa(data_dir).dev if q.language in ("en", "id", "sw", "fi") and len(q.context) < 250]
    return short[:8]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), "utf-8")
    return path


@pytest.fixture(scope="module")
def sft_mix(tmp_path_factory, questions) -> Path:
    rows = [_example(q, completion=" " + q.answers[0] + "\n\n") for q in questions]
    return _write(tmp_path_factory.mktemp("mix") / "mix.jsonl", rows)


@pytest.fixture(scope="module")
def base():
    from globalign.models.resolve import ModelSpec, locate_model

    return locate_model(ModelSpec(MODEL))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, base, sft_mix) -> tuple[TrainResult, Path]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work_dir = tmp_path_factory.mktemp("train") / "run"
    return train_adapter(base, sft_mix, RECIPE, work_dir, threads=2, progress=False), work_dir


@pytest.mark.slow
def test_training_writes_the_adapter_and_starts_at_the_base_nll(trained, sft_mix):
    result, work_dir = trained
    assert (result.adapter_dir / "adapter_model.safetensors").is_file()
    config = json.loads((result.adapter_dir / "adapter_config.json").read_text())
    assert config["r"] == RECIPE.lora_r and sorted(config["target_modules"]) == sorted(RECIPE.target_modules)
    assert json.loads((result.adapter_dir / "globalign-adapter.json").read_text()) == {"base": MODEL}
    assert [row["step"] for row in result.losses] == [1, 2, 3] == [row["step"] for row in read_losses(
        work_dir / "losses.jsonl")]
    assert result.steps == 3 and result.examples_used + result.examples_dropped == 8
    assert result.examples_used >= RECIPE.batch_size * 3 and result.tokens > 0 and result.resumed_from is None
    # LoRA's B starts at zero: step 1's loss is the base's mean NLL per completion token on that batch.
    assert abs(result.first_step_loss - result.base_nll) < 0.1, (result.first_step_loss, result.base_nll)
    assert first_step_warning(result, "sft") is None
    assert result.losses[-1]["loss"] != result.losses[0]["loss"]  # it trained
    assert set(result.versions) == {"torch", "transformers", "trl", "peft", "datasets"}


@pytest.mark.slow
def test_a_finished_run_is_returned_without_training(trained, base, tmp_path):
    result, work_dir = trained
    adapter_mtime = (result.adapter_dir / "adapter_model.safetensors").stat().st_mtime_ns
    start = time.perf_counter()
    # The mix file is not even read: the stored result decides.
    again = train_adapter(base, tmp_path / "no-such-mix.jsonl", RECIPE, work_dir, progress=False)
    assert time.perf_counter() - start < 1.0
    assert again == result
    assert (result.adapter_dir / "adapter_model.safetensors").stat().st_mtime_ns == adapter_mtime


_TRAIN_SCRIPT = """
import sys
from pathlib import Path
from globalign.intervene.train import Recipe, train_adapter
from globalign.models.resolve import ModelSpec, locate_model
recipe = Recipe.from_json({recipe})
train_adapter(locate_model(ModelSpec({model!r})), Path(sys.argv[1]), recipe, Path(sys.argv[2]), threads=2,
              progress=False)
"""


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_checkpoint_to_the_same_losses(trained, base, sft_mix, tmp_path):
    reference, _ = trained
    work_dir = tmp_path / "run"
    script = _TRAIN_SCRIPT.format(recipe=RECIPE.to_json(), model=MODEL)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen([sys.executable, "-c", script, str(sft_mix), str(work_dir)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    state = work_dir / "checkpoints" / "checkpoint-1" / "trainer_state.json"
    deadline = time.monotonic() + 600
    while not state.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    _, stderr = process.communicate()
    assert state.is_file(), stderr[-2000:]
    assert not (work_dir / "train_result.json").exists(), "the run finished before it was killed"

    resumed = train_adapter(base, sft_mix, RECIPE, work_dir, threads=2, progress=False)
    assert resumed.resumed_from is not None and resumed.resumed_from.startswith("checkpoint-")
    assert resumed.steps == reference.steps == 3
    assert [row["step"] for row in resumed.losses] == [1, 2, 3]
    # The same batches, optimizer state and schedule as the uninterrupted run: the same losses.
    for mine, theirs in zip(resumed.losses, reference.losses, strict=True):
        assert mine["loss"] == pytest.approx(theirs["loss"], abs=1e-4)
        assert mine["learning_rate"] == pytest.approx(theirs["learning_rate"])
    assert resumed.tokens == reference.tokens


@pytest.mark.slow
def test_dpo_trains_on_preference_pairs(questions, base, tmp_path):
    rows = []
    for q in questions:
        wrong = _wrong_span(q)
        if wrong is not None:
            rows.append(_example(q, chosen=" " + q.answers[0] + "\n\n", rejected=" " + wrong + "\n\n"))
    mix = _write(tmp_path / "pairs.jsonl", rows[:4])
    result = train_adapter(base, mix, DPO_RECIPE, tmp_path / "dpo", threads=2, progress=False)
    assert result.steps == 2 and (result.adapter_dir / "adapter_model.safetensors").is_file()
    # Policy and reference are one model at step 1: the sigmoid loss is ln 2 exactly.
    assert result.first_step_loss == pytest.approx(math.log(2), abs=1e-3)
    assert first_step_warning(result, "dpo") is None
    assert {"rewards/chosen", "rewards/rejected", "rewards/margins"} <= set(result.losses[0])
    assert math.isfinite(result.base_nll) and result.base_nll > 0


# -- without a model -------------------------------------------------------------------------------------


def test_recipe_rejects_bad_values_in_one_line():
    with pytest.raises(ConfigError, match="method 'ppo'"):
        Recipe(method="ppo")
    with pytest.raises(ConfigError, match="batch_size"):
        Recipe(batch_size=0)
    with pytest.raises(ConfigError, match="unknown field"):
        Recipe.from_json({"lr": 1e-4})
    assert Recipe.from_json(RECIPE.to_json()) == RECIPE


def test_adapter_key_changes_with_each_input():
    versions = {"torch": "2.13.0", "trl": "1.16.0"}
    key = adapter_key("base", "mix", RECIPE, versions)
    assert len(key) == 32 and int(key, 16) >= 0
    assert key == adapter_key("base", "mix", Recipe.from_json(RECIPE.to_json()), dict(reversed(versions.items())))
    others = {adapter_key("base2", "mix", RECIPE, versions), adapter_key("base", "mix2", RECIPE, versions),
              adapter_key("base", "mix", Recipe(max_steps=3, batch_size=2, max_length=192, seed=1), versions),
              adapter_key("base", "mix", RECIPE, {**versions, "trl": "1.17.0"})}
    assert key not in others and len(others) == 4


def test_mix_rows_the_method_cannot_use_name_file_and_line(tmp_path):
    path = _write(tmp_path / "mix.jsonl", [{"prompt": "Q", "completion": " A"},
                                           {"example_id": "x:2", "prompt": "Q", "chosen": " A", "rejected": " B"}])
    with pytest.raises(DataError, match=r"mix.jsonl:2: method sft .* no 'completion' \(example x:2\)"):
        read_mix_rows(path, "sft")
    with pytest.raises(DataError, match=r"mix.jsonl:1: method dpo .* no 'chosen'"):
        read_mix_rows(path, "dpo")
    (tmp_path / "bad.jsonl").write_text('{"prompt": "Q", "completion": " A"}\n{oops\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: not JSON"):
        read_mix_rows(tmp_path / "bad.jsonl", "sft")


def _words(text: str) -> list[int]:
    """A toy encoder that merges across the boundary the way BPE does: a BOS, then one id per word."""
    return [0] + [hash(word) % 1000 + 1 for word in text.split(" ")]


def test_sft_rows_mask_the_tokens_past_the_prompt():
    row = sft_row(_words, "Extracted Answer:", " Paris\n\n")
    assert row["input_ids"] == _words("Extracted Answer: Paris\n\n")
    assert row["completion_mask"] == [0, 0, 0, 1]
    # A merge across the boundary ("Answer:" + "x" -> "Answer:x"): the scored tokens are those past the
    # prompt's token count, as in evaluation.
    merged = sft_row(_words, "Extracted Answer:", "x y")
    assert merged["input_ids"] == _words("Extracted Answer:x y") and merged["completion_mask"] == [0, 0, 0, 1]


def test_dpo_rows_share_the_prompt_tokens():
    row = dpo_row(_words, "Q: where?", " in Paris", " at home now")
    assert row["prompt_ids"] + row["chosen_ids"] == _words("Q: where? in Paris")
    assert row["prompt_ids"] + row["rejected_ids"] == _words("Q: where? at home now")
    assert len(row["prompt_ids"]) == 3
    merged = dpo_row(_words, "Q: where?", "x", " y")  # "where?x" merges, " y" does not
    assert len(merged["prompt_ids"]) == 2 and merged["prompt_ids"] + merged["chosen_ids"] == _words("Q: where?x")


def test_last_checkpoint_skips_one_saved_halfway(tmp_path):
    for step, state in ((2, "{}"), (4, "{}"), (6, "{half")):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "trainer_state.json").write_text(state)
    (tmp_path / "checkpoint-8").mkdir()  # killed before its state was written
    assert last_checkpoint(tmp_path) == tmp_path / "checkpoint-4"
    assert last_checkpoint(tmp_path / "none") is None


def test_resume_drops_the_losses_logged_after_the_checkpoint(tmp_path):
    path = tmp_path / "losses.jsonl"
    path.write_text("".join(json.dumps({"step": s, "loss": 1.0 / s}) + "\n" for s in (1, 2, 3)) + '{"step": 4, "lo')
    assert [row["step"] for row in read_losses(path)] == [1, 2, 3]
    keep_losses_through(path, 2)
    assert [row["step"] for row in read_losses(path)] == [1, 2]
    keep_losses_through(path, 0)
    assert read_losses(path) == []
