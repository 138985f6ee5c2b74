"""Claims made by globalign.stats.gaps, each checked against a hand computation or a plain loop."""

from __future__ import annotations

import itertools
import math
import tracemalloc

import numpy as np
import pytest

from globalign.stats import Estimate, RangeGap, gap_change, group_gap, range_gap
from globalign.stats.gaps import _label_swap_p, _pair_stat


def _bernoulli(rng, p, n):
    return (rng.random(n) < p).astype(float)


def _loop_bootstrap(groups, stat, *, n_boot, confidence, seed):
    """The module's documented resampling contract, one resample at a time.

    ``groups`` is a list of (m, n_g) arrays in the contract's group order; for
    each resample the next N uniforms pick floor(u * n_g) within each group's slot.
    """
    rng = np.random.default_rng(seed)
    sizes = [g.shape[1] for g in groups]
    bounds = np.cumsum([0, *sizes])
    stats = []
    for _ in range(n_boot):
        u = rng.random(int(bounds[-1]))
        means = np.empty((groups[0].shape[0], len(groups)))
        for k, g in enumerate(groups):
            idx = np.floor(u[bounds[k] : bounds[k + 1]] * sizes[k]).astype(int)
            for series in range(g.shape[0]):
                means[series, k] = np.mean(g[series][idx])
        stats.append(stat(means))
    alpha = 1 - confidence
    return tuple(np.quantile(stats, [alpha / 2, 1 - alpha / 2]))


def _swap_stat(a_groups, b_groups, swaps, gap):
    """gap(B') - gap(A') after swapping the (a, b) pairs marked in ``swaps`` (one 0/1 array per group)."""
    a_means, b_means = [], []
    for a, b, s in zip(a_groups, b_groups, swaps):
        s = np.asarray(s, dtype=bool)
        a_means.append(np.where(s, b, a).mean())
        b_means.append(np.where(s, a, b).mean())
    return gap(np.array(b_means)) - gap(np.array(a_means))


def _pair(means):
    return means[0] - means[1]


def _range(means):
    return means.max() - means.min()


# ---------------------------------------------------------------- group_gap


def test_group_gap_is_the_difference_of_group_means():
    est = group_gap({"en_us": [1, 1, 1, 0], "en_in": [1, 0, 0, 0], "en_ng": [0, 0]}, "en_us", "en_in")
    assert est.value == pytest.approx(0.75 - 0.25)
    assert est.n == 8  # the two groups only
    assert -1.0 <= est.ci_low <= 0.5 <= est.ci_high <= 1.0


def test_group_gap_interval_width_matches_the_normal_approximation():
    rng = np.random.default_rng(0)
    high = np.array([1.0] * 120 + [0.0] * 40)  # 0.75
    low = np.array([1.0] * 40 + [0.0] * 120)  # 0.25
    rng.shuffle(high)
    est = group_gap({"h": high, "l": low}, "h", "l", seed=2)
    assert est.value == pytest.approx(0.5)
    assert est.ci_low < 0.5 < est.ci_high
    # SE of a difference of independent proportions: sqrt(.75*.25/160 + .25*.75/160) ~ 0.048.
    se = math.sqrt(2 * 0.75 * 0.25 / 160)
    assert est.ci_high - est.ci_low == pytest.approx(2 * 1.96 * se, rel=0.1)
    assert est.ci_high - 0.5 == pytest.approx(0.5 - est.ci_low, abs=0.02)


def test_group_gap_interval_is_the_documented_stratified_bootstrap():
    rng = np.random.default_rng(1)
    high, low = rng.random(37), rng.random(23)
    est = group_gap({"h": high, "l": low}, "h", "l", n_boot=3000, confidence=0.9, seed=5)
    ref = _loop_bootstrap(
        [high[None, :], low[None, :]], lambda m: _pair(m[0]), n_boot=3000, confidence=0.9, seed=5
    )
    assert (est.ci_low, est.ci_high) == pytest.approx(ref, abs=1e-12)


def test_group_gap_is_deterministic_given_seed():
    rng = np.random.default_rng(2)
    groups = {"a": rng.random(50), "b": rng.random(40)}
    assert group_gap(groups, "a", "b", seed=4) == group_gap(groups, "a", "b", seed=4)
    assert group_gap(groups, "a", "b", seed=4) != group_gap(groups, "a", "b", seed=5)


