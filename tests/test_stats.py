"""Claims made by globalign.stats, each checked against a hand computation or scipy."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from scipy.stats import binomtest, permutation_test

from globalign.stats import Estimate, holm, mcnemar, mean_ci, paired_difference
from globalign.stats.intervals import as_vector, rows_per_chunk
from globalign.stats.paired import EXACT_MAX_N, MCNEMAR_TEST, PERMUTATION_TEST, PairedComparison, sign_flip_p


def _mean_diff(x, y, axis):
    return np.mean(y - x, axis=axis)


# ---------------------------------------------------------------- mean_ci


def test_constant_values_give_a_zero_width_interval_at_the_value():
    est = mean_ci([0.1] * 7)
    assert est == Estimate(0.1, 0.1, 0.1, 7)


def test_two_point_sample_interval_contains_the_mean_and_stays_within_the_range():
    values = [0.0] * 30 + [1.0] * 20
    est = mean_ci(values, n_boot=2000, seed=3)
    assert est.value == pytest.approx(0.4)
    assert 0.0 <= est.ci_low < 0.4 < est.ci_high <= 1.0
    # Binomial standard error sqrt(.4 * .6 / 50) ~ 0.069, so the 95% interval is ~ +-0.136.
    assert est.ci_high - est.ci_low == pytest.approx(2 * 1.96 * math.sqrt(0.24 / 50), rel=0.15)


def test_95_percent_interval_covers_the_true_mean_about_95_percent_of_the_time():
    true_mean, reps = 5.0, 200
    covered = 0
    for rep in range(reps):
        sample = np.random.default_rng(10_000 + rep).normal(true_mean, 2.0, size=200)
        est = mean_ci(sample, n_boot=1000, seed=rep)
        covered += est.ci_low <= true_mean <= est.ci_high
    # 200 repetitions: binomial sd ~ 1.5 points; an 68% or a 99.9% interval fails this.
    assert 0.90 <= covered / reps <= 0.985


def test_same_seed_same_interval_other_seed_other_interval():
    values = np.random.default_rng(0).exponential(size=100)
    assert mean_ci(values, seed=7) == mean_ci(values, seed=7)
    assert mean_ci(values, seed=7) != mean_ci(values, seed=8)


def test_nan_values_are_dropped_and_not_counted():
    with_nan = mean_ci([1.0, np.nan, 3.0, np.nan, 2.0], seed=1)
    assert with_nan == mean_ci([1.0, 3.0, 2.0], seed=1)
    assert with_nan.n == 3 and with_nan.value == pytest.approx(2.0)


def test_empty_or_all_nan_input_is_all_nan_with_n_zero():
    for values in ([], [np.nan, np.nan]):
        est = mean_ci(values)
        assert est.n == 0
        assert all(math.isnan(v) for v in (est.value, est.ci_low, est.ci_high))


def test_single_value_has_a_degenerate_interval():
    assert mean_ci([np.nan, 4.5]) == Estimate(4.5, 4.5, 4.5, 1)


def test_mean_ci_defaults_are_10000_resamples_95_percent_seed_0():
    values = np.random.default_rng(14).random(25)
    assert mean_ci(values) == mean_ci(values, n_boot=10_000, confidence=0.95, seed=0)
    assert mean_ci(values) != mean_ci(values, seed=1)
    assert mean_ci(values) != mean_ci(values, n_boot=10_001)


def test_wider_confidence_gives_a_wider_interval():
    values = np.random.default_rng(1).normal(size=80)
    narrow, wide = mean_ci(values, confidence=0.8), mean_ci(values, confidence=0.99)
    assert wide.ci_low < narrow.ci_low < narrow.ci_high < wide.ci_high


def test_bootstrap_memory_stays_bounded_for_many_items():
    # Unchunked, 400 resamples of 50,000 items need a 160 MB index matrix.
    values = np.random.default_rng(2).random(50_000)
    tracemalloc.start()
    try:
        mean_ci(values, n_boot=400)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 * 2**20


def _linear_quantile(ordered, q):
    """numpy's default quantile: interpolate between the order statistics around q * (len - 1)."""
    pos = q * (len(ordered) - 1)
    k = int(pos)
    return ordered[k] + (pos - k) * (ordered[min(k + 1, len(ordered) - 1)] - ordered[k])


