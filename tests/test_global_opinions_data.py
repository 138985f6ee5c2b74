"""GlobalOpinionsQA loading (real files in ../shared/data), safe parsing, and the similarity metric."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA

from globalign.data import global_opinions as go
from globalign.data.global_opinions import (
    OpinionDataset,
    load_global_opinions,
    parse_options_string,
    parse_selections_string,
    read_best_estimate,
    read_hf_csv,
    serialise_selections_like_hf,
    study_parser_selections,
)
from globalign.errors import DataError
from globalign.tasks.opinion_metrics import questions_answered_by_all, similarity, study_countries

GOQA = SHARED_DATA / "globalopinionsqa"
README_EXAMPLE = (
    "defaultdict(<class 'list'>, {'Belgium': [0.21, 0.07, 0.69, 0.03], "
    "'France': [0.35, 0.09, 0.54, 0.02], 'Greece': [0.86, 0.04, 0.1, 0.0]})"
)


@pytest.fixture(scope="module")
def best(data_dir: Path) -> OpinionDataset:  # data_dir: skipped locally, failed in CI, without the data
    return load_global_opinions(data_dir)


# ---------------------------------------------------------------- real files
def test_best_estimate_counts(best: OpinionDataset) -> None:
    assert best.origin == "best_estimate"
    assert best.path.endswith("global_opinions_best_estimate.jsonl")
    assert "estimated" in best.note and "3d" in best.note
    assert len(best.questions) == 2556
    assert [q.index for q in best.questions] == list(range(2556))
    assert sum(len(q.selections) for q in best.questions) == 46329
    assert len({c for q in best.questions for c in q.selections}) == 138
    assert sum(q.source == "GAS" for q in best.questions) == 2203
    q0 = best.questions[0]
    assert q0.selections["Belgium"] == (0.21, 0.07, 0.69, 0.03)
    assert list(q0.selections)[:2] == ["Belgium", "France"]  # file order kept
    zero = sum(not any(v) for q in best.questions for v in q.selections.values())
    assert zero == 85


def test_numeric_options_are_python_str(best: OpinionDataset) -> None:
    # The float scale options (1.0, ...) sit in 24 Pew-styled rows (48, 225, 234, ...); WVS rows store
    # their scale points as strings already ("2", "3", ...), which must stay as they are.
    assert best.questions[48].options == tuple(str(float(i)) for i in range(11))
    assert best.questions[225].options[:3] == ("Not important at all", "1.0", "2.0")
    assert sum("1.0" in q.options for q in best.questions) == 24
    wvs = [q.options for q in best.questions if q.source == "WVS"]
    assert any(opts[:3] == ("Never justifiable", "2", "3") for opts in wvs)
    assert all(isinstance(o, str) for q in best.questions for o in q.options)


def test_questions_answered_by_all_study_countries(best: OpinionDataset) -> None:
    assert len(study_countries()) == 7
    assert len(questions_answered_by_all(best.questions, study_countries())) == 245


def test_thirdparty_fallback(tmp_path: Path, best: OpinionDataset) -> None:
    folder = tmp_path / "globalopinionsqa"
    folder.mkdir()
    for name in ("goqa_questions.jsonl", "goqa_original_subset_thirdparty.jsonl"):
        (folder / name).symlink_to(GOQA / name)
    ds = load_global_opinions(tmp_path)
    assert ds.origin == "thirdparty_subset"
    assert "subset" in ds.note and "3b" in ds.note
    assert len(ds.questions) == 1723
    assert sum(len(q.selections) for q in ds.questions) == 9715 + 9
    assert ds.questions[0].selections["Belgium"] == (0.21, 0.07, 0.69, 0.03)
    for q in ds.questions:  # README 3d: these exact values are copied into the best-estimate file
        ref = best.questions[q.index]
        assert (q.question, q.options, q.source) == (ref.question, ref.options, ref.source)
        assert all(ref.selections[c] == v for c, v in q.selections.items())


def test_hub_csv_round_trip(tmp_path: Path, best: OpinionDataset) -> None:
    raw = [json.loads(line) for line in (GOQA / "global_opinions_best_estimate.jsonl").open(encoding="utf-8")]
    path = tmp_path / "global_opinions.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["question", "selections", "options", "source"])
        for row in raw:
            w.writerow([row["question"], serialise_selections_like_hf(row["selections"]), repr(row["options"]),
                        row["source"]])
    ds = read_hf_csv(path)
    assert ds.origin == "csv"
    assert ds.questions == best.questions
    assert all(list(a.selections) == list(b.selections) for a, b in zip(ds.questions, best.questions))


def test_study_parser_replay_on_real_row(best: OpinionDataset) -> None:
    q0 = best.questions[0]
    parsed = study_parser_selections(serialise_selections_like_hf(q0.selections))
    assert list(parsed) == list(q0.selections)
    assert parsed["Belgium"] == [0.21, 0.07, 0.69, 0.0]
    last = list(q0.selections)[-1]
    assert parsed[last] == list(q0.selections[last])  # the last key is untouched by the bug


# ---------------------------------------------------------------- parsing
def test_parse_readme_example_and_inverse() -> None:
    sel = parse_selections_string(README_EXAMPLE)
    assert list(sel) == ["Belgium", "France", "Greece"]
    assert sel["Belgium"] == (0.21, 0.07, 0.69, 0.03)
    assert serialise_selections_like_hf(sel) == README_EXAMPLE
    noisy = {"Kenya": (0.013999999999999999, 0.986)}
    assert parse_selections_string(serialise_selections_like_hf(noisy)) == noisy
    assert parse_options_string("['Yes', \"Don't know\", 1.0, 2]") == ("Yes", "Don't know", "1.0", "2")


def test_study_parser_bug() -> None:
    assert len("defaultdict(<class 'list'>, {") == 29
    parsed = study_parser_selections(README_EXAMPLE)
    assert parsed["Belgium"] == [0.21, 0.07, 0.69, 0.0]
    assert parsed["France"] == [0.35, 0.09, 0.54, 0.0]
    assert parsed["Greece"] == [0.86, 0.04, 0.1, 0.0]


@pytest.mark.parametrize("text", [
    "", "   ", "['a', 'b'", "'a', 'b']", "[]", "('a', 'b')", "{'a': 1}", "['a', None]", "['a', ['b']]",
    "['a', True]", "[__import__('os')]", "__import__('os').getcwd()", "['a', x]", "['a'] + ['b']",
])
def test_parse_options_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_options_string(text)


@pytest.mark.parametrize("text", [
    "", "{'A': [0.5, 0.5]}", "defaultdict(<class 'dict'>, {'A': [0.5, 0.5]})",
    "defaultdict(<class 'list'>, {'A': [0.5, 0.5]}", "defaultdict(<class 'list'>, {'A': [0.5, 0.5})",
    "defaultdict(<class 'list'>, {'A': [0.5, 'x']})", "defaultdict(<class 'list'>, {'A': [0.5, nan]})",
    "defaultdict(<class 'list'>, {'A': [0.5, -0.1]})", "defaultdict(<class 'list'>, {'A': [0.5, 1e999]})",
    "defaultdict(<class 'list'>, {'A': []})", "defaultdict(<class 'list'>, {1: [0.5, 0.5]})",
    "defaultdict(<class 'list'>, {'A': [1], 'A': [1]})", "defaultdict(<class 'list'>, ['A', [1.0]])",
    "defaultdict(<class 'list'>, {'A': __import__('os')})", "defaultdict(<class 'list'>, {'A': [0.5, 1j]})",
])
def test_parse_selections_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_selections_string(text)


def test_import_payload_is_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    with pytest.raises(ValueError):
        parse_options_string(f"[{payload}]")
    with pytest.raises(ValueError):
        parse_selections_string(f"defaultdict(<class 'list'>, {{'A': [{payload}]}})")
    with pytest.raises(ValueError):
        parse_selections_string(f"defaultdict(<class 'list'>, {{'A': {payload}}})")
    assert not marker.exists()


# ---------------------------------------------------------------- error reporting
def _write_best(tmp_path: Path, lines: list[str] | bytes) -> Path:
    folder = tmp_path / "globalopinionsqa"
    folder.mkdir()
    path = folder / "global_opinions_best_estimate.jsonl"
    if isinstance(lines, bytes):
        path.write_bytes(lines)
    else:
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


GOOD = json.dumps({"question": "Q?", "options": ["Yes", "No"], "selections": {"A": [0.5, 0.5]}, "source": "GAS"})


@pytest.mark.parametrize("bad, fragment", [
    ('{"question": "Q?", ', "malformed JSON"),
    (json.dumps({"question": "Q?", "options": ["Yes", "No"], "source": "GAS"}), "missing field 'selections'"),
    (json.dumps({"question": 3, "options": ["a"], "selections": {}, "source": "GAS"}), "field 'question'"),
    (json.dumps({"question": "Q", "options": ["a", "b"], "selections": {"A": [1.0]}, "source": "GAS"}),
     "1 values for 2 options"),
    (json.dumps({"question": "Q", "options": ["a"], "selections": {"A": ["x"]}, "source": "GAS"}),
     "field 'selections'"),
    ("[1, 2]", "expected a JSON object"),
])
def test_malformed_jsonl_names_file_and_line(tmp_path: Path, bad: str, fragment: str) -> None:
    path = _write_best(tmp_path, [GOOD, bad])
    with pytest.raises(DataError) as e:
        load_global_opinions(tmp_path)
    assert f"{path}:2" in str(e.value) and fragment in str(e.value)


def test_non_utf8_file(tmp_path: Path) -> None:
    path = _write_best(tmp_path, GOOD.encode() + b"\n" + '{"question": "caf\u00e9"}'.encode("latin-1") + b"\n")
    with pytest.raises(DataError) as e:
        read_best_estimate(path)
    assert str(path) in str(e.value) and "UTF-8" in str(e.value) and "line 2" in str(e.value)


def test_missing_data_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "globalopinionsqa").mkdir()
    (tmp_path / "globalopinionsqa" / "goqa_questions.jsonl").write_text("", encoding="utf-8")  # not enough alone
    with pytest.raises(DataError) as e:
        load_global_opinions(tmp_path)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("GlobalOpinionsQA not found: looked for globalopinionsqa/global_opinions_best_estimate")
    assert str(tmp_path) in msg and "--data-dir" in msg and "hub" in msg


def _csv(tmp_path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path = tmp_path / "global_opinions.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return path


def test_csv_errors(tmp_path: Path) -> None:
    sel = serialise_selections_like_hf({"A": [0.5, 0.5]})
    path = _csv(tmp_path, ["question", "options", "source"], [["Q", "['a', 'b']", "GAS"]])
    with pytest.raises(DataError, match="missing column 'selections'") as e:
        read_hf_csv(path)
    assert str(path) in str(e.value)
    header = ["question", "selections", "options", "source"]
    good = ["Multi\nline question", sel, "['a', 'b']", "GAS"]
    path = _csv(tmp_path, header, [good, ["Q", sel, "['a', 'b'", "GAS"]])
    with pytest.raises(DataError) as e:
        read_hf_csv(path)
    assert str(path) in str(e.value) and "row 2 (line 4)" in str(e.value) and "field 'options'" in str(e.value)
    path = _csv(tmp_path, header, [good, ["Q", sel.replace("0.5]", "__import__('os')]"), "['a', 'b']", "GAS"]])
    with pytest.raises(DataError, match="row 2 .*field 'selections'"):
        read_hf_csv(path)
    ds = read_hf_csv(_csv(tmp_path, header, [good]))
    assert ds.questions[0].question == "Multi\nline question" and ds.questions[0].options == ("a", "b")


def test_hub_offline_and_online(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import huggingface_hub

    def offline(**kwargs: object) -> str:
        raise OSError("network unreachable\nsecond line")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(DataError, match=r"could not download .*offline\?.*--data-dir") as e:
        load_global_opinions(None)
    assert "\n" not in str(e.value)
    path = _csv(tmp_path, ["question", "selections", "options", "source"],
                [["Q", serialise_selections_like_hf({"A": [1.0, 0.0]}), "['a', 'b']", "WVS"]])
    seen: dict[str, object] = {}

    def online(**kwargs: object) -> str:
        seen.update(kwargs)
        return str(path)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", online)
    ds = go.load_from_hub()
    assert ds.origin == "hub" and ds.questions[0].selections == {"A": (1.0, 0.0)}
    assert seen["repo_id"] == "Anthropic/llm_global_opinions" and seen["revision"] == go.HF_REVISION


# ---------------------------------------------------------------- similarity
def _js_by_hand(p: list[float], q: list[float]) -> float:
    p_, q_ = np.asarray(p) / sum(p), np.asarray(q) / sum(q)
    m = (p_ + q_) / 2

    def kl(a: np.ndarray, b: np.ndarray) -> float:
        return float(sum(x * np.log(x / y) for x, y in zip(a, b) if x > 0))

    return math.sqrt(0.5 * kl(p_, m) + 0.5 * kl(q_, m))


@pytest.mark.parametrize("p, q", [
    ([0.5, 0.5], [1.0, 0.0]), ([0.2, 0.3, 0.5], [0.1, 0.1, 0.8]), ([1.0, 0.0], [0.0, 1.0]),
    ([0.21, 0.07, 0.69, 0.03], [0.25, 0.25, 0.25, 0.25]), ([2.0, 2.0], [0.3, 0.6]),
])
def test_similarity_hand_computed(p: list[float], q: list[float]) -> None:
    assert similarity(p, q) == pytest.approx(1 - _js_by_hand(p, q), abs=1e-12)


def test_similarity_edges() -> None:
    # p=[0.5,0.5], q=[1,0]: m=[0.75,0.25]; KL(p||m)=0.5ln(2/3)+0.5ln2, KL(q||m)=ln(4/3)
    js = math.sqrt(0.5 * (0.5 * math.log(2 / 3) + 0.5 * math.log(2)) + 0.5 * math.log(4 / 3))
    assert similarity([0.5, 0.5], [1.0, 0.0]) == pytest.approx(1 - js, abs=1e-12)
    assert similarity([1.0, 0.0], [0.0, 1.0]) == pytest.approx(1 - math.sqrt(math.log(2)), abs=1e-12)
    assert similarity([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 1.0
    assert math.isnan(similarity([0.2, 0.8], [0.0, 0.0]))
    with pytest.raises(ValueError):
        similarity([0.5, 0.5], [0.2, 0.3, 0.5])
    with pytest.raises(ValueError):
        similarity([0.5, 0.5], [-0.2, 1.2])


def test_similarity_input_checks_name_the_side_and_the_rule() -> None:
    # A one-answer question: both distributions renormalise to [1], distance 0, similarity 1.
    assert similarity([1.0], [3.0]) == 1.0
    assert math.isnan(similarity([0.0, 0.0], [0.2, 0.8]))  # the model side all zero
    with pytest.raises(ValueError, match=r"^model distribution must be a non-empty 1-D sequence$"):
        similarity([], [])
    with pytest.raises(ValueError, match=r"^country distribution must be a non-empty 1-D sequence$"):
        similarity([0.5, 0.5], [[0.5, 0.5]])
    with pytest.raises(ValueError, match=r"^model distribution must be a non-empty 1-D sequence$"):
        similarity([[0.5, 0.5], [0.5, 0.5]], [[0.5, 0.5], [0.5, 0.5]])
    with pytest.raises(ValueError, match=r"^country distribution must hold finite non-negative numbers$"):
        similarity([0.5, 0.5], [-0.2, 1.2])
    with pytest.raises(ValueError, match=r"^model distribution must hold finite non-negative numbers$"):
        similarity([np.nan, 0.5], [0.5, 0.5])
    with pytest.raises(ValueError, match=r"^model distribution must hold finite non-negative numbers$"):
        similarity([np.inf, 0.5], [0.5, 0.5])
    with pytest.raises(ValueError, match=r"^model distribution has 2 values, country distribution has 3$"):
        similarity([0.5, 0.5], [0.2, 0.3, 0.5])