def test_group_gap_drops_nan_and_counts_what_is_left():
    with_nan = group_gap({"a": [1.0, np.nan, 0.0, 1.0], "b": [np.nan, 0.0, 1.0]}, "a", "b", seed=1)
    assert with_nan == group_gap({"a": [1.0, 0.0, 1.0], "b": [0.0, 1.0]}, "a", "b", seed=1)
    assert with_nan.n == 5 and with_nan.value == pytest.approx(2 / 3 - 1 / 2)


def test_group_gap_with_an_empty_group_is_nan():
    est = group_gap({"a": [1.0, 0.0, 1.0], "b": [np.nan]}, "a", "b")
    assert est.n == 3
    assert all(math.isnan(v) for v in (est.value, est.ci_low, est.ci_high))


def test_group_gap_of_constant_groups_has_zero_width_at_the_exact_value():
    assert group_gap({"a": [0.1] * 5, "b": [0.3] * 3}, "a", "b") == Estimate(
        0.1 - 0.3, 0.1 - 0.3, 0.1 - 0.3, 8
    )


def test_group_gap_rejects_bad_arguments():
    groups = {"a": [1.0, 0.0], "b": [0.0, 0.0]}
    with pytest.raises(ValueError, match="unknown group"):
        group_gap(groups, "a", "c")
    with pytest.raises(ValueError, match="different"):
        group_gap(groups, "a", "a")
    with pytest.raises(ValueError):
        group_gap(groups, "a", "b", confidence=1.0)
    with pytest.raises(ValueError):
        group_gap(groups, "a", "b", n_boot=0)
    with pytest.raises(ValueError):
        group_gap({"a": [[1.0]], "b": [0.0]}, "a", "b")


# ---------------------------------------------------------------- range_gap


def test_range_gap_names_best_and_worst():
    res = range_gap({"en_us": [1, 1, 1, 0], "en_in": [1, 0], "en_ng": [1, 0, 0, 0]}, seed=3)
    assert (res.best, res.worst, res.n) == ("en_us", "en_ng", 10)
    assert res.value == pytest.approx(0.75 - 0.25)
    assert 0.0 <= res.ci_low <= res.ci_high <= 1.0


def test_range_gap_ties_go_to_the_name_that_sorts_first():
    # "b" and "a" tie for best: "a" wins whatever the mapping's order.
    res = range_gap({"b": [1, 0], "a": [0, 1], "c": [0, 0]})
    assert (res.best, res.worst, res.value) == ("a", "c", 0.5)
    # "y" and "x" tie for worst: "x" wins.
    res = range_gap({"z": [1.0], "y": [0.0], "x": [0.0]})
    assert (res.best, res.worst, res.value) == ("z", "x", 1.0)
    # All equal: best is the first name, worst the second, value 0.
    res = range_gap({"c": [1, 0], "b": [0, 1], "a": [1, 0]})
    assert (res.best, res.worst, res.value) == ("a", "b", 0.0)


def test_range_gap_interval_is_the_documented_stratified_bootstrap():
    rng = np.random.default_rng(6)
    groups = {"en_us": rng.random(30), "en_in": rng.random(20), "en_ng": rng.random(25)}
    res = range_gap(groups, n_boot=2000, seed=8)
    ordered = [groups[g][None, :] for g in sorted(groups)]
    ref = _loop_bootstrap(ordered, lambda m: _range(m[0]), n_boot=2000, confidence=0.95, seed=8)
    assert (res.ci_low, res.ci_high) == pytest.approx(ref, abs=1e-12)


def test_range_gap_is_biased_upward_when_groups_do_not_differ():
    # Three groups with identical means: the observed range is 0, every resample's is >= 0
    # and almost always > 0, so the percentile interval lies above the value (as documented).
    groups = {g: [1.0] * 10 + [0.0] * 10 for g in ("en_in", "en_ng", "en_us")}
    res = range_gap(groups, seed=1)
    assert res.value == 0.0
    assert 0.0 < res.ci_low < res.ci_high <= 1.0


