"""Work units without a model: the plan (order, ids), shards (balanced, disjoint, complete), the config
hash, the flags' one-line errors, the dry run's unit list, the GPU groups, and the work folder's rule
that a torn unit does not count. The runs themselves: tests/test_units_run.py."""

from __future__ import annotations

import json

import pytest

from globalign.cli import main
from globalign.config import config_from_json, parse_config
from globalign.errors import GlobalignError
from globalign.records import SampleRecord
from globalign.store.unit_store import UnitResult, WorkFolder
from globalign.units import ShardSpec, config_hash, parse_shard, plan_units, shard_of, shard_units
from globalign.workers.gpu_groups import gpu_groups, visible_gpus

RAW = {
    "families": {"zephyr": {"base": "mistralai/Mistral-7B-v0.1", "sft": "HuggingFaceH4/mistral-7b-sft-beta",
                            "pt": "HuggingFaceH4/zephyr-7b-beta"}},
    "models": [{"name": "berkeley-nest/Starling-RM-7B-alpha", "kind": "reward",
                "tokenizer": "meta-llama/Llama-2-7b-chat-hf"},
               {"name": "gemma-3-270m", "backend": "vllm", "backend_options": {"tensor_parallel_size": 2}}],
    "tasks": ["md3", {"name": "global_opinions", "countries": "study7"}, "where_from"],
    "limit": 5, "output": "out/a", "stats": {"n_boot": 100},
}


def _config(**changes):
    return parse_config({**RAW, **changes}, "test")


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("globalign: error: "), err
    return err[0]


def test_units_are_each_model_on_each_task_models_first_in_config_order():
    units = plan_units(_config())
    pairs = [(u.model_name, u.task.name) for u in units]
    # the models list comes first, then the family's stages; the reward model gets the probe only
    assert pairs == [("berkeley-nest/Starling-RM-7B-alpha", "where_from")] + [
        (model, task) for model in ("gemma-3-270m", "mistralai/Mistral-7B-v0.1", "HuggingFaceH4/mistral-7b-sft-beta",
                                    "HuggingFaceH4/zephyr-7b-beta")
        for task in ("md3", "global_opinions", "where_from")]
    assert units[0].id.startswith("where_from--berkeley-nest_Starling-RM-7B-alpha--")
    assert len({u.id for u in units}) == len(units)


def test_a_unit_id_changes_with_what_its_records_depend_on_and_only_with_that():
    ids = [u.id for u in plan_units(_config())]
    assert [u.id for u in plan_units(_config())] == ids  # stable
    assert [u.id for u in plan_units(_config(output="elsewhere", cache=False, stats={"n_boot": 7}))] == ids
    for changed in ({"limit": 6}, {"seed": 1}, {"prompt_format": "chat"}):
        assert not {u.id for u in plan_units(_config(**changed))} & set(ids), changed
    # one task's option changes that task's units only
    other = [u.id for u in plan_units(_config(tasks=["md3", {"name": "global_opinions", "countries": "all"},
                                                      "where_from"]))]
    assert [a == b for a, b in zip(ids, other)] == [not i.startswith("global_opinions") for i in ids]


def test_the_config_hash_covers_everything_but_the_output_and_the_cache_switch():
    digest = config_hash(_config())
    assert config_hash(_config(output="elsewhere", cache=False)) == digest
    assert config_hash(_config(stats={"n_boot": 101})) != digest
    assert config_hash(_config(compare=[["gemma-3-270m", "HuggingFaceH4/zephyr-7b-beta"]])) != digest


def test_a_config_comes_back_equal_from_its_json():
    config = _config()
    assert config_from_json(json.loads(json.dumps(config.to_json())), "test") == config


@pytest.mark.parametrize("total", [0, 1, 5, 13, 67])
@pytest.mark.parametrize("count", [1, 2, 3, 8, 70])
def test_shards_cut_the_plan_into_contiguous_shares_of_sizes_differing_by_at_most_one(total, count):
    owners = [shard_of(position, total, count) for position in range(total)]
    assert owners == sorted(owners)  # contiguous: a model's units stay together
    sizes = [owners.count(i) for i in range(1, count + 1)]
    assert sum(sizes) == total and max(sizes) - min(sizes) <= 1


