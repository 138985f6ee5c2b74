"""The run folder (DESIGN.md, "Output contract"): its files and columns, and that it is written all at once."""

from __future__ import annotations

import csv
import json
import math
import stat
from pathlib import Path

import pytest

from globalign.errors import GlobalignError
from globalign.store.output import check_output_dir, write_run_folder
from globalign.tasks.base import ComparisonRow, MetricRow, SampleRecord

METRICS_HEADER = "task,model,group,metric,value,ci_low,ci_high,n"
COMPARISONS_HEADER = "task,group,metric,model_a,model_b,delta,ci_low,ci_high,p_value,p_adjusted,test,n"
RUN_FILES = ["comparisons.csv", "manifest.json", "metrics.csv", "samples.jsonl"]

MANIFEST = {"globalign_version": "0.1.0", "seed": 221, "models": [{"name": "base"}, {"name": "aligned"}]}
METRICS = [
    MetricRow("global_opinions", "base", "France", "similarity", 0.8125, 0.75, 0.875, 40),
    MetricRow("global_opinions", "aligned", "France", "similarity", 0.5, math.nan, math.nan, 1),
]
COMPARISONS = [
    ComparisonRow("global_opinions", "France", "similarity", "base", "aligned", -0.3125, -0.5, -0.125,
                  0.002, math.nan, "paired_permutation", 40),
]
SAMPLES = [
    SampleRecord("global_opinions", model, "17", "all", "abcd1234abcd1234", "B", [0.25, 0.75],
                 {"similarity@France": 0.9})
    for model in ("base", "aligned")
]


def write(path: Path, samples=SAMPLES, manifest=MANIFEST) -> None:
    write_run_folder(path, manifest, METRICS, COMPARISONS, samples)


def read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


class Unserialisable(SampleRecord):
    def to_json(self):
        raise RuntimeError("disk full, say")


def test_run_folder_holds_exactly_the_contract_files(tmp_path):
    run = tmp_path / "runs" / "run1"
    write(run)
    assert sorted(p.name for p in run.iterdir()) == RUN_FILES
    files = [f for f in RUN_FILES if f != "manifest.json"]
    assert json.loads((run / "manifest.json").read_text("utf-8")) == {
        "schema": "globalign.run", "schema_version": 2, **MANIFEST, "output_files": files}


def test_csv_headers_are_the_contract_columns(tmp_path):
    write(tmp_path / "run")
    assert (tmp_path / "run" / "metrics.csv").read_text("utf-8").splitlines()[0] == METRICS_HEADER
    assert (tmp_path / "run" / "comparisons.csv").read_text("utf-8").splitlines()[0] == COMPARISONS_HEADER


def test_numbers_round_trip_and_nan_is_an_empty_cell(tmp_path):
    write(tmp_path / "run")
    metrics = read_csv(tmp_path / "run" / "metrics.csv")[1:]
    assert metrics == [
        ["global_opinions", "base", "France", "similarity", "0.8125", "0.75", "0.875", "40"],
        ["global_opinions", "aligned", "France", "similarity", "0.5", "", "", "1"],
    ]
    (comparison,) = read_csv(tmp_path / "run" / "comparisons.csv")[1:]
    assert comparison == ["global_opinions", "France", "similarity", "base", "aligned", "-0.3125", "-0.5",
                          "-0.125", "0.002", "", "paired_permutation", "40"]


def test_samples_are_one_json_object_per_record(tmp_path):
    write(tmp_path / "run")
    lines = (tmp_path / "run" / "samples.jsonl").read_text("utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [r.to_json() for r in SAMPLES]


def test_an_existing_run_folder_is_replaced_whole(tmp_path):
    run = tmp_path / "run"
    write(run, manifest={"globalign_version": "0.0.1"})
    write(run)
    assert sorted(p.name for p in run.iterdir()) == RUN_FILES
    assert json.loads((run / "manifest.json").read_text("utf-8"))["seed"] == MANIFEST["seed"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_an_empty_folder_may_be_used(tmp_path):
    (tmp_path / "run").mkdir()
    write(tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == RUN_FILES


def test_a_folder_that_is_not_a_run_folder_is_refused_and_left_untouched(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine\n", "utf-8")
    with pytest.raises(GlobalignError, match="exists and is not a globalign run folder"):
        write(run)
    assert snapshot(run) == {"notes.txt": b"mine\n"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_file_in_the_way_is_refused(tmp_path):
    (tmp_path / "run").write_text("mine\n", "utf-8")
    with pytest.raises(GlobalignError, match="exists and is not a folder"):
        check_output_dir(tmp_path / "run")


@pytest.mark.parametrize(
    ("bad_record", "error"),
    [
        (Unserialisable("global_opinions", "aligned", "18", "all", "ef", "A", None, {}), RuntimeError),
        (SampleRecord("global_opinions", "aligned", "18", "all", "ef", "A", [math.nan, 1.0], {}), ValueError),
    ],
    ids=["to_json raises", "NaN in a record"],
)
def test_a_failure_while_writing_samples_keeps_the_previous_folder(tmp_path, bad_record, error):
    run = tmp_path / "run"
    write(run, manifest={"globalign_version": "0.0.1"})
    before = snapshot(run)
    with pytest.raises(error):
        write(run, samples=[*SAMPLES, bad_record])
    assert snapshot(run) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no .partial (or .old) sibling


def test_a_failed_first_write_leaves_nothing(tmp_path):
    bad = SampleRecord("global_opinions", "aligned", "18", "all", "ef", "A", [math.inf], {})
    with pytest.raises(ValueError):
        write(tmp_path / "run", samples=[bad])
    assert list(tmp_path.iterdir()) == []


def test_run_folder_gets_the_same_permissions_as_any_new_folder(tmp_path):
    (tmp_path / "reference").mkdir()
    write(tmp_path / "run")
    assert stat.S_IMODE((tmp_path / "run").stat().st_mode) == stat.S_IMODE((tmp_path / "reference").stat().st_mode)