def test_range_gap_drops_nan_and_empty_groups():
    res = range_gap({"a": [1.0, np.nan, 1.0], "b": [0.0, 1.0], "c": [np.nan]}, seed=2)
    assert res == range_gap({"a": [1.0, 1.0], "b": [0.0, 1.0]}, seed=2)
    assert (res.best, res.worst, res.n, res.value) == ("a", "b", 4, 0.5)


def test_range_gap_is_deterministic_given_seed():
    rng = np.random.default_rng(9)
    groups = {g: rng.random(40) for g in "abc"}
    assert range_gap(groups, seed=1) == range_gap(groups, seed=1)
    assert range_gap(groups, seed=1) != range_gap(groups, seed=2)


def test_range_gap_needs_two_non_empty_groups():
    with pytest.raises(ValueError, match="two non-empty"):
        range_gap({"a": [1.0, 0.0]})
    with pytest.raises(ValueError, match="two non-empty"):
        range_gap({"a": [1.0, 0.0], "b": [np.nan]})


def test_range_gap_returns_a_range_gap():
    assert isinstance(range_gap({"a": [1.0], "b": [0.0]}), RangeGap)


# ---------------------------------------------------------------- gap_change


# A: gap 0.5 - 0.5 = 0; B: gap 0.75 - 0.25 = 0.5.
A_TINY = {"hi": [1, 0, 1, 0], "lo": [1, 1, 0, 0]}
B_TINY = {"hi": [1, 1, 1, 0], "lo": [1, 0, 0, 0]}


def test_gap_change_delta_is_gap_b_minus_gap_a():
    res = gap_change(A_TINY, B_TINY, gap=("hi", "lo"), n_boot=500, n_perm=500)
    assert res.delta == pytest.approx(0.5)
    assert res.n == 8
    assert res.test == "paired label-swap permutation (Monte Carlo, 500)"
    # With two groups the range is |gap|: 0 for A, 0.5 for B.
    assert gap_change(A_TINY, B_TINY, n_boot=500, n_perm=500).delta == pytest.approx(0.5)


def test_gap_change_p_is_small_for_a_large_clear_widening():
    rng = np.random.default_rng(10)
    n = 200
    a = {"en_us": _bernoulli(rng, 0.6, n), "en_ng": _bernoulli(rng, 0.6, n), "en_in": _bernoulli(rng, 0.6, n)}
    b = {
        "en_us": _bernoulli(rng, 0.85, n),
        "en_ng": _bernoulli(rng, 0.35, n),
        "en_in": _bernoulli(rng, 0.6, n),
    }
    for gap in (("en_us", "en_ng"), None):
        res = gap_change(a, b, gap=gap, seed=1)
        assert res.delta > 0.3
        assert res.p_value < 0.01
        assert 0.0 < res.ci_low < res.delta < res.ci_high


def test_gap_change_p_is_large_when_a_and_b_are_the_same_distribution():
    # Under H0 p is uniform, so one draw is below 0.2 one time in five; the median of seven
    # independent null data sets is below 0.2 only ~3% of the time (and these draws are fixed).
    probs = {"en_us": 0.7, "en_ng": 0.55, "en_in": 0.6}
    for gap in (("en_us", "en_ng"), None):
        ps = []
        for rep in range(7):
            rng = np.random.default_rng(100 + rep)
            a = {g: _bernoulli(rng, p, 200) for g, p in probs.items()}
            b = {g: _bernoulli(rng, p, 200) for g, p in probs.items()}
            res = gap_change(a, b, gap=gap, n_boot=200, n_perm=2000, seed=rep)
            ps.append(res.p_value)
        assert np.median(ps) > 0.2


def test_gap_change_of_identical_models_is_zero_with_p_one():
    a = {"x": [0.3, 0.7, 0.1], "y": [1.0, 0.0]}
    for gap in (("x", "y"), None):
        res = gap_change(a, {g: list(v) for g, v in a.items()}, gap=gap)
        assert (res.delta, res.ci_low, res.ci_high, res.p_value, res.n) == (0.0, 0.0, 0.0, 1.0, 5)


