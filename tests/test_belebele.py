"""Belebele: the loader (both local layouts, every error, the hub), the study's prompt, scoring with a
fake engine (argmax, metrics, McNemar + Holm by hand), and one run of a real packaged model."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from globalign.cli import main
from globalign.data import belebele as bb
from globalign.data.belebele import BelebeleQuestion, item_id, load_belebele, read_local, read_variant_file
from globalign.errors import ConfigError, DataError, UnknownNameError
from globalign.requests import ContinuationScore, Prompt, ScoreRequest
from globalign.tasks.base import StatsSettings, TaskSettings
from globalign.tasks.belebele import (
    CANDIDATES,
    NAME,
    BelebeleTask,
    build_prompt,
    format_choices,
    parse_languages,
)
from globalign.tasks.grouped import stratified_sample
from globalign.tasks.registry import TASK_OPTIONS, TASKS

# ------------------------------------------------------------------------------ a fixture in the hub's schema
HARBOUR = "https://en.wikinews.org/wiki/Harbour_bridge_reopens_after_eight_months_of_repairs"
DESERT = "https://en.wikibooks.org/wiki/Desert_hiking/Water"
PASSAGES = {
    "eng_Latn": (
        ("The old harbour bridge reopened on Monday after eight months of repairs. Engineers replaced the rusted "
        "steel cables and widened the footpath on the eastern side. The city council said that cyclists will now "
        "share the road with buses during the morning rush hour."),
        ("Hikers in the desert should carry at least four litres of water per day. The air is dry, so sweat "
        "evaporates quickly and many people do not notice that they are losing water. Walking in the early "
        "morning or late afternoon avoids the worst of the heat."),
    ),
    "swh_Latn": (
        ("Daraja la zamani la bandari lilifunguliwa tena Jumatatu baada ya miezi minane ya matengenezo. Wahandisi "
        "walibadilisha nyaya za chuma zilizokuwa na kutu na kupanua njia ya watembea kwa miguu upande wa "
        "mashariki. Baraza la jiji lilisema kwamba waendesha baiskeli sasa watashiriki barabara na mabasi wakati "
        "wa msongamano wa asubuhi."),
        ("Wasafiri jangwani wanapaswa kubeba angalau lita nne za maji kwa siku. Hewa ni kavu, kwa hiyo jasho "
        "hukauka haraka na watu wengi hawatambui kwamba wanapoteza maji. Kutembea asubuhi na mapema au jioni "
        "huepuka joto kali zaidi."),
    ),
    "acm_Arab": (
        ("الجسر القديم مال الميناء انفتح من جديد يوم الاثنين بعد ثمن شهور من التصليحات. المهندسين بدلوا الحبال "
        "الحديد المصدية ووسعوا ممر المشاة بالجهة الشرقية. مجلس المدينة گال إن راكبي البايسكلات راح يشاركون "
        "الشارع ويا الباصات وقت زحمة الصبح."),
        ("اللي يمشون بالصحرا لازم يشيلون على الأقل أربع لترات مي باليوم. الهوا ناشف، فالعرگ ينشف بسرعة وهواية "
        "ناس ما يحسون إنهم دا يخسرون مي. المشي الصبح وكت أو العصر يبعد أشد الحر."),
    ),
}
# (link, question_number, passage index, question, answers, correct_answer_num as on the hub: a string)
QUESTIONS = {
    "eng_Latn": [
        (HARBOUR, 1, 0, "What did the engineers replace?",
         ("The footpath", "The rusted steel cables", "The bus lanes", "The eastern towers"), "2"),
        (HARBOUR, 2, 0, "When will cyclists share the road with buses?",
         ("At night", "On weekends", "During the morning rush hour", "Only on Mondays"), "3"),
        (DESERT, 1, 1, "Why do many hikers not notice that they are losing water?",
         ("Sweat evaporates quickly in the dry air", "They drink four litres a day", "They walk at night",
          "The desert is cold"), "1"),
    ],
    "swh_Latn": [
        (HARBOUR, 1, 0, "Wahandisi walibadilisha nini?",
         ("Njia ya watembea kwa miguu", "Nyaya za chuma zilizokuwa na kutu", "Njia za mabasi",
          "Minara ya mashariki"), "2"),
        (HARBOUR, 2, 0, "Waendesha baiskeli watashiriki barabara na mabasi lini?",
         ("Usiku", "Mwishoni mwa wiki", "Wakati wa msongamano wa asubuhi", "Jumatatu pekee"), "3"),
        (DESERT, 1, 1, "Kwa nini wasafiri wengi hawatambui kwamba wanapoteza maji?",
         ("Jasho hukauka haraka katika hewa kavu", "Wanakunywa lita nne kwa siku", "Wanatembea usiku",
          "Jangwa lina baridi"), "1"),
    ],
    "acm_Arab": [
        (HARBOUR, 1, 0, "شنو اللي بدلوه المهندسين؟",
         ("ممر المشاة", "الحبال الحديد المصدية", "مسارات الباصات", "الأبراج الشرقية"), "2"),
        (HARBOUR, 2, 0, "إمتى راكبي البايسكلات راح يشاركون الشارع ويا الباصات؟",
         ("بالليل", "بنهاية الأسبوع", "وقت زحمة الصبح", "بس يوم الاثنين"), "3"),
        (DESERT, 1, 1, "ليش هواية ناس ما يحسون إنهم دا يخسرون مي؟",
         ("العرگ ينشف بسرعة بالهوا الناشف", "يشربون أربع لترات باليوم", "يمشون بالليل", "الصحرا باردة"), "1"),
    ],
}
LANG_OF = {"eng_Latn": "en", "swh_Latn": "sw", "acm_Arab": "ar"}
FIXTURE_LANGUAGES = ["en", "sw", "ar"]


def hub_row(variant: str, index: int) -> dict:
    link, number, passage, question, answers, correct = QUESTIONS[variant][index]
    return {"link": link, "question_number": number, "flores_passage": PASSAGES[variant][passage],
            "question": question, "mc_answer1": answers[0], "mc_answer2": answers[1], "mc_answer3": answers[2],
            "mc_answer4": answers[3], "correct_answer_num": correct, "dialect": variant, "ds": "2023-05-03"}


def write_variant(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def write_fixture(root: Path, layout: str = "hub") -> Path:
    """A data folder holding belebele/data/<variant>.jsonl (hub layout) or belebele/<variant>.jsonl (flat)."""
    folder = root / "belebele" / ("data" if layout == "hub" else "")
    for variant in QUESTIONS:
        write_variant(folder / f"{variant}.jsonl", [hub_row(variant, i) for i in range(3)])
    return root


@pytest.fixture
def fixture_root(tmp_path: Path) -> Path:
    return write_fixture(tmp_path / "data")


def settings(root: Path, **options: object) -> TaskSettings:
    return TaskSettings(data_dir=root, stats=StatsSettings(n_boot=200, n_perm=200, seed=0),
                        options={"languages": FIXTURE_LANGUAGES, **options})


# ------------------------------------------------------------------------------ loader
@pytest.mark.parametrize("layout", ["hub", "flat"])
def test_loader_reads_both_layouts(tmp_path: Path, layout: str) -> None:
    root = write_fixture(tmp_path, layout)
    ds = load_belebele(root, FIXTURE_LANGUAGES)
    assert ds.origin == "local" and ds.revision is None
    assert ds.counts() == {"en": 3, "sw": 3, "ar": 3}
    assert [q.language for q in ds.questions] == ["en"] * 3 + ["sw"] * 3 + ["ar"] * 3
    expected = tmp_path / "belebele" / ("data" if layout == "hub" else "") / "acm_Arab.jsonl"
    assert ds.paths["acm_Arab"] == str(expected)
    q = ds.questions[0]
    assert q == BelebeleQuestion(item_id("eng_Latn", HARBOUR, PASSAGES["eng_Latn"][0], 1), "en", "eng_Latn",
                                 PASSAGES["eng_Latn"][0], "What did the engineers replace?",
                                 QUESTIONS["eng_Latn"][0][4], 1, HARBOUR, 1)
    assert [q.correct_index for q in ds.questions] == [1, 2, 0] * 3
    assert ds.questions[6].answers[1] == "الحبال الحديد المصدية"


def test_item_ids_are_unique_stable_and_parallel(fixture_root: Path) -> None:
    ds = load_belebele(fixture_root, FIXTURE_LANGUAGES)
    ids = [q.item_id for q in ds.questions]
    assert len(set(ids)) == len(ids) == 9
    assert ids == [q.item_id for q in load_belebele(fixture_root, FIXTURE_LANGUAGES).questions]
    assert all(i.startswith(f"{q.variant}-") and i.endswith(f"-{q.question_number}") for i, q in zip(ids, ds.questions))
    # the hash part depends on the link only, so the same question has the same key in every variant
    keys = {i.split("-", 1)[1] for i in ids}
    assert len(keys) == 3
    assert item_id("eng_Latn", "", "a passage", 2) == item_id("eng_Latn", "", "a passage", 2) != item_id(
        "eng_Latn", "", "another passage", 2)


def test_correct_answer_num_accepts_strings_and_ints(tmp_path: Path) -> None:
    rows = [hub_row("eng_Latn", i) for i in range(3)]
    rows[0]["correct_answer_num"] = 4
    rows[1]["correct_answer_num"] = " 1 "
    rows[2]["question_number"] = "2"  # a numeric string is accepted too
    rows[2]["link"] = "https://en.wikibooks.org/wiki/Other"
    path = write_variant(tmp_path / "eng_Latn.jsonl", rows)
    questions = read_variant_file(path, "en", "eng_Latn")
    assert [q.correct_index for q in questions] == [3, 0, 0]
    assert questions[2].question_number == 2


def test_language_order_follows_the_request(fixture_root: Path) -> None:
    ds = load_belebele(fixture_root, ["ar", "en"])
    assert [q.language for q in ds.questions] == ["ar"] * 3 + ["en"] * 3
    assert list(ds.paths) == ["acm_Arab", "eng_Latn"]


def _bad(tmp_path: Path, mutate) -> Path:
    rows = [hub_row("eng_Latn", i) for i in range(3)]
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    mutate(rows, lines)
    path = tmp_path / "belebele" / "eng_Latn.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _set(index: int, key: str, value: object):
    def mutate(rows: list[dict], lines: list[str]) -> None:
        rows[index][key] = value
        lines[index] = json.dumps(rows[index], ensure_ascii=False)
    return mutate


def _drop(index: int, key: str):
    def mutate(rows: list[dict], lines: list[str]) -> None:
        del rows[index][key]
        lines[index] = json.dumps(rows[index], ensure_ascii=False)
    return mutate


def _line(index: int, text: str):
    def mutate(rows: list[dict], lines: list[str]) -> None:
        lines[index] = text
    return mutate


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_line(1, '{"link": "x", '), r"eng_Latn\.jsonl:2: malformed JSON"),
        (_line(2, "[1, 2]"), r"eng_Latn\.jsonl:3: expected a JSON object, got list"),
        (_drop(0, "mc_answer3"), r"eng_Latn\.jsonl:1: missing field 'mc_answer3'"),
        (_drop(1, "correct_answer_num"), r":2: missing field 'correct_answer_num'"),
        (_drop(2, "ds"), r":3: missing field 'ds'"),
        (_set(0, "correct_answer_num", "5"), r":1: field 'correct_answer_num' is '5', outside 1\.\.4"),
        (_set(0, "correct_answer_num", 0), r":1: field 'correct_answer_num' is 0, outside 1\.\.4"),
        (_set(1, "correct_answer_num", "B"), r":2: field 'correct_answer_num' should be"),
        (_set(1, "correct_answer_num", None), r":2: field 'correct_answer_num' should be"),
        (_set(0, "question_number", -1), r":1: field 'question_number' should be"),
        (_set(0, "mc_answer1", 3), r":1: field 'mc_answer1' should be a string, got int"),
        (_set(2, "flores_passage", "  "), r":3: field 'flores_passage' is empty"),
        (_set(1, "question_number", 1), r":2: duplicate question .*as line 1"),
        (lambda rows, lines: lines.clear(), r"eng_Latn\.jsonl: no questions"),
    ],
)
def test_loader_errors_are_one_line(tmp_path: Path, mutate, message: str) -> None:
    path = _bad(tmp_path, mutate)
    with pytest.raises(DataError, match=message) as e:
        read_local(path.parent, ["en"])
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "belebele" / "eng_Latn.jsonl"
    path.parent.mkdir()
    path.write_bytes(json.dumps(hub_row("eng_Latn", 0)).encode() + b"\n" + b'{"link": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"eng_Latn\.jsonl: not UTF-8 text \(line 2") as e:
        load_belebele(tmp_path, ["en"])
    assert "\n" not in str(e.value)


def test_missing_variant_file(fixture_root: Path) -> None:
    with pytest.raises(DataError, match=r"Belebele fin_Latn: no fin_Latn\.jsonl in .*belebele") as e:
        load_belebele(fixture_root, ["en", "fi"])
    assert "\n" not in str(e.value)
    with pytest.raises(DataError, match="no variant for language 'xx'"):
        read_local(fixture_root / "belebele", ["xx"])


def test_hub_offline_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import huggingface_hub

    def offline(**kwargs: object) -> str:
        raise OSError("Cannot reach https://huggingface.co\nretry later")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    for data_dir in (None, tmp_path):  # no data folder, or one without belebele/ (as ../shared/data)
        with pytest.raises(DataError) as e:
            load_belebele(data_dir, ["en"])
        msg = str(e.value)
        assert "\n" not in msg
        assert msg.startswith(f"could not download facebook/belebele/data/eng_Latn.jsonl@{bb.HF_REVISION[:12]}")
        assert "pass --data-dir with a belebele/ folder" in msg


def test_hub_download_uses_the_pinned_revision(monkeypatch: pytest.MonkeyPatch, fixture_root: Path) -> None:
    import huggingface_hub

    calls: list[dict] = []

    def online(**kwargs: object) -> str:
        calls.append(kwargs)
        return str(fixture_root / "belebele" / str(kwargs["filename"]))

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", online)
    ds = load_belebele(None, ["sw", "en"])
    assert ds.origin == "hub" and ds.revision == bb.HF_REVISION and len(bb.HF_REVISION) == 40
    assert ds.counts() == {"sw": 3, "en": 3}
    assert calls == [
        {"repo_id": "facebook/belebele", "repo_type": "dataset", "filename": f"data/{v}.jsonl",
         "revision": bb.HF_REVISION}
        for v in ("swh_Latn", "eng_Latn")
    ]


def test_variants_match_tydiqa_languages() -> None:
    assert bb.VARIANTS == {"ar": "acm_Arab", "bn": "ben_Beng", "en": "eng_Latn", "fi": "fin_Latn",
                           "id": "ind_Latn", "ko": "kor_Hang", "ru": "rus_Cyrl", "sw": "swh_Latn",
                           "te": "tel_Telu"}


# ------------------------------------------------------------------------------ prompt and candidates
def test_prompt_is_the_studys_verbatim(fixture_root: Path) -> None:
    q = load_belebele(fixture_root, ["en"]).questions[0]
    parts = build_prompt(q)
    expected = (
        "Given the following passage, please answer the following question.  Use the following format:\n\n"
        "Context: A passage containing the answer to the question.\nQuestion: The question being asked.\n"
        "Choices: The possible answers to the question.\nBased on the choices the answer is: The correct answer "
        "to the question: A, B, C, or D.\n\n---\n\n"
        f"Context: {PASSAGES['eng_Latn'][0]}\nQuestion: What did the engineers replace?\n"
        "Choices: \n(A) The footpath\n(B) The rusted steel cables\n(C) The bus lanes\n(D) The eastern towers\n"
        "Based on the choices the answer is: "
    )
    assert parts.raw == expected
    assert parts.raw.endswith("is: ") and parts.user == parts.raw and parts.assistant_prefix == ""
    assert format_choices(["w", "x", "y", "z"]) == "\n(A) w\n(B) x\n(C) y\n(D) z"
    assert CANDIDATES == ("(A)", "(B)", "(C)", "(D)")


# ------------------------------------------------------------------------------ options and sampling
def test_task_is_registered() -> None:
    assert TASKS[NAME] is BelebeleTask and "languages" in TASK_OPTIONS[NAME]


def test_languages_option() -> None:
    assert parse_languages(None) == parse_languages("all") == bb.LANGUAGES
    assert parse_languages("sw, en") == ("sw", "en") == parse_languages(["sw", "en"])
    with pytest.raises(UnknownNameError, match="unknown language of task belebele 'eng'; did you mean 'en'"):
        parse_languages("eng")
    with pytest.raises(UnknownNameError, match="'acm_Arab'; did you mean 'ar'"):
        parse_languages(["acm_Arab"])
    with pytest.raises(ConfigError, match="listed twice"):
        parse_languages("en,en")
    with pytest.raises(ConfigError, match="languages must be"):
        parse_languages(3)


def test_unknown_option(fixture_root: Path) -> None:
    with pytest.raises(UnknownNameError, match="option of task belebele 'language'; did you mean 'languages'"):
        BelebeleTask(TaskSettings(data_dir=fixture_root, options={"language": "en"}))


def test_limit_is_a_stratified_seeded_sample(fixture_root: Path) -> None:
    base = settings(fixture_root)
    picked = BelebeleTask(TaskSettings(limit=6, seed=5, data_dir=fixture_root, options=base.options)).questions
    again = BelebeleTask(TaskSettings(limit=6, seed=5, data_dir=fixture_root, options=base.options)).questions
    assert picked == again
    assert sorted(q.language for q in picked) == ["ar", "ar", "en", "en", "sw", "sw"]
    order = [q.item_id for q in load_belebele(fixture_root, FIXTURE_LANGUAGES).questions]
    assert [q.item_id for q in picked] == sorted((q.item_id for q in picked), key=order.index)  # file order
    shares = stratified_sample(list("aaaaaabbbc"), str, 5, 0)
    assert sorted(shares) == ["a", "a", "a", "b", "b"]


def test_manifest(fixture_root: Path) -> None:
    task = BelebeleTask(settings(fixture_root))
    m = task.manifest()
    assert m["data_origin"] == "local" and m["hub_revision"] is None
    assert m["variants"] == {"en": "eng_Latn", "sw": "swh_Latn", "ar": "acm_Arab"}
    assert m["questions_per_language"] == {"en": 3, "sw": 3, "ar": 3} and m["n_questions"] == 9
    assert m["item_ids"] == [q.item_id for q in task.questions]
    assert set(m["data_paths"]) == {"eng_Latn", "swh_Latn", "acm_Arab"}


# ------------------------------------------------------------------------------ scoring with a fake engine
GOOD, BAD = 0.5, 2.0  # mean NLL of the picked candidate and of the others


class FakeEngine:
    """Scores the candidate `picks[question]` at NLL 0.5 per token and the others at 2.0."""

    def __init__(self, name: str, picks: dict[str, int]) -> None:
        self.model = SimpleNamespace(info=SimpleNamespace(name=name), has_chat_template=True)
        self.picks = picks
        self.requests: list[ScoreRequest] = []

    def score(self, requests, desc: str = "") -> list[list[ContinuationScore]]:
        self.requests.extend(requests)
        out = []
        for r in requests:
            question = (r.prompt.user or r.prompt.text).split("\nQuestion: ")[-1].split("\nChoices: ")[0]
            pick = self.picks.get(question)
            out.append([ContinuationScore((GOOD if i == pick else BAD) * 2, 2) for i in range(len(r.continuations))])
        return out


def _picks(correct: dict[str, list[bool]]) -> dict[str, int]:
    """question -> picked index: the right answer where True, the next one where False."""
    picks = {}
    for variant, flags in correct.items():
        for (_, _, _, question, _, num), ok in zip(QUESTIONS[variant], flags):
            right = int(num) - 1
            picks[question] = right if ok else (right + 1) % 4
    return picks


# model A: en 3/3, sw 1/3, ar 0/3; model B: en 3/3, sw 3/3, ar 2/3 (B never loses an item A gets right)
PICKS_A = _picks({"eng_Latn": [True] * 3, "swh_Latn": [True, False, False], "acm_Arab": [False] * 3})
PICKS_B = _picks({"eng_Latn": [True] * 3, "swh_Latn": [True] * 3, "acm_Arab": [False, True, True]})


def test_run_scores_argmax_and_records(fixture_root: Path) -> None:
    task = BelebeleTask(settings(fixture_root))
    engine = FakeEngine("A", PICKS_A)
    records = task.run(engine, "raw")  # type: ignore[arg-type]
    assert all(r.continuations == CANDIDATES for r in engine.requests)
    assert [r.prompt for r in engine.requests] == [Prompt.raw(build_prompt(q).raw) for q in task.questions]
    top = math.exp(-GOOD) / (math.exp(-GOOD) + 3 * math.exp(-BAD))
    by_id = {r.item_id: r for r in records}
    for q in task.questions:
        r = by_id[q.item_id]
        pick = PICKS_A[q.question]
        assert r.task == NAME and r.model == "A" and r.group == q.language
        assert r.prediction == "ABCD"[pick]
        assert r.distribution[pick] == pytest.approx(top) and sum(r.distribution) == pytest.approx(1.0)
        assert r.metrics == {"correct": int(pick == q.correct_index)}
        assert r.extra["variant"] == q.variant and r.extra["correct_index"] == q.correct_index
        assert r.extra["nll_mean"] == [GOOD if i == pick else BAD for i in range(4)]
    assert sum(r.metrics["correct"] for r in records) == 4


def test_ties_pick_the_first_candidate_and_chat_format(fixture_root: Path) -> None:
    task = BelebeleTask(settings(fixture_root, languages="en"))
    engine = FakeEngine("tie", {})  # every candidate at the same NLL
    records = task.run(engine, "chat")  # type: ignore[arg-type]
    assert [r.prediction for r in records] == ["A", "A", "A"]
    assert [r.metrics["correct"] for r in records] == [0, 0, 1]  # the third question's answer is (A)
    assert records[0].distribution == [0.25] * 4
    assert engine.requests[0].prompt == Prompt.chat(build_prompt(task.questions[0]).user)  # the backend renders it


def test_metrics_and_mcnemar_by_hand(fixture_root: Path) -> None:
    task = BelebeleTask(settings(fixture_root))
    records = {"A": task.run(FakeEngine("A", PICKS_A), "raw"),  # type: ignore[arg-type]
               "B": task.run(FakeEngine("B", PICKS_B), "raw")}  # type: ignore[arg-type]
    metrics = {(m.model, m.group): m for m in task.metrics(records)}
    assert [(m.group, m.metric) for m in task.metrics(records)][:4] == [
        ("all", "accuracy"), ("ar", "accuracy"), ("en", "accuracy"), ("sw", "accuracy")]  # code order
    expected = {("A", "all"): (4 / 9, 9), ("A", "en"): (1.0, 3), ("A", "sw"): (1 / 3, 3), ("A", "ar"): (0.0, 3),
                ("B", "all"): (8 / 9, 9), ("B", "en"): (1.0, 3), ("B", "sw"): (1.0, 3), ("B", "ar"): (2 / 3, 3)}
    assert set(metrics) == set(expected)
    for key, (value, n) in expected.items():
        row = metrics[key]
        assert row.value == pytest.approx(value) and row.n == n and row.ci_low <= row.value <= row.ci_high

    rows = {c.group: c for c in task.comparisons(records, [("A", "B")])}
    assert list(rows) == ["all", "ar", "en", "sw"]
    # discordant pairs are all "B right, A wrong": all 4 (p = 2 * 0.5^4), en 0 (p = 1), sw 2 and ar 2 (p = 0.5)
    hand = {"all": (4 / 9, 0.125), "en": (0.0, 1.0), "sw": (2 / 3, 0.5), "ar": (2 / 3, 0.5)}
    # Holm over 4 tests: sorted 0.125, 0.5, 0.5, 1 -> 4*0.125 = 0.5, then min(1, 3*0.5) = 1 onwards
    holm_hand = {"all": 0.5, "en": 1.0, "sw": 1.0, "ar": 1.0}
    for group, (delta, p) in hand.items():
        c = rows[group]
        assert (c.task, c.metric, c.model_a, c.model_b, c.n) == (NAME, "accuracy", "A", "B", 9 if group == "all" else 3)
        assert c.delta == pytest.approx(delta) and c.p_value == pytest.approx(p)
        assert c.p_adjusted == pytest.approx(holm_hand[group]) and c.test == "McNemar exact"
        assert c.ci_low <= c.delta <= c.ci_high


def test_comparisons_pair_by_item_id(fixture_root: Path) -> None:
    task = BelebeleTask(settings(fixture_root))
    a = task.run(FakeEngine("A", PICKS_A), "raw")  # type: ignore[arg-type]
    b = list(reversed(task.run(FakeEngine("B", PICKS_B), "raw")))[:7]  # other order, two en items missing
    rows = {c.group: c for c in task.comparisons({"A": a, "B": b}, [("A", "B")])}
    assert rows["all"].n == 7 and rows["en"].n == 1 and rows["sw"].n == 3 and rows["ar"].n == 3
    assert rows["all"].delta == pytest.approx(4 / 7)


# ------------------------------------------------------------------------------ a real model, end to end
@pytest.mark.slow
def test_run_with_a_packaged_model(private_cache: Path, fixture_root: Path, tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text("tasks:\n  - name: belebele\n    languages: en,sw,ar\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["run", str(config), "--model", "smollm2-135m-instruct", "--data-dir", str(fixture_root),
                 "--n-boot", "50", "--quiet", "--output", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    task = manifest["tasks"][NAME]
    assert task["data_origin"] == "local" and task["questions_per_language"] == {"en": 3, "sw": 3, "ar": 3}
    rows = [json.loads(line) for line in (out / "samples.jsonl").open(encoding="utf-8")]
    assert [r["item_id"] for r in rows] == task["item_ids"]
    for row in rows:
        assert row["task"] == NAME and row["group"] in ("en", "sw", "ar")
        assert len(row["distribution"]) == 4 and abs(sum(row["distribution"]) - 1) < 1e-9
        best = max(range(4), key=row["distribution"].__getitem__)
        assert row["prediction"] == "ABCD"[best]
        assert row["metrics"]["correct"] == int(best == row["extra"]["correct_index"])
        assert all(math.isfinite(x) for x in row["extra"]["nll_mean"])
    metrics = {(r["task"], r["group"], r["metric"]) for r in csv.DictReader((out / "metrics.csv").open())}
    assert {(NAME, g, "accuracy") for g in ("all", "en", "sw", "ar")} <= metrics