def test_interval_is_the_quantiles_of_the_documented_draws_in_every_block():
    # The draws: resample r is row r of rng.integers(0, n, size=(n_boot, n)); blocks of 2^20 / n rows give
    # the same rows (64-bit integers are drawn one at a time). 2^17 items -> blocks of 8: 20 resamples
    # take blocks of 8, 8 and 4. The quantiles are taken apart from the code: numpy's default
    # (linear) method by hand.
    for n, n_boot in ((9, 11), (1 << 17, 20)):
        values = np.random.default_rng(n).random(n)
        idx = np.random.default_rng(3).integers(0, n, size=(n_boot, n))
        means = sorted(values[row].sum() / n for row in idx)
        est = mean_ci(values, n_boot=n_boot, confidence=0.9, seed=3)
        assert est.ci_low == pytest.approx(_linear_quantile(means, 0.05), abs=1e-12)
        assert est.ci_high == pytest.approx(_linear_quantile(means, 0.95), abs=1e-12)


def test_two_items_interval_by_enumeration():
    # Resample means of [0, 1]: 0 (p 1/4), 0.5 (1/2), 1 (1/4). 40%: quantiles 0.3 and 0.7 -> 0.5 both;
    # 60%: 0.2 and 0.8 -> 0 and 1.
    assert mean_ci([0.0, 1.0], n_boot=20_000, confidence=0.4, seed=1) == Estimate(0.5, 0.5, 0.5, 2)
    assert mean_ci([0.0, 1.0], n_boot=20_000, confidence=0.6, seed=1) == Estimate(0.5, 0.0, 1.0, 2)
    # A single resample: the interval is that resample's mean, one of the three.
    one = mean_ci([0.0, 1.0], n_boot=1, seed=1)
    assert one.ci_low == one.ci_high and one.ci_low in (0.0, 0.5, 1.0)


def test_interval_is_clipped_to_the_range_of_the_values():
    # Resample means of near-constant values round 1 ulp outside [min, max] (found by computing them):
    # both quantiles of six 0.9s and one 0.9 - 1 ulp compute as 0.9000000000000001 > max; of ten 1.1s
    # and one 1.1 + 1 ulp as 1.0999999999999999 < min; five 0.1s and one 0.1 + 1 ulp reach
    # 0.09999999999999999 < min. The promise: the interval lies within [min, max].
    est = mean_ci([0.9] * 6 + [float(np.nextafter(0.9, 0.0))], n_boot=200)
    assert (est.ci_low, est.ci_high) == (0.9, 0.9)
    est = mean_ci([1.1] * 10 + [float(np.nextafter(1.1, 2.0))], n_boot=200)
    assert (est.ci_low, est.ci_high) == (1.1, 1.1)
    assert mean_ci([0.1] * 5 + [float(np.nextafter(0.1, 1.0))], n_boot=200).ci_low == 0.1


def test_helpers_by_hand():
    assert as_vector([1, 2]).dtype == np.float64 and as_vector([True]).tolist() == [1.0]
    assert paired_difference([True, False, False], [True, True, False]).delta == pytest.approx(1 / 3)
    assert rows_per_chunk(1) == rows_per_chunk(0) == 1 << 20
    assert rows_per_chunk(3) == (1 << 20) // 3
    assert rows_per_chunk((1 << 20) + 1) == 1


def test_bad_arguments_are_named_in_the_message():
    with pytest.raises(ValueError, match=r"^confidence must lie strictly between 0 and 1, got 0.0$"):
        mean_ci([1.0, 2.0], confidence=0.0)
    with pytest.raises(ValueError, match=r"^n_boot must be at least 1, got 0$"):
        mean_ci([1.0, 2.0], n_boot=0)
    with pytest.raises(ValueError, match=r"^values must be one-dimensional, got shape \(1, 2\)$"):
        mean_ci([[1.0, 2.0]])


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError):
        mean_ci([1.0, 2.0], confidence=1.0)
    with pytest.raises(ValueError):
        mean_ci([1.0, 2.0], n_boot=0)
    with pytest.raises(ValueError):
        mean_ci([[1.0, 2.0]])


# ---------------------------------------------------------------- paired_difference


def test_delta_is_the_mean_of_b_minus_a():
    a, b = [0.2, 0.5, 0.9, 0.4], [0.3, 0.5, 0.6, 1.0]
    res = paired_difference(a, b)
    assert res.delta == pytest.approx((0.1 + 0.0 - 0.3 + 0.6) / 4)
    assert res.n == 4