def test_gap_change_monte_carlo_p_matches_exact_enumeration_for_a_pair_gap():
    # 2 groups x 3 items: all 2^6 swap patterns, counted by hand.
    a_groups = [np.array([0.2, 0.5, 0.1]), np.array([0.4, 0.3, 0.6])]
    b_groups = [np.array([0.7, 0.4, 0.5]), np.array([0.5, 0.1, 0.6])]
    observed = _swap_stat(a_groups, b_groups, [np.zeros(3), np.zeros(3)], _pair)
    extreme = 0
    for bits in itertools.product((0, 1), repeat=6):
        stat = _swap_stat(a_groups, b_groups, [bits[:3], bits[3:]], _pair)
        extreme += abs(stat) >= abs(observed) - 1e-12
    exact = extreme / 64
    assert 0.05 < exact < 0.6  # a p-value where agreement is informative

    res = gap_change(
        {"h": a_groups[0], "l": a_groups[1]},
        {"h": b_groups[0], "l": b_groups[1]},
        gap=("h", "l"),
        n_boot=10,
        n_perm=20_000,
        seed=3,
    )
    assert res.delta == pytest.approx(observed)
    assert res.p_value == pytest.approx(exact, abs=0.02)


def test_gap_change_monte_carlo_p_matches_exact_enumeration_for_the_range():
    # 3 groups x 2 items: all 2^6 swap patterns, with the range statistic.
    a_groups = [np.array([0.9, 0.7]), np.array([0.2, 0.6]), np.array([0.4, 0.5])]
    b_groups = [np.array([0.8, 1.0]), np.array([0.1, 0.3]), np.array([0.6, 0.4])]
    observed = _swap_stat(a_groups, b_groups, [np.zeros(2)] * 3, _range)
    extreme = 0
    for bits in itertools.product((0, 1), repeat=6):
        stat = _swap_stat(a_groups, b_groups, [bits[0:2], bits[2:4], bits[4:6]], _range)
        extreme += abs(stat) >= abs(observed) - 1e-12
    exact = extreme / 64
    assert 0.05 < exact < 0.6

    names = ("a", "b", "c")  # sorted, as the contract orders them
    res = gap_change(dict(zip(names, a_groups)), dict(zip(names, b_groups)), n_boot=10, n_perm=20_000, seed=4)
    assert res.delta == pytest.approx(observed)
    assert res.p_value == pytest.approx(exact, abs=0.02)


def test_gap_change_p_values_are_roughly_uniform_under_the_null():
    rng = np.random.default_rng(12)
    reps, ps = 300, []
    for rep in range(reps):
        a = {g: rng.normal(size=25) for g in "xyz"}
        b = {g: rng.normal(size=25) for g in "xyz"}
        ps.append(
            gap_change(a, b, gap=("x", "y") if rep % 2 else None, n_boot=1, n_perm=200, seed=rep).p_value
        )
    ps = np.array(ps)
    # 300 draws: binomial sd ~ 0.017 at 0.1 and ~ 0.029 at 0.5.
    assert 0.05 <= np.mean(ps <= 0.1) <= 0.16
    assert 0.4 <= np.mean(ps <= 0.5) <= 0.6


def test_gap_change_interval_is_the_documented_paired_stratified_bootstrap():
    rng = np.random.default_rng(13)
    a = {"en_us": rng.random(30), "en_in": rng.random(20), "en_ng": rng.random(25)}
    b = {g: v + rng.normal(0.1, 0.3, v.size) for g, v in a.items()}
    names = sorted(a)
    res = gap_change(a, b, n_boot=2000, n_perm=100, seed=6)
    ref = _loop_bootstrap(
        [np.stack([a[g], b[g]]) for g in names],
        lambda m: _range(m[1]) - _range(m[0]),
        n_boot=2000,
        confidence=0.95,
        seed=6,
    )
    assert (res.ci_low, res.ci_high) == pytest.approx(ref, abs=1e-12)


