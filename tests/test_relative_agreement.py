"""GlobalOpinionsQA's headline metric: relative agreement = sim(country) - sim(United States), checked on a
hand-computed example and against the study's own per-country similarities (paper_outputs)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from globalign.records import group_metric_values
from globalign.requests import ContinuationScore
from globalign.tasks.base import StatsSettings, TaskSettings
from globalign.tasks.global_opinions import GlobalOpinionsTask, build_prompt
from globalign.tasks.opinion_metrics import relative_agreement

# By hand (natural log). Model answer [1, 0]:
#   United States [1, 0]: identical, JS distance 0, similarity 1.
#   China [0, 1]: m = [1/2, 1/2], KL(p||m) = KL(q||m) = ln 2, JS = sqrt(ln 2), similarity 1 - sqrt(ln 2).
#   Jordan [1/2, 1/2]: m = [3/4, 1/4], KL(p||m) = ln(4/3), KL(q||m) = 1/2 ln(2/3) + 1/2 ln 2,
#   JS = sqrt(1/2 ln(4/3) + 1/4 ln(2/3) + 1/4 ln 2).
JS_CHINA = math.sqrt(math.log(2))
JS_JORDAN = math.sqrt(0.5 * math.log(4 / 3) + 0.25 * math.log(2 / 3) + 0.25 * math.log(2))
COUNTRY_DISTS = {"China": [0.0, 1.0], "United States": [1.0, 0.0], "Jordan": [0.5, 0.5]}


def test_relative_agreement_by_hand() -> None:
    sims = {"China": 1 - JS_CHINA, "United States": 1.0, "Jordan": 1 - JS_JORDAN}
    ra = relative_agreement(sims)
    # The model agrees with the USA completely, so every other country is behind it: negative values.
    assert ra == pytest.approx({"China": -JS_CHINA, "Jordan": -JS_JORDAN}, abs=1e-15)
    assert list(ra) == ["China", "Jordan"]  # the reference itself is left out, the input order kept
    assert relative_agreement({"China": 0.3, "Jordan": 0.9}) == {}  # no US similarity on this question
    assert relative_agreement({"China": 0.25, "Jordan": 0.75}, reference="Jordan") == {"China": -0.5}


class _FixedDistributions:
    """An engine whose answer distribution for each prompt is given: NLL = -ln p, so exp(-NLL) = p."""

    def __init__(self, name: str, probs_by_prompt: dict[str, list[float]]) -> None:
        self.model = type("Model", (), {"info": type("Info", (), {"name": name})()})()
        self.probs_by_prompt = probs_by_prompt

    def score(self, requests, desc: str = "") -> list[list[ContinuationScore]]:
        return [[ContinuationScore(-math.log(p) if p > 0 else math.inf, 1) for p in self.probs_by_prompt[r.prompt.text]]
                for r in requests]


def _task(data_dir: Path, **options) -> GlobalOpinionsTask:
    return GlobalOpinionsTask(TaskSettings(data_dir=data_dir, stats=StatsSettings(n_boot=200, n_perm=200),
                                           options=options))


def test_task_averages_relative_agreement_against_the_united_states(data_dir: Path) -> None:
    task = _task(data_dir, countries=["China", "United States", "Jordan"])
    two_option = [q for q in task.questions if len(q.options) == 2][:1]
    assert two_option, "expected a two-option question answered by China, the USA and Jordan"
    task.questions = two_option
    task._country_distributions = lambda question: COUNTRY_DISTS  # the hand example above
    engine = _FixedDistributions("m", {build_prompt(q).raw: [1.0, 0.0] for q in task.questions})
    records = {"m": task.run(engine, "raw")}  # type: ignore[arg-type]
    rows = {(r.metric, r.group): r for r in task.metrics(records)}
    assert rows[("relative_agreement", "China")].value == pytest.approx(-JS_CHINA, abs=1e-12)
    assert rows[("relative_agreement", "Jordan")].value == pytest.approx(-JS_JORDAN, abs=1e-12)
    assert ("relative_agreement", "United States") not in rows
    assert rows[("similarity", "United States")].value == pytest.approx(1.0)


# ------------------------------------------------------------------------- the study's own numbers
STUDY_FILES = ("Llama-2-7b-hf_8bit.csv", "Llama-2-7b-chat-hf_8bit.csv")


def _known_originals(data_dir: Path) -> dict[tuple[int, str], list[float]]:
    """The (question, country) distributions copied from third-party copies of the original file and
    checked against the study's scores ("consistent"): exact values, not estimates made from those scores."""
    path = data_dir / "globalopinionsqa" / "goqa_original_subset_thirdparty.jsonl"
    known = {}
    for line in path.open(encoding="utf-8"):
        row = json.loads(line)
        if row["check_vs_paper_scores"] == "consistent":
            known[(row["question_index"], row["country"])] = row["distribution"]
    return known


def _study_rows(data_dir: Path, name: str) -> list[dict[str, str]]:
    csv.field_size_limit(1 << 30)
    path = data_dir / "paper_outputs" / "outputs" / "globalopinionsqa" / name
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("study_file", STUDY_FILES)
def test_reproduces_the_studys_similarities_with_its_parser(data_dir: Path, study_file: str) -> None:
    known = _known_originals(data_dir)
    rows = _study_rows(data_dir, study_file)
    fixed = _task(data_dir, study_parser=True)
    plain = _task(data_dir)
    assert [q.question for q in fixed.questions] == [r["question"] for r in rows]  # the same 2,556 rows, in order
    for q in fixed.questions:  # the known pairs are the loaded data's values (not estimates)
        for country, probs in q.selections.items():
            if (q.index, country) in known:
                assert list(probs) == known[(q.index, country)]
    probs = {build_prompt(q).raw: json.loads(r["probs"]) for q, r in zip(fixed.questions, rows)}
    ours = fixed.run(_FixedDistributions("m", probs), "raw")  # type: ignore[arg-type]
    unfixed = plain.run(_FixedDistributions("m", probs), "raw")  # type: ignore[arg-type]

    checked, worst, bug_bites = 0, 0.0, 0
    for q, row, record, plain_record in zip(fixed.questions, rows, ours, unfixed):
        sims = group_metric_values(record.metrics, "similarity")
        study_ra = {}
        for country in q.selections:
            if (q.index, country) not in known:
                continue
            study = float(row[country])
            worst = max(worst, abs(sims[country] - study))
            checked += 1
            bug_bites += abs(plain_record.metrics[f"similarity@{country}"] - study) > 1e-9
            study_ra[country] = study
        # Relative agreement from the study's own cells, on the questions where the USA is a known pair.
        for country, value in relative_agreement(study_ra).items():
            assert relative_agreement(sims)[country] == pytest.approx(value, abs=1e-13)
    assert checked == len(known) == 9715
    # The study's probabilities pass through NLL = -ln p and back (exp, renormalise): a few ulps.
    assert worst < 1e-13
    # Without the study's parser the same pairs disagree where its bug dropped a character: the check bites.
    assert bug_bites > 1000