def test_exact_p_for_differences_1_2_3_is_two_of_eight_sign_patterns():
    # Of the 8 sign patterns of (1, 2, 3) only +++ and --- reach |mean| >= 2.
    res = paired_difference([0.0, 0.0, 0.0], [1.0, 2.0, 3.0])
    assert res.p_value == pytest.approx(0.25)
    assert res.delta == pytest.approx(2.0)
    assert "exact" in res.test


def test_exact_p_matches_scipy_full_enumeration():
    rng = np.random.default_rng(4)
    a = rng.normal(size=EXACT_MAX_N)
    b = a + rng.normal(0.4, 1.0, size=EXACT_MAX_N)
    ref = permutation_test(
        (a, b), _mean_diff, permutation_type="samples", vectorized=True, n_resamples=np.inf
    )
    assert paired_difference(a, b).p_value == pytest.approx(ref.pvalue, abs=1e-12)


def test_monte_carlo_p_agrees_with_scipy_permutation_test():
    rng = np.random.default_rng(5)
    a = rng.normal(size=40)
    b = a + rng.normal(0.3, 1.0, size=40)
    ours = paired_difference(a, b, n_perm=10_000, seed=11)
    ref = permutation_test(
        (a, b), _mean_diff, permutation_type="samples", vectorized=True, n_resamples=10_000, random_state=12
    )
    assert "exact" not in ours.test
    assert 0.02 < ref.pvalue < 0.5  # a p-value where agreement is informative
    assert ours.p_value == pytest.approx(ref.pvalue, abs=0.02)


def test_paired_interval_is_the_bootstrap_of_the_differences():
    rng = np.random.default_rng(6)
    a, b = rng.random(60), rng.random(60)
    res = paired_difference(a, b, seed=9)
    est = mean_ci(b - a, seed=9)
    assert (res.ci_low, res.ci_high) == (est.ci_low, est.ci_high)
    assert res.ci_low < res.delta < res.ci_high


def test_paired_result_is_deterministic_given_seed():
    rng = np.random.default_rng(7)
    a, b = rng.random(30), rng.random(30)
    assert paired_difference(a, b, seed=3) == paired_difference(a, b, seed=3)


def test_pairs_with_a_nan_on_either_side_are_dropped():
    res = paired_difference([1.0, np.nan, 2.0, 5.0], [2.0, 1.0, np.nan, 7.0])
    assert res.n == 2 and res.delta == pytest.approx(1.5)


def test_identical_models_give_zero_delta_and_p_one():
    res = paired_difference([0.3, 0.7, 0.1], [0.3, 0.7, 0.1])
    assert (res.delta, res.ci_low, res.ci_high, res.p_value, res.n) == (0.0, 0.0, 0.0, 1.0, 3)


def test_no_pairs_gives_nan():
    res = paired_difference([np.nan], [1.0])
    assert res.n == 0 and math.isnan(res.delta) and math.isnan(res.p_value)


def test_length_mismatch_raises():
    with pytest.raises(ValueError, match="same items"):
        paired_difference([1.0, 2.0], [1.0, 2.0, 3.0])


def _count_sign_flips(d, signs):
    """Reference count, one pattern at a time: patterns whose |mean| reaches |mean(d)| (1e-12 slack)."""
    threshold = abs(sum(d) / len(d)) - 1e-12 * max(1.0, max(abs(x) for x in d))
    return sum(abs(sum(s * x for s, x in zip(row, d)) / len(d)) >= threshold for row in signs)


def test_monte_carlo_p_is_one_plus_the_hits_over_one_plus_n_perm():
    # 20 pairs: Monte Carlo. Each random pattern is a row of 0/1 draws from the generator mapped to -1/+1;
    # the count below is done pattern by pattern, apart from the code.
    d = np.random.default_rng(12).normal(0.35, 1.0, size=20)
    p, exact = sign_flip_p(d, n_perm=400, rng=np.random.default_rng(9))
    signs = np.random.default_rng(9).integers(0, 2, size=(400, 20), dtype=np.int8).astype(int) * 2 - 1
    hits = _count_sign_flips(d.tolist(), signs.tolist())
    assert 5 < hits < 395  # a count that is neither none nor all
    assert (p, exact) == ((1 + hits) / 401, False)