def test_gap_change_for_a_pair_gap_is_the_group_gap_of_the_differences():
    rng = np.random.default_rng(14)
    a = {"h": rng.random(40), "l": rng.random(30), "other": rng.random(10)}
    b = {g: rng.random(v.size) for g, v in a.items()}
    res = gap_change(a, b, gap=("h", "l"), seed=7)
    diff = group_gap({g: b[g] - a[g] for g in a}, "h", "l", seed=7)
    assert res.n == diff.n == 70
    assert (res.delta, res.ci_low, res.ci_high) == pytest.approx(
        (diff.value, diff.ci_low, diff.ci_high), abs=1e-12
    )


def test_gap_change_p_does_not_depend_on_n_boot():
    rng = np.random.default_rng(15)
    a = {g: rng.random(30) for g in "ab"}
    b = {g: rng.random(30) for g in "ab"}
    assert gap_change(a, b, n_boot=100, seed=1).p_value == gap_change(a, b, n_boot=2000, seed=1).p_value


def test_gap_change_is_deterministic_given_seed():
    rng = np.random.default_rng(16)
    a = {g: rng.random(30) for g in "abc"}
    b = {g: rng.random(30) for g in "abc"}
    assert gap_change(a, b, seed=3) == gap_change(a, b, seed=3)
    assert gap_change(a, b, seed=3) != gap_change(a, b, seed=4)


def test_gap_change_drops_pairs_with_a_nan_on_either_side():
    a = {"h": [1.0, np.nan, 0.0, 1.0], "l": [0.0, 1.0, 1.0]}
    b = {"h": [1.0, 1.0, 1.0, np.nan], "l": [np.nan, 0.0, 0.0]}
    res = gap_change(a, b, gap=("h", "l"), seed=2)
    assert res == gap_change(
        {"h": [1.0, 0.0], "l": [1.0, 1.0]}, {"h": [1.0, 1.0], "l": [0.0, 0.0]}, gap=("h", "l"), seed=2
    )
    assert res.n == 4
    assert res.delta == pytest.approx((1.0 - 0.0) - (0.5 - 1.0))


def test_gap_change_with_an_empty_group_is_nan():
    res = gap_change({"h": [1.0, 0.0], "l": [np.nan]}, {"h": [0.0, 0.0], "l": [1.0]}, gap=("h", "l"))
    assert res.n == 2
    assert all(math.isnan(v) for v in (res.delta, res.ci_low, res.ci_high, res.p_value))


def test_gap_change_rejects_inputs_that_do_not_score_the_same_items():
    with pytest.raises(ValueError, match="same items"):
        gap_change({"h": [1.0, 0.0], "l": [1.0]}, {"h": [1.0], "l": [1.0]})
    with pytest.raises(ValueError, match="same groups"):
        gap_change({"h": [1.0], "l": [1.0]}, {"h": [1.0], "m": [1.0]})
    with pytest.raises(ValueError, match="unknown group"):
        gap_change({"h": [1.0], "l": [1.0]}, {"h": [0.0], "l": [1.0]}, gap=("h", "x"))
    with pytest.raises(ValueError, match="two non-empty"):
        gap_change({"h": [1.0], "l": [np.nan]}, {"h": [0.0], "l": [1.0]})
    with pytest.raises(ValueError):
        gap_change(A_TINY, B_TINY, n_perm=0)


def test_gap_change_memory_stays_bounded_for_many_items():
    # Unchunked, 300 resamples of 40,000 items need a 96 MB uniform matrix (and as much again
    # for indices and gathered values); chunked, each block is about 8 MB.
    rng = np.random.default_rng(17)
    a = {g: _bernoulli(rng, 0.6, 20_000) for g in "ab"}
    b = {g: _bernoulli(rng, 0.6, 20_000) for g in "ab"}
    tracemalloc.start()
    try:
        gap_change(a, b, n_boot=300, n_perm=300)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20


# ---------------------------------------------------------------- issue 15: survivors of the mutation run


def test_group_gap_interval_is_clipped_to_the_promised_bounds():
    # A mean of three copies of 0.1 computes as 0.10000000000000002 (0.30000000000000004 / 3), so every
    # unclipped resample gap here sits 1 ulp beyond the promised bound max(high) - min(low) = 0.1 - 0 (and
    # below min(high) - max(low) = 0 - 0.1 with the groups swapped); the [0, 1e-300] group only keeps the
    # draws from being skipped as constant.
    assert group_gap({"h": [0.1] * 3, "l": [0.0, 1e-300]}, "h", "l", n_boot=200) == Estimate(0.1, 0.1, 0.1, 5)
    assert group_gap({"h": [0.0, 1e-300], "l": [0.1] * 3}, "h", "l", n_boot=200) == Estimate(-0.1, -0.1, -0.1, 5)


