"""globalign.stats.ranks checked against hand-enumerated bootstrap distributions and scipy.

With two questions (rows) a row bootstrap has exactly three outcomes: both draws on row 1 (p = 1/4),
one on each (p = 1/2: the mean of the two rows) and both on row 2 (p = 1/4). So a 95% interval is
[smallest outcome, largest outcome], and a 40% interval (quantiles 0.3 and 0.7) is the middle outcome
when it lies between the others. The expected numbers below come from that enumeration and scipy.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.stats import spearmanr

from globalign.stats.ranks import (
    _bootstrap_column_means,
    _rowwise_pearson,
    column_mean_cis,
    order_spearman,
    pair_spearman,
    question_ranks,
    spearman,
)

N_BOOT = 20_000  # the outcome frequencies 1/4, 1/2, 1/4 are then within +-0.01 of their value


def test_question_ranks_rejects_bad_shapes_and_infinite_scores():
    with pytest.raises(ValueError, match="scores must be"):
        question_ranks(np.array([1.0, 2.0]), [True])  # 1-D scores
    with pytest.raises(ValueError, match="scores must be"):
        question_ranks(np.ones((1, 2, 2)), [True])  # 3-D scores
    with pytest.raises(ValueError, match="scores must be"):
        question_ranks(np.ones((2, 3)), [True])  # one flag for two questions
    with pytest.raises(ValueError, match="scores must be"):
        question_ranks(np.ones((2, 3)), [[True, False]])  # flags not one per question
    finite = r"^scores must be finite \(a NaN or inf would get an arbitrary rank\)$"
    with pytest.raises(ValueError, match=finite):
        question_ranks(np.array([[np.inf, 1.0]]), [True])
    with pytest.raises(ValueError, match=finite):
        question_ranks(np.array([[1.0, 2.0], [-np.inf, 1.0]]), [True, False])


def test_question_ranks_accepts_lists_and_numeric_flags():
    # 1 / 0 flags are truth values; ranks by hand: [5, 7, 6] positive -> [3, 1, 2]; negative -> [1, 3, 2].
    assert question_ranks([[5, 7, 6], [5, 7, 6]], [1, 0]).tolist() == [[3, 1, 2], [1, 3, 2]]


def test_spearman_is_rho_and_its_p_value():
    # d = ranks differ by 1 on two items: rho = 1 - 6 * 2 / (4 * 15) = 0.8.
    rho, p = spearman([1, 2, 3, 4], [1, 3, 2, 4])
    assert rho == pytest.approx(0.8)
    assert p == pytest.approx(spearmanr([1, 2, 3, 4], [1, 3, 2, 4]).pvalue) and 0.0 < p < 1.0
    assert spearman([1, 2, 3], [3, 2, 1])[0] == pytest.approx(-1.0)


def test_rowwise_pearson_equals_numpy_corrcoef_and_is_nan_for_a_constant_row():
    rows = np.array([[1.0, 2.0, 4.0, 3.0], [4.0, 3.0, 2.0, 1.0], [2.0, 2.0, 2.0, 2.0]])
    y = np.array([1.0, 3.0, 2.0, 5.0])
    got = _rowwise_pearson(rows, y)
    assert got[0] == pytest.approx(np.corrcoef(rows[0], y)[0, 1])
    assert got[1] == pytest.approx(np.corrcoef(rows[1], y)[0, 1])
    assert np.isnan(got[2])


def test_column_mean_cis_two_row_bootstrap_by_enumeration():
    values = np.array([[0.0, 10.0, 3.0], [4.0, 2.0, 3.0]])
    est = column_mean_cis(values, n_boot=N_BOOT, seed=5)
    # value = column mean; 95% CI = [smaller row, larger row]; n = 2 questions.
    assert [e.value for e in est] == [2.0, 6.0, 3.0]
    assert [(e.ci_low, e.ci_high) for e in est] == [(0.0, 4.0), (2.0, 10.0), (3.0, 3.0)]
    assert [e.n for e in est] == [2, 2, 2]
    # 40%: quantiles 0.3 and 0.7 both fall in the middle outcome (probability 1/2 between 1/4 and 3/4).
    mid = column_mean_cis(values, n_boot=N_BOOT, confidence=0.4, seed=5)
    assert [(e.ci_low, e.ci_high) for e in mid] == [(2.0, 2.0), (6.0, 6.0), (3.0, 3.0)]
    # 60%: quantiles 0.2 and 0.8 reach the outer outcomes (each has probability 1/4 > 0.2).
    wide = column_mean_cis(values, n_boot=N_BOOT, confidence=0.6, seed=5)
    assert [(e.ci_low, e.ci_high) for e in wide] == [(0.0, 4.0), (2.0, 10.0), (3.0, 3.0)]


def test_column_mean_cis_defaults_are_10000_resamples_95_percent_seed_0():
    values = np.random.default_rng(2).normal(size=(30, 4))
    assert column_mean_cis(values) == column_mean_cis(values, n_boot=10_000, confidence=0.95, seed=0)
    assert column_mean_cis(values) != column_mean_cis(values, n_boot=10_000, confidence=0.95, seed=1)
    assert column_mean_cis(values) != column_mean_cis(values, n_boot=10_001, confidence=0.95, seed=0)
    with pytest.raises(ValueError, match="confidence"):
        column_mean_cis(values, confidence=1.0)


def test_bootstrap_resamples_whole_rows_in_blocks():
    # 2^14 rows -> blocks of 2^20 / 2^14 = 64 resamples, so 150 resamples take three blocks.
    n = 1 << 14
    rows = np.arange(n, dtype=np.float64)
    values = np.column_stack([np.ones(n), rows, 2.0 * rows])
    boot = _bootstrap_column_means(values, 150, 0)
    assert boot.shape == (150, 3)
    # Every resample has n rows, so the mean of a column of ones is exactly 1 in every block.
    assert np.array_equal(boot[:, 0], np.ones(150))
    # Whole rows are drawn: column 3 = 2 x column 2 in every resample (doubling is exact).
    assert np.array_equal(boot[:, 2], 2.0 * boot[:, 1])
    # Resample means of 0..n-1: centred on (n - 1) / 2 with sd sqrt((n^2 - 1) / 12 / n) ~ 36.9.
    sd = np.sqrt((n * n - 1) / 12.0 / n)
    assert abs(boot[:, 1].mean() - (n - 1) / 2.0) < 4 * sd / np.sqrt(150)
    assert boot[:, 1].std() == pytest.approx(sd, rel=0.2)
    assert len(set(boot[:, 1].tolist())) == 150  # no block repeats another
    with pytest.raises(ValueError, match="^n_boot must be at least 1, got 0$"):
        _bootstrap_column_means(values, 0, 0)
    one = _bootstrap_column_means(values, 1, 0)  # a single resample is allowed
    assert one.shape == (1, 3) and one[0, 0] == 1.0


def test_order_spearman_interval_by_enumeration():
    # Two questions ranking three countries given in their reference order.
    ranks = np.array([[1.0, 2.0, 3.0], [2.0, 1.0, 3.0]])
    outcomes = {  # mean ranks of the three bootstrap outcomes -> Spearman with positions 1, 2, 3
        "row 1": spearmanr([1, 2, 3], [1, 2, 3]).statistic,  # 1.0
        "mean": spearmanr([1.5, 1.5, 3], [1, 2, 3]).statistic,  # 0.866 (ties averaged)
        "row 2": spearmanr([2, 1, 3], [1, 2, 3]).statistic,  # 0.5
    }
    result = order_spearman(ranks, [0, 1, 2], n_boot=N_BOOT, seed=3)
    assert result.rho == pytest.approx(outcomes["mean"])
    assert result.p_value == pytest.approx(spearmanr([1.5, 1.5, 3], [1, 2, 3]).pvalue)
    assert (result.ci_low, result.ci_high) == pytest.approx((outcomes["row 2"], outcomes["row 1"]))
    assert result.n == 3
    mid = order_spearman(ranks, [0, 1, 2], n_boot=N_BOOT, confidence=0.4, seed=3)
    assert (mid.ci_low, mid.ci_high) == pytest.approx((outcomes["mean"], outcomes["mean"]))
    # The columns are taken in the order given: reversed, every rho changes sign.
    rev = order_spearman(ranks, [2, 1, 0], n_boot=N_BOOT, seed=3)
    assert rev.rho == pytest.approx(-outcomes["mean"])
    assert (rev.ci_low, rev.ci_high) == pytest.approx((-outcomes["row 1"], -outcomes["row 2"]))


@pytest.mark.filterwarnings("ignore:An input array is constant")
def test_order_spearman_ignores_resamples_with_constant_mean_ranks():
    # Outcomes: row 1 -> rho 1, row 2 -> rho -1, the mean [1.5, 1.5] is constant -> NaN (left out).
    ranks = np.array([[1.0, 2.0], [2.0, 1.0]])
    result = order_spearman(ranks, [0, 1], n_boot=N_BOOT, seed=0)
    assert (result.ci_low, result.ci_high) == (-1.0, 1.0)
    assert result.n == 2


def test_order_spearman_defaults_and_confidence_check():
    ranks = question_ranks(np.random.default_rng(4).normal(size=(25, 15)), np.ones(25, bool))
    order = list(range(15))
    assert order_spearman(ranks, order) == order_spearman(ranks, order, n_boot=10_000, confidence=0.95, seed=0)
    assert order_spearman(ranks, order) != order_spearman(ranks, order, seed=1)
    assert order_spearman(ranks, order) != order_spearman(ranks, order, n_boot=10_001)
    with pytest.raises(ValueError, match="confidence"):
        order_spearman(ranks, [0, 1], confidence=0.0)


def test_pair_spearman_resamples_the_same_questions_for_both_models():
    a = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 4.0, 3.0]])
    b = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0]])
    both_row1 = spearmanr(a[0], b[0]).statistic  # 1.0
    both_mean = spearmanr(a.mean(axis=0), b.mean(axis=0)).statistic  # 0.833
    both_row2 = spearmanr(a[1], b[1]).statistic  # 1 - 6 * 6 / 60 = 0.4
    # Resampling other questions for B than for A (row 1 of A with row 2 of B) would give 0.8, which is
    # none of the three outcomes.
    crossed = {spearmanr(a[0], b[1]).statistic, spearmanr(a[1], b[0]).statistic}
    assert not crossed & {both_row1, both_mean, both_row2}
    result = pair_spearman(a, b, n_boot=N_BOOT, seed=7)
    assert result.rho == pytest.approx(both_mean)
    assert result.p_value == pytest.approx(spearmanr(a.mean(axis=0), b.mean(axis=0)).pvalue)
    outcomes = sorted([both_row1, both_mean, both_row2])
    assert (result.ci_low, result.ci_high) == pytest.approx((outcomes[0], outcomes[-1]))
    assert result.n == 4
    mid = pair_spearman(a, b, n_boot=N_BOOT, confidence=0.4, seed=7)
    assert (mid.ci_low, mid.ci_high) == pytest.approx((outcomes[1], outcomes[1]))


def test_pair_spearman_defaults_and_bad_inputs():
    rng = np.random.default_rng(6)
    a = question_ranks(rng.normal(size=(20, 15)), np.ones(20, bool))
    b = question_ranks(rng.normal(size=(20, 15)), np.ones(20, bool))
    assert pair_spearman(a, b) == pair_spearman(a, b, n_boot=10_000, confidence=0.95, seed=0)
    assert pair_spearman(a, b) != pair_spearman(a, b, seed=1)
    assert pair_spearman(a, b) != pair_spearman(a, b, n_boot=10_001)
    with pytest.raises(ValueError, match="same questions and countries"):
        pair_spearman(a, b[:, :3])
    with pytest.raises(ValueError, match="confidence"):
        pair_spearman(a, b, confidence=1.5)


def test_constant_resamples_give_no_numpy_warning():
    # Resamples whose mean ranks are all tied make 0 / 0 correlations: left out quietly (NaN), as for
    # order_spearman. Rows: A (1, 2) and (2, 1) average to a tie; B likewise.
    a = np.array([[1.0, 2.0], [2.0, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.filterwarnings("ignore", "An input array is constant")  # scipy's, on the observed rho
        pair = pair_spearman(a, a[:, ::-1].copy(), n_boot=200, seed=0)
        order = order_spearman(a, [0, 1], n_boot=200, seed=0)
    assert (pair.ci_low, pair.ci_high) == (-1.0, -1.0)
    assert (order.ci_low, order.ci_high) == (-1.0, 1.0)