def test_monte_carlo_p_counts_every_block():
    # 2^15 pairs -> blocks of 2^20 / 2^15 = 32 patterns: 70 patterns take blocks of 32, 32 and 6.
    n = 1 << 15
    d = np.zeros(n)
    d[0] = 1.0  # every sign pattern has |mean| = 1/n = the observed one: all 70 patterns count
    assert sign_flip_p(d, n_perm=70, rng=np.random.default_rng(0)) == (1.0, False)
    d = np.random.default_rng(3).normal(0.004, 1.0, size=n)
    p, _ = sign_flip_p(d, n_perm=70, rng=np.random.default_rng(4))
    signs = np.random.default_rng(4).integers(0, 2, size=(70, n), dtype=np.int8).astype(np.float64) * 2 - 1
    hits = int(np.count_nonzero(np.abs(signs @ d) / n >= abs(d.mean()) - 1e-12 * np.abs(d).max()))
    assert 3 < hits < 67
    assert p == (1 + hits) / 71


def test_monte_carlo_needs_at_least_one_pattern():
    d = np.arange(1.0, EXACT_MAX_N + 2)
    with pytest.raises(ValueError, match="n_perm must be at least 1, got 0"):
        sign_flip_p(d, n_perm=0, rng=np.random.default_rng(0))
    # One pattern: p = (1 + hit) / 2, and a pattern rarely reaches the all-positive mean.
    assert sign_flip_p(d, n_perm=1, rng=np.random.default_rng(0)) == (0.5, False)
    # The exact path never draws, so n_perm is not checked there.
    assert sign_flip_p(d[:EXACT_MAX_N], n_perm=0, rng=np.random.default_rng(0))[1] is True


def test_paired_difference_defaults_are_10000_draws_95_percent_seed_0():
    rng = np.random.default_rng(13)
    a, b = rng.random(40), rng.random(40) + 0.05
    default = paired_difference(a, b)
    assert default == paired_difference(a, b, n_boot=10_000, n_perm=10_000, confidence=0.95, seed=0)
    assert default.test == f"{PERMUTATION_TEST} (Monte Carlo, 10000)"
    assert default != paired_difference(a, b, seed=1)
    assert default.p_value != paired_difference(a, b, n_perm=10_001).p_value


def test_no_pairs_and_no_differences_are_labelled_with_the_test():
    res = paired_difference([np.nan, 1.0], [1.0, np.nan])
    assert all(math.isnan(x) for x in (res.delta, res.ci_low, res.ci_high, res.p_value))
    assert (res.n, res.test) == (0, PERMUTATION_TEST)
    res = paired_difference([0.3, 0.7], [0.3, 0.7])
    assert res == PairedComparison(0.0, 0.0, 0.0, 1.0, 2, PERMUTATION_TEST)


# ---------------------------------------------------------------- mcnemar


def test_mcnemar_p_is_the_exact_binomial_test_of_discordant_pairs():
    # 8 items only A gets right, 2 only B gets right, 5 both right, 3 both wrong.
    a = [1] * 8 + [0] * 2 + [1] * 5 + [0] * 3
    b = [0] * 8 + [1] * 2 + [1] * 5 + [0] * 3
    res = mcnemar(a, b)
    assert res.p_value == pytest.approx(binomtest(2, 10).pvalue)
    assert res.p_value == pytest.approx(2 * (1 + 10 + 45) / 2**10)
    assert res.delta == pytest.approx((7 - 13) / 18)
    assert res.n == 18 and res.test == "McNemar exact"
    assert res.ci_low <= res.delta <= res.ci_high


def test_mcnemar_accepts_booleans_and_drops_nan_pairs():
    res = mcnemar([True, False, True, np.nan], [True, True, False, 1.0])
    assert res.n == 3 and res.delta == pytest.approx(0.0)
    assert res.p_value == pytest.approx(1.0)


def test_mcnemar_rejects_non_binary_values():
    with pytest.raises(ValueError, match="^mcnemar needs binary outcomes: every non-NaN value must be 0 or 1$"):
        mcnemar([0, 1, 2], [0, 1, 1])


def test_mcnemar_degenerate_results_defaults_and_interval():
    res = mcnemar([np.nan, 1.0], [1.0, np.nan])
    assert all(math.isnan(x) for x in (res.delta, res.ci_low, res.ci_high, res.p_value))
    assert (res.n, res.test) == (0, MCNEMAR_TEST)
    assert mcnemar([1, 0, 1], [1, 0, 1]) == PairedComparison(0.0, 0.0, 0.0, 1.0, 3, MCNEMAR_TEST)
    rng = np.random.default_rng(18)  # data on which seed 1 and 10,001 resamples move the interval
    a, b = (rng.random(2001) < 0.5).astype(float), (rng.random(2001) < 0.6).astype(float)  # fine steps of 1/2001
    assert mcnemar(a, b) == mcnemar(a, b, n_boot=10_000, confidence=0.95, seed=0)
    assert mcnemar(a, b) != mcnemar(a, b, seed=1) and mcnemar(a, b) != mcnemar(a, b, n_boot=10_001)
    # The interval is the bootstrap of the differences, drawn as mean_ci draws them (seed 3: the
    # permutation stream of paired_difference would give another interval).
    est, res = mean_ci(b - a, seed=3), mcnemar(a, b, seed=3)
    assert (res.ci_low, res.ci_high) == (est.ci_low, est.ci_high)