def test_range_gap_interval_is_clipped_to_the_spread_of_the_scores():
    # As above: a's resampled mean is 0.1 + 1 ulp, so the unclipped ranges exceed max - min of all
    # scores, 0.1 - 0.02 = 0.08.
    b = [0.02, float(np.nextafter(0.02, 1.0))]
    res = range_gap({"a": [0.1] * 3, "b": b}, n_boot=200)
    assert (res.best, res.worst, res.n) == ("a", "b", 5)
    assert res.ci_high <= 0.1 - 0.02 and res.ci_low == res.ci_high == pytest.approx(0.08)


def test_group_gap_with_a_single_high_item():
    # One item in the high group is a group, not a missing one: 1 - mean(0, 1) = 0.5.
    est = group_gap({"h": [1.0], "l": [0.0, 1.0]}, "h", "l", n_boot=2000)
    assert (est.value, est.n) == (0.5, 3)
    assert (est.ci_low, est.ci_high) == (0.0, 1.0)  # 1 - 1 and 1 - 0, each with probability 1/4
    assert math.isnan(group_gap({"h": [np.nan], "l": [0.0, 1.0]}, "h", "l").value)


def test_gap_functions_default_to_10000_resamples_95_percent_seed_0():
    rng = np.random.default_rng(21)
    groups = {"x": rng.random(12), "y": rng.random(9), "z": rng.random(7)}
    assert group_gap(groups, "x", "y") == group_gap(groups, "x", "y", n_boot=10_000, confidence=0.95, seed=0)
    assert group_gap(groups, "x", "y") != group_gap(groups, "x", "y", seed=1)
    assert range_gap(groups) == range_gap(groups, n_boot=10_000, confidence=0.95, seed=0)
    assert range_gap(groups) != range_gap(groups, seed=1)
    assert range_gap(groups) != range_gap(groups, n_boot=10_001)
    b = {g: v + rng.normal(0, 0.2, v.size) for g, v in groups.items()}
    assert gap_change(groups, b) == gap_change(groups, b, gap=None, n_boot=10_000, n_perm=10_000, confidence=0.95,
                                               seed=0)
    assert gap_change(groups, b).test == "paired label-swap permutation (Monte Carlo, 10000)"


def test_non_vector_scores_are_named_in_the_error():
    with pytest.raises(ValueError, match=r"^values_by_group\['a'\] must be one-dimensional, got shape \(1, 1\)$"):
        group_gap({"a": [[1.0]], "b": [0.0]}, "a", "b")
    with pytest.raises(ValueError, match=r"^values_by_group\['b'\] must be one-dimensional"):
        group_gap({"a": [1.0], "b": [[0.0]]}, "a", "b")
    with pytest.raises(ValueError, match=r"^values_by_group\['b'\] must be one-dimensional"):
        range_gap({"a": [1.0], "b": [[0.0]]})
    with pytest.raises(ValueError, match=r"^a_by_group\['b'\] must be one-dimensional"):
        gap_change({"a": [1.0], "b": [[0.0]]}, {"a": [1.0], "b": [0.0]})
    with pytest.raises(ValueError, match=r"^b_by_group\['a'\] must be one-dimensional"):
        gap_change({"a": [1.0], "b": [0.0]}, {"a": [[1.0]], "b": [0.0]})


