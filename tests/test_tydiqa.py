"""TyDi QA GoldP: loader counts on the real files, the hub path on a local Parquet copy, the 1-shot
prompt, demonstration selection (never the question), statistics, and re-scoring real study outputs."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import pytest
import squad_official
from conftest import SHARED_DATA

from globalign.cli import EXIT_USER_ERROR, main
from globalign.data import tydiqa as tydiqa_data
from globalign.data.tydiqa import QAItem, load_tydiqa, read_squad_file
from globalign.errors import DataError
from globalign.rescore.tydiqa import read_tydiqa_predictions
from globalign.tasks.base import SampleRecord, StatsSettings, TaskSettings
from globalign.tasks.tydiqa import (
    TyDiQATask,
    build_prompt,
    language_comparisons,
    language_metrics,
    make_record,
    pick_demo,
    stratified_languages,
)

COUNTS = {"ar": 921, "bn": 113, "en": 440, "fi": 782, "id": 565, "ko": 276, "ru": 812, "sw": 499, "te": 669}
STUDY = SHARED_DATA / "paper_outputs" / "outputs" / "tydiqa-goldp"


@pytest.fixture(scope="module")
def data(data_dir):
    return load_tydiqa(data_dir)


def test_real_files_have_5077_questions_in_9_languages(data):
    assert data.origin == "local" and data.train == ()
    assert data.counts() == COUNTS and len(data.dev) == 5077
    assert len({q.item_id for q in data.dev}) == 5077
    first = next(q for q in data.dev if q.item_id == "english--3215621880858840488-2")
    assert first.answers[0] == "Wound care" and first.title == "Wound healing" and first.language == "en"


def _squad(path: Path, qas: list[dict], context: str = "Some passage.") -> Path:
    path.write_text(json.dumps({"version": "x", "data": [{"title": "T", "paragraphs": [{"context": context,
                                                                                        "qas": qas}]}]}))
    return path


@pytest.mark.parametrize(
    ("qas", "message"),
    [
        ([{"id": "klingon-1", "question": "q", "answers": [{"text": "a"}]}], "does not start with a TyDi QA"),
        ([{"id": "english-1", "question": "q", "answers": []}], "has no answer texts"),
        ([{"id": "english-1", "answers": [{"text": "a"}]}], "field 'question' missing"),
    ],
)
def test_squad_file_errors_name_the_place(tmp_path, qas, message):
    with pytest.raises(DataError, match=message):
        read_squad_file(_squad(tmp_path / "x.json", qas))


def test_malformed_json_and_missing_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"data": [')
    with pytest.raises(DataError, match=r"bad.json: not valid JSON \(line 1"):
        read_squad_file(bad)
    (tmp_path / "tydiqa_goldp_dev").mkdir()
    with pytest.raises(DataError, match="tydiqa-goldp-dev-arabic.json not found"):
        load_tydiqa(tmp_path)


def test_hub_path_reads_the_parquet_layout(tmp_path, monkeypatch, data):
    """The hub code on a local copy: Parquet files in the dataset's schema, served by a stand-in for
    hf_hub_download (the real one needs the network)."""
    import huggingface_hub
    import pyarrow as pa
    import pyarrow.parquet as pq

    def table(items):
        return pa.table({
            "id": [q.item_id for q in items], "title": [q.title for q in items],
            "context": [q.context for q in items], "question": [q.question for q in items],
            "answers": [{"text": list(q.answers), "answer_start": [0] * len(q.answers)} for q in items],
        })

    files = {"validation": tmp_path / "validation.parquet", "train": tmp_path / "train.parquet"}
    pq.write_table(table(data.dev[:30]), files["validation"])
    pq.write_table(table(data.dev[30:60]), files["train"])
    asked = []

    def fake_download(repo_id, repo_type, filename, revision):
        asked.append((repo_id, repo_type, filename, revision))
        return str(files["validation" if "validation" in filename else "train"])

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    hub = load_tydiqa(None)
    assert hub.origin == "hub" and hub.dev == data.dev[:30] and hub.train == data.dev[30:60]
    assert {a[2] for a in asked} == set(tydiqa_data.HF_FILES.values())
    assert all(a[0] == "google-research-datasets/tydiqa" and a[3] == tydiqa_data.HF_REVISION for a in asked)


def test_hub_offline_is_one_clear_error(monkeypatch):
    import huggingface_hub

    def offline(**kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co'")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(DataError, match="could not download google-research-datasets/tydiqa.*offline.*--data-dir"):
        load_tydiqa(None)


# ---------------------------------------------------------------------------------- prompt and demos
def test_prompt_is_the_studys_one_shot_format():
    item = QAItem("english-1", "en", "T", "Paris is the capital.", "What is the capital?", ("Paris",))
    demo = QAItem("english-2", "en", "T", "Rome is old.", "What is old?", ("Rome", "Rome is"))
    text = build_prompt(item, demo).raw
    assert text == (
        "Please answer the following questions about the text below by extracting the relevant answer from the "
        "context. \n\nUse the following format:\nContext: A passage containing the answer to the question.\n"
        "Question: The question being asked.\nExtracted Answer: The answer to the question using a direct "
        "excerpt from the context.\n\nContext: Rome is old.\nQuestion: What is old?\nExtracted Answer: Rome\n\n"
        "Context: Paris is the capital.\nQuestion: What is the capital?\nExtracted Answer:")


def test_demo_never_leaks_the_question_or_its_passage(data):
    pools: dict[str, list[QAItem]] = {}
    for q in data.dev:
        pools.setdefault(q.language, []).append(q)
    for item in data.dev[::7]:  # every 7th question of all 9 languages
        demo = pick_demo(item, pools[item.language], 221)
        assert demo.item_id != item.item_id and demo.context != item.context
        assert demo.language == item.language
        assert item.question not in build_prompt(item, demo).raw.split("Extracted Answer:")[1]
    item = data.dev[0]
    assert pick_demo(item, pools[item.language], 221) == pick_demo(item, pools[item.language], 221)
    with pytest.raises(DataError, match="no demonstration available"):
        pick_demo(item, [item], 221)


def test_task_records_the_demo_source_and_stratifies(data_dir):
    task = TyDiQATask(TaskSettings(limit=18, data_dir=data_dir))
    manifest = task.manifest()
    assert manifest["demo_split"] == "dev" and "never the question itself" in manifest["demo_note"]
    assert manifest["questions_per_language"] == dict.fromkeys(COUNTS, 2)
    assert all(manifest["demos"][q] != q for q in manifest["demos"])
    assert stratified_languages(task.data.dev, 18, 221) == task.items


def test_language_option_takes_codes_or_names_and_rejects_others(data_dir):
    from globalign.errors import UnknownNameError

    task = TyDiQATask(TaskSettings(data_dir=data_dir, limit=4, options={"languages": "swahili, te"}))
    assert task.languages == ("sw", "te") and {i.language for i in task.items} == {"sw", "te"}
    with pytest.raises(UnknownNameError, match="unknown TyDi QA language 'sv'; known: all, ar, bn"):
        TyDiQATask(TaskSettings(data_dir=data_dir, options={"languages": "sv"}))


# ---------------------------------------------------------------------------------- statistics
SETTINGS = TaskSettings(stats=StatsSettings(n_boot=2000, n_perm=2000, seed=0))


def _record(model: str, qid: str, language: str, answer: str, gold: str) -> SampleRecord:
    return make_record(QAItem(qid, language, "", "ctx", "q", (gold,)), model, "", answer, "")


def test_records_extract_the_answer_and_score_it():
    record = _record("m", "english-1", "en", "the Eiffel Tower!\n\nContext: more", "Eiffel Tower")
    assert record.prediction == "the Eiffel Tower!"
    assert record.metrics["exact_match"] == 1.0 and record.metrics["f1"] == 1.0
    arabic = _record("m", "arabic-1", "ar", "القاهرة،", "القاهرة")
    assert arabic.metrics["exact_match"] == 0.0 and arabic.metrics["exact_match_script"] == 1.0


def test_language_metrics_and_paired_comparisons_hand_computed():
    base = [_record("base", f"english-{i}", "en", "x", "Paris") for i in range(4)] + \
           [_record("base", f"arabic-{i}", "ar", "القاهرة", "القاهرة") for i in range(2)]
    aligned = [_record("al", f"english-{i}", "en", "Paris" if i < 3 else "x", "Paris") for i in range(4)] + \
              [_record("al", f"arabic-{i}", "ar", "القاهرة", "القاهرة") for i in range(2)]
    rows = {(r.model, r.metric, r.group): r for r in language_metrics({"base": base, "al": aligned}, SETTINGS)}
    assert rows[("al", "exact_match", "en")].value == 0.75 and rows[("base", "exact_match", "en")].value == 0.0
    assert rows[("al", "exact_match", "all")].value == pytest.approx(5 / 6)
    comps = {(r.metric, r.group): r for r in language_comparisons({"base": base, "al": aligned}, [("base", "al")],
                                                                  SETTINGS)}
    en = comps[("exact_match", "en")]
    assert en.delta == 0.75 and en.n == 4
    # exact sign flip over d = (1, 1, 1, 0): |mean| >= 0.75 needs the three 1s flipped together (2 ways),
    # whatever the 0's sign (2 ways): 4 of 16 patterns
    assert en.p_value == pytest.approx(4 / 16)
    assert comps[("exact_match", "ar")].delta == 0 and comps[("exact_match", "ar")].p_value == 1
    assert en.p_adjusted == pytest.approx(min(1, 2 * en.p_value))  # Holm over en and ar
    assert comps[("exact_match", "all")].p_adjusted == comps[("exact_match", "all")].p_value


# ---------------------------------------------------------------------------------- re-scoring
def _gold_answers(data_dir: Path, language: str) -> dict[str, list[str]]:
    """question id -> gold answer texts, read from the SQuAD JSON directly (not through data/tydiqa.py)."""
    data = json.loads((data_dir / "tydiqa_goldp_dev" / f"tydiqa-goldp-dev-{language}.json").read_text("utf-8"))
    return {qa["id"]: [a["text"] for a in qa["answers"]]
            for article in data["data"] for paragraph in article["paragraphs"] for qa in paragraph["qas"]}


def test_rescore_one_real_output_file(data_dir, tmp_path):
    path = STUDY / "{zephyr-7b-beta_8bit}" / "greedy" / "1-shot" / "english.json"
    read = read_tydiqa_predictions(path, data_dir)
    assert list(read.records) == ["HuggingFaceH4/zephyr-7b-beta"]
    records = read.records["HuggingFaceH4/zephyr-7b-beta"]
    assert len(records) == 440 and all(r.group == "en" for r in records)
    raw = json.loads(path.read_text())
    golds = _gold_answers(data_dir, "english")
    assert sorted(r.item_id for r in records) == sorted(raw) == sorted(golds)
    # Recomputed independently for every question: cut before the first blank line, strip, and the official
    # SQuAD script's F1 (max over the gold answers).
    f1 = {}
    for question_id, generation in raw.items():
        answer = re.split(r"\n[ \t]*\n", generation.replace("\r\n", "\n"), maxsplit=1)[0].strip()
        f1[question_id] = squad_official.metric_max_over_ground_truths(squad_official.f1_score, answer,
                                                                       golds[question_id])
    assert any(0 < v < 1 for v in f1.values())  # partial overlaps: the multiset count matters
    for record in records:
        assert record.metrics["f1"] == pytest.approx(f1[record.item_id], abs=1e-12), record.item_id
    out = tmp_path / "rescored"
    assert main(["rescore", "--task", "tydiqa", "--predictions", str(path), "--output", str(out),
                 "--data-dir", str(data_dir), "--n-boot", "300", "--n-perm", "300"]) == 0
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    row = next(r for r in rows if r["metric"] == "f1" and r["group"] == "en")
    assert float(row["value"]) == pytest.approx(math.fsum(f1.values()) / 440, abs=1e-12)  # the mean from scratch
    assert int(row["n"]) == 440


def test_rescore_two_models_pairs_by_question(data_dir, tmp_path):
    root = tmp_path / "preds"
    for model, answer in (("base", "nonsense"), ("aligned", "Wound care")):
        folder = root / model
        folder.mkdir(parents=True)
        (folder / "english.json").write_text(json.dumps({"english--3215621880858840488-2": answer}))
    read = read_tydiqa_predictions(root, data_dir)
    assert sorted(read.records) == ["aligned", "base"]
    assert any("1 of the 440 english questions" in n for n in read.notes)
    out = tmp_path / "out"
    assert main(["rescore", "--task", "tydiqa", "--predictions", str(root), "--output", str(out), "--data-dir",
                 str(data_dir), "--compare", "base:aligned", "--n-boot", "100", "--n-perm", "100"]) == 0
    comp = next(r for r in csv.DictReader((out / "comparisons.csv").open())
                if r["metric"] == "exact_match" and r["group"] == "en")
    assert float(comp["delta"]) == 1.0 and int(comp["n"]) == 1


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        ('{"klingon-1": "x"}', "english.json", "not in the TyDi QA GoldP dev data"),
        ('{"arabic-2387335860751143628-1": "x"}', "english.json", "is not english"),
        ('["x"]', "english.json", "expected a JSON object"),
        ('{"english-1": "x"}', "answers.json", "file name must be a TyDi QA language"),
    ],
)
def test_rescore_errors(data_dir, tmp_path, capsys, content, name, message):
    path = tmp_path / name
    path.write_text(content)
    code = main(["rescore", "--task", "tydiqa", "--predictions", str(path), "--output", str(tmp_path / "o"),
                 "--data-dir", str(data_dir)])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR and message in err and len(err.strip().splitlines()) == 1


def test_max_context_chars_limits_questions_and_demonstrations(data_dir):
    from globalign.errors import ConfigError

    task = TyDiQATask(TaskSettings(data_dir=data_dir, limit=18, options={"max_context_chars": 300}))
    assert len(task.items) == 18 and all(len(i.context) <= 300 for i in task.items)
    assert all(len(task.demos[i.item_id].context) <= 300 for i in task.items)
    assert task.manifest()["max_context_chars"] == 300
    with pytest.raises(ConfigError, match="max_context_chars must be a positive whole number"):
        TyDiQATask(TaskSettings(data_dir=data_dir, options={"max_context_chars": "short"}))
