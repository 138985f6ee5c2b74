"""Per-item metrics have one shape for every task (records.SampleRecord): a flat name -> finite float
mapping, per-group values under "<metric>@<group>", undefined values absent, and what is not a number in
`extra`. Each task runs a few items through a fake engine, and its records go through a run folder and back."""

from __future__ import annotations

import hashlib
import math
from types import SimpleNamespace

import pytest
from test_belebele import FIXTURE_LANGUAGES, write_fixture

from globalign.records import group_metric_key, group_metric_values, read_run, split_group_metric_key
from globalign.requests import ContinuationScore
from globalign.store.output import write_run_folder
from globalign.tasks.base import StatsSettings, TaskSettings
from globalign.tasks.global_opinions import similarity_metrics
from globalign.tasks.registry import TASKS, make_task

OPTIONS = {"belebele": {"languages": FIXTURE_LANGUAGES}, "where_from": {"countries": "gallup"},
           "askreddit": {"countries": "gallup"}, "tydiqa": {"languages": "sw,en"}}


def _nll(*parts: str) -> float:
    """A deterministic mean NLL in [0.5, 3.5) from the text scored."""
    digest = hashlib.sha256("\0".join(parts).encode()).digest()
    return 0.5 + 3 * int.from_bytes(digest[:4], "big") / 2**32


class FakeEngine:
    """Scores each continuation with a hash-derived NLL and answers every generation with the same words."""

    def __init__(self, name: str) -> None:
        self.model = SimpleNamespace(info=SimpleNamespace(name=name), has_chat_template=True)

    def score(self, requests, desc: str = "") -> list[list[ContinuationScore]]:
        return [[ContinuationScore(_nll(*r.prompt.key_parts(), c), 1) for c in r.continuations] for r in requests]

    def generate(self, requests, desc: str = "") -> list[str]:
        return ["the harbour bridge\n\nmore" for _ in requests]


def _flat_finite_floats(metrics: object) -> bool:
    return (isinstance(metrics, dict) and bool(metrics)
            and all(isinstance(k, str) and type(v) is float and math.isfinite(v) for k, v in metrics.items()))


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_keeps_flat_finite_float_metrics_through_a_run_folder(name, data_dir, tmp_path):
    root = write_fixture(tmp_path / "data") if name == "belebele" else data_dir
    settings = TaskSettings(limit=4, data_dir=root, stats=StatsSettings(n_boot=50, n_perm=50),
                            options=OPTIONS.get(name, {}))
    task = make_task(name, settings)
    records = {m: task.run(FakeEngine(m), "raw") for m in ("base", "aligned")}  # type: ignore[arg-type]
    for record in records["base"]:
        assert _flat_finite_floats(record.metrics), (name, record.metrics)
    write_run_folder(tmp_path / "run", {}, task.metrics(records), task.comparisons(records, [("base", "aligned")]),
                     [r for rs in records.values() for r in rs])
    assert read_run(tmp_path / "run").samples == [r for rs in records.values() for r in rs]


def test_group_keys_split_back_and_undefined_values_are_absent():
    assert group_metric_key("similarity", "Nigeria") == "similarity@Nigeria"
    assert split_group_metric_key("similarity@Nigeria") == ("similarity", "Nigeria")
    assert split_group_metric_key("exact_match") == ("exact_match", None)
    metrics = similarity_metrics({"Chad": 0.5, "Peru": math.nan, "Iran": 0.25})
    assert metrics == {"similarity@Chad": 0.5, "similarity@Iran": 0.25}
    assert list(group_metric_values({**metrics, "other@Chad": 1.0}, "similarity").items()) == [
        ("Chad", 0.5), ("Iran", 0.25)]