def test_every_unit_is_in_exactly_one_shard():
    units = plan_units(_config())
    shards = [shard_units(units, ShardSpec(i, 4)) for i in range(1, 5)]
    assert [u for shard in shards for u in shard] == units


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0", "-1/2", "1/2/3", ""])
def test_a_shard_that_is_not_i_of_n_is_refused(text):
    with pytest.raises(GlobalignError, match="expected I/N with 1 <= I <= N"):
        parse_shard(text)


@pytest.mark.parametrize("flags, says", [
    (["--shard", "0/4"], "--shard '0/4': expected I/N"),
    (["--gpus-per-model", "0"], "--gpus-per-model must be at least 1"),
    (["--ray-address", "auto"], "--ray-address goes with --engine ray"),
])
def test_a_bad_scaling_flag_is_one_line(capsys, tmp_path, flags, says):
    code = main(["run", "--model", "gemma-3-270m", "--task", "md3", "--output", str(tmp_path / "o"), *flags])
    assert code == 2 and says in _one_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_gpus_per_model_asks_for_gpus_that_are_there(capsys, tmp_path, monkeypatch, data_dir):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    code = main(["run", "--model", "gemma-3-270m", "--task", "md3", "--gpus-per-model", "3", "--data-dir",
                 str(data_dir), "--output", str(tmp_path / "o")])
    assert code == 2 and "--gpus-per-model 3: this machine has 2 visible (0, 1)" in _one_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_the_visible_gpus_are_read_as_cuda_reads_them():
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "0,1,2"}) == ["0", "1", "2"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "GPU-a1, GPU-b2"}) == ["GPU-a1", "GPU-b2"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "3,-1,4"}) == ["3"]  # CUDA stops at an invalid entry
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert gpu_groups(["0", "1", "2", "3", "4"], 2) == [("0", "1"), ("2", "3")]  # GPU 4 is left over
    with pytest.raises(GlobalignError, match="none visible"):
        gpu_groups([], 1)


def test_the_dry_run_lists_which_shard_runs_which_unit(capsys, tmp_path, data_dir):
    code = main(["run", "--model", "smollm2-135m-instruct", "--model", "gemma-3-270m", "--task", "global_opinions",
                 "--task", "where_from", "--limit", "2", "--data-dir", str(data_dir), "--output", str(tmp_path / "o"),
                 "--shard", "2/3", "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0
    config = parse_config({"models": ["smollm2-135m-instruct", "gemma-3-270m"], "limit": 2, "data_dir": str(data_dir),
                           "tasks": ["global_opinions", "where_from"], "output": str(tmp_path / "o")}, "test")
    units = plan_units(config)
    assert f"Work units: 4 (model x task, 2 model(s)); config hash {config_hash(config)}" in out
    listed = [line.split() for line in out.splitlines() if line.startswith("  shard ")]
    assert [(row[1], row[2]) for row in listed] == [("1/3:", units[0].id), ("1/3:", units[1].id),
                                                    ("2/3:", units[2].id), ("3/3:", units[3].id)]
    assert [len(row) > 3 for row in listed] == [False, False, True, False]  # "<- this shard"
    assert list(tmp_path.iterdir()) == []


RECORD = SampleRecord("md3", "m", "1", "en_us", "h", "A", [0.25, 0.75], {"correct": 1.0}, {"n": [1, 2]})


def _result(unit_id: str) -> UnitResult:
    return UnitResult.of(unit_id, [RECORD], {"model": "m", "task": "md3"})


def test_a_unit_counts_as_done_only_when_its_manifest_names_its_records(tmp_path):
    work = WorkFolder.beside(tmp_path / "out")
    assert work.path == tmp_path / ".out.units"
    for name in ("a", "b", "c", "d"):
        work.save(_result(name))
    (work.path / "b.jsonl").write_text("", "utf-8")  # records changed after the manifest: not done
    (work.path / "c.unit.json").unlink()  # killed before the manifest: not done
    info = json.loads((work.path / "d.unit.json").read_text())
    (work.path / "d.unit.json").write_text(json.dumps({**info, "unit": "x"}))  # another unit's manifest
    done = work.finished(["a", "b", "c", "d", "e"])
    assert list(done) == ["a"] and done["a"].records("a") == [RECORD]
    (work.path / "mine.txt").write_text("not globalign's")
    work.remove()
    assert sorted(p.name for p in work.path.iterdir()) == ["mine.txt"]  # only globalign's files go
