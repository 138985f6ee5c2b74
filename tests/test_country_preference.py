"""globalign.tasks.country_preference on a hand-ranked example.

Three countries, three questions (rewards; rank 1 = the favourable end):
  q1 positive  A=3 US=1 C=2 -> ranks A1 US3 C2
  q2 negative  A=3 US=1 C=2 -> ranks A3 US1 C2  (the lowest reward is the favourable end)
  q3 positive  A=0 US=5 C=6 -> ranks A3 US2 C1
Mean rank: A (1+3+3)/3 = 7/3, US (3+1+2)/3 = 2, C (2+2+1)/3 = 5/3.
Mean reward: A 6/3 = 2, US 7/3, C 10/3.
Ahead of US on positive questions (q1, q3): A yes/no -> 1/2, C yes/yes -> 1; on q2 (negative): A no, C no.
The intervals are those of `column_mean_cis` / `order_spearman` / `pair_spearman` (tested in
test_ranks.py) on these hand-made matrices, with the run's n_boot and seed.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from globalign.data.reward_probe import REFERENCE_COUNTRY, load_country_set_181
from globalign.stats.ranks import column_mean_cis, order_spearman, pair_spearman
from globalign.tasks.base import ComparisonRow, MetricRow, SampleRecord, StatsSettings, TaskSettings
from globalign.tasks.country_preference import (
    GALLUP_MODEL,
    ProbeScores,
    gallup_comparisons,
    model_matrix,
    preference_comparisons,
    preference_metrics,
    probe_from_records,
    probe_metrics,
    samples,
)

US = "US"
COUNTRIES = ("A", US, "C")
VALUES = np.array([[3.0, 1.0, 2.0], [3.0, 1.0, 2.0], [0.0, 5.0, 6.0]])
POSITIVE = (True, False, True)
RANKS = np.array([[1.0, 3.0, 2.0], [3.0, 1.0, 2.0], [3.0, 2.0, 1.0]])  # by hand, columns A, US, C
STATS = StatsSettings(n_boot=300, n_perm=10, seed=11)


def _probe(values=VALUES, kind="reward", model="rm", countries=COUNTRIES, ids=("q1", "q2", "q3"),
           positive=POSITIVE, task="where_from"):
    return ProbeScores(task, model, kind, tuple(countries), tuple(ids), tuple(positive), np.asarray(values))


def _rows(rows, metric):
    return [r for r in rows if r.metric == metric]


def _expected_rows(model, metric, groups, matrix, stats=STATS, task="where_from"):
    cis = column_mean_cis(np.asarray(matrix, dtype=np.float64), n_boot=stats.n_boot, seed=stats.seed)
    return [MetricRow(task, model, g, metric, e.value, e.ci_low, e.ci_high, e.n) for g, e in zip(groups, cis)]


def test_scores_are_rewards_or_minus_nll():
    assert np.array_equal(_probe().scores, VALUES)
    assert np.array_equal(_probe(kind="lm_nll").scores, -VALUES)


def test_probe_metrics_by_hand():
    rows = probe_metrics(_probe(), list(COUNTRIES), US, STATS)
    assert [(r.group, r.value) for r in _rows(rows, "reward")] == [("A", 2.0), (US, pytest.approx(7 / 3)),
                                                                    ("C", pytest.approx(10 / 3))]
    assert _rows(rows, "reward") == _expected_rows("rm", "reward", COUNTRIES, VALUES)
    assert [(r.group, r.value) for r in _rows(rows, "mean_rank")] == [("A", pytest.approx(7 / 3)), (US, 2.0),
                                                                       ("C", pytest.approx(5 / 3))]
    assert _rows(rows, "mean_rank") == _expected_rows("rm", "mean_rank", COUNTRIES, RANKS)
    # Ahead of US: rows q1, q3 (positive) and q2 (negative); columns A, C.
    assert _rows(rows, "win_rate_positive") == _expected_rows("rm", "win_rate_positive", ["A", "C"],
                                                              [[1.0, 1.0], [0.0, 1.0]])
    assert [r.value for r in _rows(rows, "win_rate_positive")] == [0.5, 1.0]
    assert _rows(rows, "win_rate_negative") == _expected_rows("rm", "win_rate_negative", ["A", "C"], [[0.0, 0.0]])
    assert [r.n for r in rows] == [3] * 6 + [2, 2, 1, 1]
    assert len(rows) == 10


def test_probe_metrics_ranks_within_the_ranking_set_in_its_order():
    # Ranking set (C, US): ranks by hand q1 C1 US2, q2 C2 US1, q3 C1 US2; US is the last column.
    rows = probe_metrics(_probe(), ["C", US], US, STATS)
    assert _rows(rows, "mean_rank") == _expected_rows("rm", "mean_rank", ["C", US], [[1, 2], [2, 1], [1, 2]])
    assert _rows(rows, "win_rate_positive") == _expected_rows("rm", "win_rate_positive", ["C"], [[1.0], [1.0]])
    assert _rows(rows, "win_rate_negative") == _expected_rows("rm", "win_rate_negative", ["C"], [[0.0]])
    assert len(_rows(rows, "reward")) == 3  # the mean value is reported for every country scored


def test_probe_metrics_of_nll_ranks_the_lowest_nll_first():
    # NLL = VALUES: q1 positive -> lowest NLL first: A3 US1 C2; q2 negative -> A1 US3 C2; q3: A1 US2 C3.
    rows = probe_metrics(_probe(kind="lm_nll", model="lm"), list(COUNTRIES), US, STATS)
    assert _rows(rows, "reward") == []
    assert _rows(rows, "nll_mean") == _expected_rows("lm", "nll_mean", COUNTRIES, VALUES)
    assert _rows(rows, "mean_rank") == _expected_rows("lm", "mean_rank", COUNTRIES, [[3, 1, 2], [1, 3, 2], [1, 2, 3]])
    # Ahead of US on q1, q3: A no/yes, C no/no; on q2: A yes, C yes.
    assert _rows(rows, "win_rate_positive") == _expected_rows("lm", "win_rate_positive", ["A", "C"],
                                                              [[0.0, 0.0], [1.0, 0.0]])
    assert _rows(rows, "win_rate_negative") == _expected_rows("lm", "win_rate_negative", ["A", "C"], [[1.0, 1.0]])


def test_probe_metrics_without_negative_questions_or_reference():
    rows = probe_metrics(_probe(positive=(True, True, True)), list(COUNTRIES), US, STATS)
    assert _rows(rows, "win_rate_negative") == []
    assert len(_rows(rows, "win_rate_positive")) == 2
    rows = probe_metrics(_probe(positive=(False, False, False)), list(COUNTRIES), US, STATS)
    assert _rows(rows, "win_rate_positive") == [] and len(_rows(rows, "win_rate_negative")) == 2
    rows = probe_metrics(_probe(), ["A", "C"], US, STATS)
    assert {r.metric for r in rows} == {"reward", "mean_rank"}


def test_probe_metrics_names_the_missing_countries():
    with pytest.raises(ValueError, match=r"^rm: no scores for Atlantis, Mu$"):
        probe_metrics(_probe(), ["A", "Atlantis", "Mu"], US, STATS)
    with pytest.raises(ValueError, match=r"^rm: no scores for X1, X2, X3$"):
        probe_metrics(_probe(), ["X1", "X2", "X3", "X4"], US, STATS)


def test_samples_name_the_top_country_and_round_trip():
    probe = _probe()
    records = samples(probe)
    assert [r.prediction for r in records] == ["A", US, "C"]  # rank 1 per question, by hand
    assert [r.group for r in records] == ["positive", "negative", "positive"]
    assert records[0] == SampleRecord(task="where_from", model="rm", item_id="q1", group="positive", prompt_hash="",
                                      prediction="A", distribution=None,
                                      metrics={"reward@A": 3.0, f"reward@{US}": 1.0, "reward@C": 2.0},
                                      extra={"probe_kind": "reward"})
    back = probe_from_records(records)
    assert (back.task, back.model, back.kind, back.countries, back.question_ids, back.positive) == (
        "where_from", "rm", "reward", COUNTRIES, ("q1", "q2", "q3"), POSITIVE)
    assert np.array_equal(back.values, VALUES)
    nll = samples(_probe(kind="lm_nll"))
    assert [r.prediction for r in nll] == [US, "A", "A"]  # lowest NLL on q1; highest on q2 (negative); q3
    assert probe_from_records(nll).kind == "lm_nll" and f"nll_mean@{US}" in nll[0].metrics


def test_gallup_comparisons_correlate_the_lists_order_with_the_mean_ranks():
    orders = {"list_1": ("C", "A", US), "list_2": (US, "C")}
    rows = gallup_comparisons(_probe(), list(COUNTRIES), orders, STATS)
    # list_1: mean ranks C 5/3, A 7/3, US 2 against positions 1, 2, 3 -> ranks (1, 3, 2): rho = 0.5.
    one = order_spearman(RANKS, [2, 0, 1], n_boot=STATS.n_boot, seed=STATS.seed)
    p1 = spearmanr([5 / 3, 7 / 3, 2], [1, 2, 3]).pvalue
    assert rows[0] == ComparisonRow("where_from", "list_1", "spearman_mean_rank", GALLUP_MODEL, "rm",
                                    pytest.approx(0.5), one.ci_low, one.ci_high, pytest.approx(p1),
                                    pytest.approx(p1), "Spearman (CI: question bootstrap)", 3)
    # list_2: US 2, C 5/3 against 1, 2 -> rho = -1.
    assert rows[1].group == "list_2" and rows[1].delta == pytest.approx(-1.0) and rows[1].n == 2
    assert len(rows) == 2


def test_model_matrix_pairs_models_on_the_same_questions():
    a = _probe(model="a")
    b = _probe(model="b", kind="lm_nll")  # NLL ranks by hand in test_probe_metrics_of_nll_...
    other = _probe(model="c", ids=("q1", "q2", "x"))
    d = _probe(model="d", values=VALUES[:, [2, 1, 0]])  # A and C swapped: ranks A 5/3, US 2, C 7/3
    rows = model_matrix([a, b, other, d], list(COUNTRIES), STATS)
    assert [(r.model_a, r.model_b) for r in rows] == [("a", "b"), ("a", "d"), ("b", "d")]
    ranks_b = np.array([[3.0, 1.0, 2.0], [1.0, 3.0, 2.0], [1.0, 2.0, 3.0]])
    rho_ab = spearmanr(RANKS.mean(axis=0), ranks_b.mean(axis=0))  # (7/3, 2, 5/3) vs (5/3, 2, 7/3): -1
    ci = pair_spearman(RANKS, ranks_b, n_boot=STATS.n_boot, seed=STATS.seed)
    assert rows[0] == ComparisonRow("where_from", "all", "spearman_mean_rank", "a", "b", pytest.approx(-1.0),
                                    ci.ci_low, ci.ci_high, pytest.approx(rho_ab.pvalue), pytest.approx(rho_ab.pvalue),
                                    "Spearman (CI: question bootstrap)", 3)
    assert rows[1].delta == pytest.approx(-1.0) and rows[2].delta == pytest.approx(1.0)
    # Ranked within the subset (C, A), by hand: a C 4/3, A 5/3; d C 5/3, A 4/3 -> rho -1.
    sub = model_matrix([a, d], ["C", "A"], STATS)
    assert len(sub) == 1 and sub[0].n == 2 and sub[0].delta == pytest.approx(-1.0)


def test_where_from_metrics_and_comparisons_rank_every_country_scored():
    countries = ("Atlantis", REFERENCE_COUNTRY, "Mu")
    probe = _probe(countries=countries)
    settings = TaskSettings(stats=STATS)
    rows = preference_metrics({"rm": samples(probe)}, settings)
    assert rows == probe_metrics(probe, list(countries), REFERENCE_COUNTRY, STATS)
    assert [r.group for r in _rows(rows, "win_rate_positive")] == ["Atlantis", "Mu"]
    # where-from has no Gallup lists and no model matrix in the study.
    assert preference_comparisons({"rm": samples(probe), "rm2": samples(_probe(countries=countries, model="rm2"))},
                                  [], settings) == []
    assert preference_comparisons({}, [], settings) == []


def test_askreddit_ranks_the_181_country_set_and_adds_gallup_and_the_matrix(data_dir):
    ranking = load_country_set_181(data_dir)
    scored = ["Atlantis", *ranking[::-1]]  # a country outside the set, and the set in another order
    rng = np.random.default_rng(0)
    settings = TaskSettings(data_dir=data_dir, stats=StatsSettings(n_boot=50, seed=2))
    probes = [_probe(task="askreddit", model=m, countries=scored, ids=[f"q{i}" for i in range(6)],
                     positive=[True, False] * 3, values=rng.normal(size=(6, len(scored)))) for m in ("m1", "m2")]
    records = {p.model: samples(p) for p in probes}
    metrics = preference_metrics(records, settings)
    expected = probe_metrics(probes[0], ranking, REFERENCE_COUNTRY, settings.stats)
    assert metrics[: len(expected)] == expected
    assert [r.group for r in _rows(metrics, "mean_rank")][:181] == ranking
    assert len(_rows(metrics, "mean_rank")) == 2 * 181
    comparisons = preference_comparisons(records, [], settings)
    assert [(r.group, r.model_a, r.model_b) for r in comparisons] == [
        ("gallup_2017", GALLUP_MODEL, "m1"), ("gallup_2023", GALLUP_MODEL, "m1"),
        ("gallup_2017", GALLUP_MODEL, "m2"), ("gallup_2023", GALLUP_MODEL, "m2"), ("all", "m1", "m2")]
    assert comparisons[-1].n == 181
    # Scored on a subset: the ranking set keeps the set's order and drops what was not scored.
    subset = ranking[:40] + [REFERENCE_COUNTRY] if REFERENCE_COUNTRY not in ranking[:40] else ranking[:40]
    small = _probe(task="askreddit", countries=subset[::-1], ids=["q1", "q2"], positive=[True, False],
                   values=rng.normal(size=(2, len(subset))))
    kept = [c for c in ranking if c in set(subset)]
    assert [r.group for r in _rows(preference_metrics({"rm": samples(small)}, settings), "mean_rank")] == kept


def test_intervals_use_the_runs_resamples_and_seed():
    # On 40 random questions and 15 countries the intervals depend on n_boot and the seed (checked
    # below), so each must be the ranks function's with the run's settings. Ranks by double argsort
    # (no ties in normal draws), apart from question_ranks.
    rng = np.random.default_rng(5)
    countries = tuple(f"c{i}" for i in range(15))
    ids = tuple(f"q{i}" for i in range(40))
    positive = tuple(bool(x) for x in rng.integers(0, 2, 40))
    a = _probe(values=rng.normal(size=(40, 15)), countries=countries, ids=ids, positive=positive, model="a")
    b = _probe(values=rng.normal(size=(40, 15)), countries=countries, ids=ids, positive=positive, model="b")
    stats = StatsSettings(n_boot=400, seed=3)
    ranks_a = np.array([np.argsort(np.argsort(-s if p else s)) + 1.0 for s, p in zip(a.values, positive)])
    ranks_b = np.array([np.argsort(np.argsort(-s if p else s)) + 1.0 for s, p in zip(b.values, positive)])
    columns = [1, 12, 7, 10, 14, 4, 5, 8, 0, 9, 2, 13, 11, 6, 3]

    def cis(result):
        return result.ci_low, result.ci_high

    gallup = gallup_comparisons(a, list(countries), {"g": [countries[c] for c in columns]}, stats)[0]
    want = cis(order_spearman(ranks_a, columns, n_boot=400, seed=3))
    assert cis(gallup) == want
    assert cis(order_spearman(ranks_a, columns, n_boot=400, seed=4)) != want
    assert cis(order_spearman(ranks_a, columns, n_boot=10_000, seed=3)) != want
    assert cis(order_spearman(ranks_a, columns, n_boot=400, seed=0)) != want
    pair = model_matrix([a, b], list(countries), stats)[0]
    want = cis(pair_spearman(ranks_a, ranks_b, n_boot=400, seed=3))
    assert cis(pair) == want
    assert cis(pair_spearman(ranks_a, ranks_b, n_boot=400, seed=4)) != want
    assert cis(pair_spearman(ranks_a, ranks_b, n_boot=10_000, seed=3)) != want
    rows = probe_metrics(a, list(countries), "c0", stats)
    assert _rows(rows, "mean_rank") == _expected_rows("a", "mean_rank", countries, ranks_a, stats)
    assert _rows(rows, "mean_rank") != _expected_rows("a", "mean_rank", countries, ranks_a, StatsSettings(400, seed=4))


def test_a_tie_with_the_reference_is_not_a_win():
    # One positive question, A and US tied: ranks A 1.5, US 1.5, C 3 -> neither A nor C is ahead of US.
    probe = _probe(values=[[2.0, 2.0, 1.0]], ids=("q1",), positive=(True,))
    rows = probe_metrics(probe, list(COUNTRIES), US, STATS)
    assert [(r.group, r.value) for r in _rows(rows, "win_rate_positive")] == [("A", 0.0), ("C", 0.0)]


def test_mean_values_and_win_rates_use_the_runs_resamples_and_seed():
    rng = np.random.default_rng(8)
    countries = (US, *(f"c{i}" for i in range(5)))
    positive = (True, False) * 30
    probe = _probe(values=rng.normal(size=(60, 6)), countries=countries, ids=tuple(map(str, range(60))),
                   positive=positive)
    stats = StatsSettings(n_boot=400, seed=3)
    rows = probe_metrics(probe, list(countries), US, stats)
    ranks = np.array([np.argsort(np.argsort(-s if p else s)) + 1.0 for s, p in zip(probe.values, positive)])
    ahead = ranks[:, 1:] < ranks[:, :1]
    for settings, same in ((stats, True), (StatsSettings(400, seed=4), False), (StatsSettings(10_000, seed=3), False)):
        want = {
            "reward": _expected_rows("rm", "reward", countries, probe.values, settings),
            "win_rate_positive": _expected_rows("rm", "win_rate_positive", countries[1:], ahead[0::2], settings),
            "win_rate_negative": _expected_rows("rm", "win_rate_negative", countries[1:], ahead[1::2], settings),
        }
        for metric, expected in want.items():
            assert (_rows(rows, metric) == expected) is same, (metric, settings)
