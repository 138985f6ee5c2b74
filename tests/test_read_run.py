"""records.read_run: a run folder read back equals what was written, and a folder it cannot read is one
line naming the file."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from globalign.cli import main
from globalign.errors import GlobalignError
from globalign.records import ComparisonRow, MetricRow, SampleRecord, read_run
from globalign.store.output import write_run_folder
from globalign.tasks.country_preference import probe_from_records

METRICS = [MetricRow("md3", "=cmd", "en_in", "choice_accuracy", 0.5, 0.25, math.nan, 10),
           MetricRow("md3", "b", "-x", "choice_accuracy", -0.125, -1.0, 1e-300, 0)]
COMPARISONS = [ComparisonRow("md3", "en_in", "choice_accuracy", "=cmd", "b", 0.1, math.nan, 0.2, 0.04, 0.08,
                             "mcnemar", 10)]
SAMPLES = [SampleRecord("md3", "=cmd", "1", "en_in", "ab", "A", [0.5, 0.5], {"choice_correct": 1.0}, {"x": [1]})]


def test_what_is_written_reads_back_exactly(tmp_path):
    write_run_folder(tmp_path / "run", {"tasks": {"md3": {"declaration": {"task": "md3"}}}}, METRICS, COMPARISONS,
                     SAMPLES)
    run = read_run(tmp_path / "run")
    assert run.comparisons[0].model_a == "=cmd" and math.isnan(run.comparisons[0].ci_low)
    assert [r.model for r in run.metrics] == ["=cmd", "b"] and run.metrics[1].group == "-x"
    assert run.metrics[0].value == 0.5 and math.isnan(run.metrics[0].ci_high) and run.metrics[1].ci_high == 1e-300
    assert run.samples == SAMPLES
    assert read_run(tmp_path / "run", samples=False).samples == []


# samples.jsonl rows as globalign wrote them before schema version 2 (nested per-group metrics).
V1_SAMPLES = [
    {"task": "global_opinions", "model": "m", "item_id": "17", "group": "all", "prompt_hash": "ab", "prediction": "B",
     "distribution": [0.25, 0.75], "metrics": {"similarity": {"Chad": 0.75, "Peru": None}},
     "extra": {"nll_mean": [1.0, 2.0]}},
    {"task": "where_from", "model": "m", "item_id": "q1", "group": "positive", "prompt_hash": "", "prediction": "Chad",
     "distribution": None, "metrics": {"kind": "lm_nll", "values": {"Chad": 2.5, "Peru": 3.0}}, "extra": {}},
    {"task": "md3", "model": "m", "item_id": "1", "group": "en_in", "prompt_hash": "", "prediction": "x",
     "distribution": None, "metrics": {"generation_correct": 1}, "extra": {"secret_word": "x"}},
]


def test_a_version_1_folder_is_upgraded_to_flat_metrics_on_read(tmp_path):
    folder = _good(tmp_path)
    _manifest(folder, lambda m: m.update(schema_version=1))
    (folder / "samples.jsonl").write_text("".join(json.dumps(row) + "\n" for row in V1_SAMPLES), "utf-8")
    opinions, probe, md3 = read_run(folder).samples
    assert opinions.metrics == {"similarity@Chad": 0.75} and opinions.extra == {"nll_mean": [1.0, 2.0]}
    assert probe.metrics == {"nll_mean@Chad": 2.5, "nll_mean@Peru": 3.0} and probe.extra == {"probe_kind": "lm_nll"}
    assert md3.metrics == {"generation_correct": 1.0} and md3.extra == {"secret_word": "x"}
    assert probe_from_records([probe]).kind == "lm_nll"


def test_a_rescored_run_declares_its_task(tmp_path, data_dir):
    predictions = data_dir / "reward_probe" / "reference_where_from_starling-rm-7b-alpha.csv"
    assert main(["rescore", "--task", "where_from", "--predictions", str(predictions), "--n-boot", "20",
                 "--data-dir", str(data_dir), "--output", str(tmp_path / "r")]) == 0
    run = read_run(tmp_path / "r")
    assert run.declarations["where_from"].headline_metrics[0] == "mean_rank"
    assert run.declarations["where_from"].axis == "country preferences"


def _good(tmp_path):
    write_run_folder(tmp_path / "run", {}, METRICS, COMPARISONS, SAMPLES)
    return tmp_path / "run"


def _manifest(folder, change):
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    change(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest), "utf-8")


BAD = {
    "missing-folder": (lambda f: shutil.rmtree(f), "no such run folder"),
    "no-manifest": (lambda f: (f / "manifest.json").unlink(), "not a globalign run folder (no manifest.json)"),
    "audit-folder": (lambda f: _manifest(f, lambda m: m.update(schema="globalign.audit")), "a globalign.audit folder"),
    "future-version": (lambda f: _manifest(f, lambda m: m.update(schema_version=99)), "schema version 99"),
    "manifest-not-json": (lambda f: (f / "manifest.json").write_text("{", "utf-8"), "manifest.json: unreadable"),
    "missing-metrics": (lambda f: (f / "metrics.csv").unlink(), "metrics.csv: missing"),
    "other-columns": (lambda f: (f / "comparisons.csv").write_text("a,b\n1,2\n", "utf-8"), "are not"),
    "ragged-row": (lambda f: (f / "metrics.csv").write_text(
        "task,model,group,metric,value,ci_low,ci_high,n\nmd3,a\n", "utf-8"), "metrics.csv:2: 2 fields"),
    "bad-number": (lambda f: (f / "metrics.csv").write_text(
        "task,model,group,metric,value,ci_low,ci_high,n\nmd3,a,g,m,high,0,1,3\n", "utf-8"), "not a number"),
    "not-utf8": (lambda f: (f / "metrics.csv").write_bytes(b"\xff\xfe"), "not UTF-8"),
    "bad-sample": (lambda f: (f / "samples.jsonl").write_text("[1]\n", "utf-8"), "samples.jsonl:1: not a globalign"),
    "nested-metrics": (lambda f: (f / "samples.jsonl").write_text(json.dumps(
        {**SAMPLES[0].to_json(), "metrics": {"similarity": {"Chad": 0.5}}}) + "\n", "utf-8"),
        "samples.jsonl:1: metrics must map names to finite numbers (run folder schema version 2)"),
}


@pytest.mark.parametrize("case", BAD)
def test_a_folder_that_cannot_be_read_is_one_message_naming_the_file(tmp_path, case):
    damage, message = BAD[case]
    folder = _good(tmp_path)
    damage(folder)
    with pytest.raises(GlobalignError) as error:
        read_run(folder)
    assert message in str(error.value) and len(str(error.value).splitlines()) == 1