def test_paired_inputs_are_named_in_shape_errors():
    with pytest.raises(ValueError, match=r"^a must be one-dimensional, got shape \(1, 1\)$"):
        paired_difference([[1.0]], [1.0])
    with pytest.raises(ValueError, match=r"^b must be one-dimensional, got shape \(1, 1\)$"):
        mcnemar([1.0], [[1.0]])


# ---------------------------------------------------------------- holm


def _holm_as_statsmodels_writes_it(p):
    """statsmodels.stats.multitest.multipletests(method='holm'), transcribed."""
    p = np.asarray(p, dtype=float)
    order = np.argsort(p)
    sorted_p = p[order]
    ntests = len(p)
    corrected = np.maximum.accumulate(sorted_p * np.arange(ntests, 0, -1))
    corrected[corrected > 1] = 1
    out = np.empty_like(corrected)
    out[order] = corrected
    return out


def test_holm_hand_worked_example():
    # Sorted 0.01, 0.03, 0.04 -> x3, x2, x1 = 0.03, 0.06, 0.04 -> running max 0.03, 0.06, 0.06.
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_holm_matches_the_statsmodels_definition():
    p = np.random.default_rng(8).random(25) ** 3
    assert holm(list(p)) == pytest.approx(list(_holm_as_statsmodels_writes_it(p)))


def test_holm_is_capped_at_one_and_never_below_the_raw_p():
    p = [0.2, 0.5, 0.9, 0.04]
    adjusted = holm(p)
    assert max(adjusted) == 1.0
    assert all(adj >= raw for adj, raw in zip(adjusted, p))


def test_holm_passes_nan_through_and_does_not_count_it():
    adjusted = holm([0.01, np.nan, 0.04, 0.03])
    assert math.isnan(adjusted[1])
    assert [adjusted[i] for i in (0, 2, 3)] == pytest.approx([0.03, 0.06, 0.06])
    assert all(math.isnan(v) for v in holm([np.nan, np.nan]))
    assert holm([]) == []


def test_holm_rejects_values_outside_unit_interval():
    with pytest.raises(ValueError, match=r"^p-values must lie in \[0, 1\]$"):
        holm([0.5, 1.5])
    with pytest.raises(ValueError, match=r"^p_values must be one-dimensional, got shape \(1, 2\)$"):
        holm([[0.5, 0.1]])


def test_holm_edge_families_by_hand():
    # One test: nothing to correct, p stays. p = 0 is a valid p-value: [0, 0.5] -> [2 * 0, 1 * 0.5].
    assert holm([0.3]) == [0.3]
    assert holm([0.0, 0.5]) == [0.0, 0.5]
    with pytest.raises(ValueError, match=r"p-values must lie in \[0, 1\]"):
        holm([0.5, 1.5])


# The tie slack of sign_flip_p (paired._tolerance): 1e-12, scaled by max(1, max|d|). With d = [a, e],
# the four sign patterns have |mean| (a + e) / 2 twice and (a - e) / 2 twice: they differ from the
# observed one by exactly e, so e just above or below the slack decides whether they count as ties
# (p = 4/4) or not (p = 2/4). Worked by hand; the two cases pin the constant and its scaling.
@pytest.mark.parametrize(("d", "expected_p"), [
    ([0.5, 1.5e-12], 0.5),   # gap 1.5e-12 > slack 1e-12 * max(1, 0.5) = 1e-12: not a tie
    ([0.5, 0.5e-12], 1.0),   # gap 0.5e-12 < 1e-12: a tie, counted as extreme
    ([1000.0, 5e-10], 1.0),  # gap 5e-10 < slack 1e-12 * 1000 = 1e-9: a tie at this magnitude
    ([1000.0, 2e-9], 0.5),   # gap 2e-9 > 1e-9: not a tie
])
def test_sign_flip_tie_slack_is_1e12_scaled_by_the_largest_difference(d, expected_p):
    p, exact = sign_flip_p(np.array(d), n_perm=100, rng=np.random.default_rng(0))
    assert exact and p == expected_p
