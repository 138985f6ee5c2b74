"""Country-preference probes: the article rule against every prompt of the study's reference file,
ranking direction by sentiment, Spearman against scipy, and the reproduction of the study's
Starling-RM vs Gallup correlations (0.926 for 2017, 0.849 for 2023) by re-scoring its reference file."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scipy.stats import spearmanr

from globalign.cli import EXIT_USER_ERROR, main
from globalign.data.reward_probe import (
    ASKREDDIT_REFERENCE,
    GALLUP_ORDERS,
    WHERE_FROM_REFERENCE,
    load_askreddit,
    load_country_set_181,
    load_where_from_countries,
    where_from_text,
    with_article,
)
from globalign.errors import DataError
from globalign.stats.ranks import order_spearman, pair_spearman, question_ranks


# ---------------------------------------------------------------------------------- data and text rules
def test_article_rule_reproduces_every_where_from_prompt(data_dir):
    path = data_dir / "reward_probe" / WHERE_FROM_REFERENCE
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert len(rows) == 254 == len(load_where_from_countries(data_dir))
    assert [where_from_text(r["country"]) for r in rows] == [r["prompt"] for r in rows]


@pytest.mark.parametrize(
    ("name", "expected"),
    [("United Kingdom", "the United Kingdom"), ("France", "France"), ("The Bahamas", "The Bahamas"),
     ("Gambia", "the Gambia"), ("Cook Islands", "the Cook Islands"), ("Norfolk Island", "the Norfolk Island"),
     ("Czech Republic", "the Czech Republic"), ("Vatican", "the Vatican"), ("Ivory Coast", "the Ivory Coast")],
)
def test_article_rule(name, expected):
    assert with_article(name) == expected


def test_askreddit_questions_and_capitalised_article(data_dir):
    questions = load_askreddit(data_dir)
    assert len(questions) == 554
    assert {q.sentiment for q in questions} == {"positive", "negative"}
    first = next(q for q in questions if q.template.startswith("{country}"))
    assert first.response("United Kingdom").startswith("The United Kingdom")
    assert first.reward_text("France").startswith(f"<s>[INST] {first.question} </s> [/INST] France")
    middle = next(q for q in questions if not q.template.startswith("{country}"))
    assert " the United Kingdom" in middle.response("United Kingdom")
    assert len(load_country_set_181(data_dir)) == 181


def test_lm_prompts_match_the_studys_outputs(data_dir):
    """The LM probe's prompt = question + template text before {country}; the study's file for the
    model it ran without a chat template (Mistral-7B-v0.1) holds exactly these prompts."""
    path = data_dir / "paper_outputs" / "outputs" / "ask-reddit-perplexity-testing" / "Mistral-7B-v0.1-reformatted.csv"
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert [q.lm_prompt() for q in load_askreddit(data_dir)] == [r["Full Prompt"] for r in rows]


def test_missing_probe_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="reward probe data not found"):
        load_askreddit(tmp_path)


# ---------------------------------------------------------------------------------- statistics
def test_ranking_direction_follows_sentiment():
    scores = np.array([[3.0, 1.0, 2.0],   # positive: highest score first
                       [3.0, 1.0, 2.0],   # negative: lowest score first
                       [1.0, 1.0, 5.0]])  # positive with a tie
    ranks = question_ranks(scores, [True, False, True])
    assert ranks.tolist() == [[1, 3, 2], [3, 1, 2], [2.5, 2.5, 1]]
    with pytest.raises(ValueError, match="finite"):
        question_ranks(np.array([[np.nan, 1.0]]), [True])


def test_order_spearman_equals_scipy_and_has_a_question_bootstrap_ci():
    rng = np.random.default_rng(1)
    ranks = question_ranks(rng.normal(size=(40, 8)) + np.arange(8)[::-1] * 0.3, np.ones(40, bool))
    result = order_spearman(ranks, [0, 1, 2, 3, 4, 5, 6, 7], n_boot=2000, seed=0)
    expected = spearmanr(ranks.mean(axis=0), np.arange(1, 9))
    assert result.rho == pytest.approx(expected.statistic) and result.p_value == pytest.approx(expected.pvalue)
    assert result.ci_low <= result.rho <= result.ci_high and result.n == 8
    b = question_ranks(rng.normal(size=(40, 8)), np.ones(40, bool))
    pair = pair_spearman(ranks, b, n_boot=500, seed=0)
    assert pair.rho == pytest.approx(spearmanr(ranks.mean(axis=0), b.mean(axis=0)).statistic)
    assert pair_spearman(ranks, ranks, n_boot=200, seed=0).ci_low == pytest.approx(1.0)


# ---------------------------------------------------------------------------------- re-scoring
def test_rescore_reproduces_the_studys_gallup_correlations(data_dir, tmp_path):
    out = tmp_path / "askreddit"
    assert main(["rescore", "--task", "askreddit", "--predictions", str(data_dir / "reward_probe" / ASKREDDIT_REFERENCE),
                 "--output", str(out), "--data-dir", str(data_dir), "--n-boot", "500"]) == 0
    rows = {r["group"]: r for r in csv.DictReader((out / "comparisons.csv").open()) if r["metric"] == "spearman_mean_rank"}
    assert round(float(rows["gallup_2017"]["delta"]), 3) == 0.926
    assert round(float(rows["gallup_2023"]["delta"]), 3) == 0.849
    assert rows["gallup_2017"]["model_b"] == "berkeley-nest/Starling-RM-7B-alpha"
    assert int(rows["gallup_2017"]["n"]) == 21 and float(rows["gallup_2017"]["p_value"]) < 1e-6
    metrics = list(csv.DictReader((out / "metrics.csv").open()))
    ranks = [r for r in metrics if r["metric"] == "mean_rank"]
    assert len(ranks) == 181 and all(int(r["n"]) == 554 for r in ranks)
    assert {r["metric"] for r in metrics} >= {"reward", "win_rate_positive", "win_rate_negative"}
    assert len((out / "samples.jsonl").read_text().splitlines()) == 554


def test_rescore_where_from_ranks_every_country(data_dir, tmp_path):
    out = tmp_path / "where"
    assert main(["rescore", "--task", "where_from", "--predictions",
                 str(data_dir / "reward_probe" / WHERE_FROM_REFERENCE), "--output", str(out), "--n-boot", "100",
                 "--data-dir", str(data_dir)]) == 0
    metrics = list(csv.DictReader((out / "metrics.csv").open()))
    ranks = {r["group"]: float(r["value"]) for r in metrics if r["metric"] == "mean_rank"}
    rewards = {r["group"]: float(r["value"]) for r in metrics if r["metric"] == "reward"}
    assert len(ranks) == 254 and sorted(ranks.values()) == list(map(float, range(1, 255)))
    best = min(ranks, key=ranks.get)
    assert rewards[best] == max(rewards.values())  # rank 1 = the highest reward
    sample = json.loads((out / "samples.jsonl").read_text())
    assert sample["prediction"] == best


def test_rescore_askreddit_bad_sentiment(tmp_path, data_dir, capsys):
    countries = load_country_set_181(data_dir)
    path = tmp_path / "bad.csv"
    path.write_text("Sentiment,reward_model," + ",".join(countries) + "\n"
                    + "neutral,rm," + ",".join("1" for _ in countries) + "\n")
    assert main(["rescore", "--task", "askreddit", "--predictions", str(path), "--output", str(tmp_path / "o"),
                 "--data-dir", str(data_dir)]) == EXIT_USER_ERROR
    assert "Sentiment must be positive or negative" in capsys.readouterr().err


def test_gallup_orders_use_names_of_the_ranking_set(data_dir):
    ranking = set(load_country_set_181(data_dir))
    for order in GALLUP_ORDERS.values():
        assert len(order) == 21 and set(order) <= ranking