@pytest.mark.parametrize("gap", [("h", "l"), None])
def test_gap_change_p_is_the_documented_label_swap_count(gap):
    # The permutation stream is the child of SeedSequence(seed) (the bootstrap's is default_rng(seed));
    # pattern r swaps the items whose 0/1 draw in row r is 1, in the group order (high, low), or sorted
    # names for the range. The statistic of each pattern is recomputed from swapped arrays (_swap_stat).
    rng = np.random.default_rng(8)
    names = ["h", "l"] if gap else ["h", "l", "m"]
    a = {g: rng.random(5 + k) for k, g in enumerate(names)}
    b = {g: a[g] + rng.normal(0.1 * k, 0.3, a[g].size) for k, g in enumerate(names)}
    stat = _pair if gap else _range
    res = gap_change(a, b, gap=gap, n_boot=10, n_perm=300, seed=4)
    a_groups, b_groups = [a[g] for g in names], [b[g] for g in names]
    observed = _swap_stat(a_groups, b_groups, [np.zeros(x.size) for x in a_groups], stat)
    tolerance = 1e-12 * max(1.0, max(np.abs(x).max() for x in a_groups + b_groups))
    perm = np.random.default_rng(np.random.SeedSequence(4).spawn(1)[0])
    draws = perm.integers(0, 2, size=(300, sum(x.size for x in a_groups)), dtype=np.int8)
    bounds = np.cumsum([0, *(x.size for x in a_groups)])
    hits = 0
    for row in draws:
        swaps = [row[bounds[k] : bounds[k + 1]] for k in range(len(names))]
        hits += abs(_swap_stat(a_groups, b_groups, swaps, stat)) >= abs(observed) - tolerance
    assert 10 < hits < 290
    assert res.delta == pytest.approx(observed)
    assert res.p_value == (1 + hits) / 301


def test_gap_change_accepts_a_single_permutation():
    a, b = {"h": [0.0, 1.0], "l": [0.5, 0.5]}, {"h": [1.0, 1.0], "l": [0.0, 0.5]}
    assert gap_change(a, b, gap=("h", "l"), n_boot=10, n_perm=1).p_value in (0.5, 1.0)
    with pytest.raises(ValueError, match="^n_perm must be at least 1, got 0$"):
        gap_change(a, b, gap=("h", "l"), n_perm=0)


def test_gap_change_p_counts_every_block_of_patterns():
    # 2^15 items -> blocks of 2^20 / 2^15 = 32 patterns: 70 patterns take blocks of 32, 32 and 6. Only
    # one item differs between A and B, so every pattern's |statistic| equals the observed one: p = 71/71.
    n = 1 << 14
    a = {"h": np.zeros(n), "l": np.zeros(n)}
    b = {"h": np.zeros(n), "l": np.zeros(n)}
    b["h"][0] = 1.0
    res = gap_change(a, b, gap=("h", "l"), n_boot=1, n_perm=70, seed=0)
    assert res.delta == pytest.approx(1.0 / n) and res.p_value == 1.0


def test_gap_change_of_models_constant_within_each_group():
    # Every group constant for each model: no draws, the interval is the value (0.2 - 0) - (0.1 - 0) = 0.1
    # (resampled means of three 0.1s or 0.2s would be 1 ulp off it).
    res = gap_change({"h": [0.1] * 3, "l": [0.0, 0.0]}, {"h": [0.2] * 3, "l": [0.0, 0.0]}, gap=("h", "l"),
                     n_boot=50, n_perm=50)
    assert (res.delta, res.ci_low, res.ci_high, res.n) == (0.1, 0.1, 0.1, 5)
    with pytest.raises(ValueError, match="^n_boot must be at least 1, got 0$"):
        gap_change({"h": [0.1], "l": [0.0]}, {"h": [0.2], "l": [0.0]}, n_boot=0)


def test_gap_change_degenerate_results_name_the_test():
    same = {"x": [0.3, 0.7], "y": [1.0, 0.0]}
    assert gap_change(same, same, gap=("x", "y")).test == "paired label-swap permutation"
    empty = gap_change({"x": [np.nan], "y": [1.0]}, {"x": [1.0], "y": [0.0]}, gap=("x", "y"))
    assert empty.test == "paired label-swap permutation" and empty.n == 1 and math.isnan(empty.p_value)
    with pytest.raises(ValueError, match=r"^gap must name two different groups, got 'x' twice$"):
        gap_change(same, same, gap=("x", "x"))


def test_label_swap_p_rejects_zero_permutations():
    with pytest.raises(ValueError, match="^n_perm must be at least 1, got 0$"):
        _label_swap_p([np.array([0.0])], [np.array([1.0])], _pair_stat, n_perm=0, rng=np.random.default_rng(0))
