"""Accuracy gaps between groups (dialects) and how alignment changes them.

Three quantities, all over per-item scores (0/1 correct, or any float) held
per group:

* :func:`group_gap` - mean(high) - mean(low) for two named groups;
* :func:`range_gap` - best-minus-worst group mean across all groups;
* :func:`gap_change` - gap(B) - gap(A) for two models scored on the same items.

Intervals come from a *stratified* percentile bootstrap: every resample draws
each group's items with replacement from that group alone, so group sizes stay
fixed, as they are in the study design.

Resampling contract (the same for all three functions, so a loop written by
hand reproduces the draws): the bootstrap generator is
``numpy.random.default_rng(seed)``. The groups used are put in a fixed order
(``(high, low)`` for a two-group gap, sorted names otherwise) and their kept
items concatenated, N in all. Resample r takes the next N uniforms
``u = rng.random(N)``; the uniform in position j of group g's slot (the slot
of length n_g starting at g's offset) picks item ``floor(u[j] * n_g)`` of
group g. Blocks of resamples draw ``rng.random((rows, N))``, which yields the
same numbers as ``rows`` successive ``rng.random(N)`` calls, so results do not
depend on the block size. When every group is constant (each model's scores,
for :func:`gap_change`) no draws are made and the interval is the value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .intervals import Estimate, as_vector, check_confidence, rows_per_chunk
from .paired import PairedComparison, _streams, _tolerance

__all__ = ["LABEL_SWAP_TEST", "RangeGap", "gap_change", "group_gap", "range_gap"]

LABEL_SWAP_TEST = "paired label-swap permutation"
_NAN = float("nan")

# A statistic maps group means, shape (..., G), to one value per row, shape (...).
_Statistic = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class RangeGap:
    """Best-minus-worst group mean: ``value = mean(best) - mean(worst)`` with its CI and item count."""

    best: str
    worst: str
    value: float
    ci_low: float
    ci_high: float
    n: int


# ---------------------------------------------------------------- helpers


def _pair_stat(means: np.ndarray) -> np.ndarray:
    """Gap of the first group over the second (groups ordered (high, low))."""
    return means[..., 0] - means[..., 1]


def _range_stat(means: np.ndarray) -> np.ndarray:
    """Largest minus smallest group mean."""
    return means.max(axis=-1) - means.min(axis=-1)


def _group_vector(values_by_group: Mapping[str, ArrayLike], group: str, name: str) -> np.ndarray:
    """One group's scores as a 1-D float array (NaN kept); ValueError for an unknown group."""
    if group not in values_by_group:
        raise ValueError(f"unknown group {group!r}: {name} has {sorted(values_by_group)}")
    return as_vector(values_by_group[group], f"{name}[{group!r}]")


def _drop_nan(arr: np.ndarray) -> np.ndarray:
    return arr[~np.isnan(arr)]


def _mean(arr: np.ndarray) -> float:
    """Mean of a non-empty array; exactly v for constant input (summation can be 1 ulp off)."""
    return float(arr[0]) if arr.min() == arr.max() else float(arr.mean())


def _check_counts(n_boot: int, confidence: float) -> None:
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    check_confidence(confidence)


def _stratified_bootstrap(
    groups: Sequence[np.ndarray],
    stat: _Statistic,
    observed: float,
    *,
    n_boot: int,
    confidence: float,
    rng: np.random.Generator,
) -> tuple[float, float]:
    """Percentile interval of ``stat`` over stratified resamples (see the module's contract).

    ``groups[g]`` has shape (m, n_g): m aligned score series (1 for a plain gap,
    2 for a paired A/B one) on group g's items; one index draw serves all m
    series. ``stat`` gets the resampled group means, shape (m, rows, G), and
    returns one value per resample. Memory per block is a small multiple of
    CHUNK_ELEMENTS whatever N and n_boot are.
    """
    if all(float(np.ptp(g, axis=-1).max()) == 0.0 for g in groups):
        return observed, observed
    sizes = [g.shape[-1] for g in groups]
    bounds = np.cumsum([0, *sizes])
    total, m = int(bounds[-1]), groups[0].shape[0]
    stats = np.empty(n_boot, dtype=np.float64)
    step = rows_per_chunk(total)
    for start in range(0, n_boot, step):
        rows = min(step, n_boot - start)
        u = rng.random((rows, total))
        means = np.empty((m, rows, len(groups)), dtype=np.float64)
        for k, (g, n_g) in enumerate(zip(groups, sizes)):
            idx = (u[:, bounds[k] : bounds[k + 1]] * n_g).astype(np.intp)
            np.minimum(idx, n_g - 1, out=idx)  # u < 1, so only a rounding guard
            for series in range(m):  # 1-D gathers are several times faster than g[:, idx]
                means[series, :, k] = g[series][idx].mean(axis=-1)
        stats[start : start + rows] = stat(means)
    alpha = 1.0 - confidence
    q_low, q_high = np.quantile(stats, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(q_low), float(q_high)


def _label_swap_p(
    a_groups: Sequence[np.ndarray],
    b_groups: Sequence[np.ndarray],
    gap: _Statistic,
    *,
    n_perm: int,
    rng: np.random.Generator,
) -> float:
    """Two-sided Monte Carlo p for gap(B) - gap(A) under per-item exchangeability of A and B.

    Each permutation swaps every item's (a, b) pair independently with
    probability 1/2. With d = b - a and s in {0, 1} the swap indicator, group
    g's means become mean(a_g) + S_g and mean(b_g) - S_g with
    S_g = sum(s * d) / n_g, so a block costs one (rows x N) 0/1 draw and a
    product with d. p = (1 + #{|stat| >= |obs| - tol}) / (1 + n_perm), never 0.
    """
    if n_perm < 1:
        raise ValueError(f"n_perm must be at least 1, got {n_perm}")
    mean_a = np.array([g.mean() for g in a_groups])
    mean_b = np.array([g.mean() for g in b_groups])
    observed = float(gap(mean_b) - gap(mean_a))
    everything = np.concatenate([*a_groups, *b_groups])
    threshold = abs(observed) - _tolerance(everything)

    sizes = [g.size for g in a_groups]
    bounds = np.cumsum([0, *sizes])
    total = int(bounds[-1])
    # weights[i, k] = d_i / n_k for item i of group k, else 0: swaps @ weights = S.
    weights = np.zeros((total, len(sizes)), dtype=np.float64)
    for k, (a, b) in enumerate(zip(a_groups, b_groups)):
        weights[bounds[k] : bounds[k + 1], k] = (b - a) / a.size

    hits = 0
    step = rows_per_chunk(total)
    for start in range(0, n_perm, step):
        rows = min(step, n_perm - start)
        swaps = rng.integers(0, 2, size=(rows, total), dtype=np.int8)
        shift = swaps @ weights
        stats = gap(mean_b - shift) - gap(mean_a + shift)
        hits += int(np.count_nonzero(np.abs(stats) >= threshold))
    return (1.0 + hits) / (1.0 + n_perm)


# ---------------------------------------------------------------- public API


def group_gap(
    values_by_group: Mapping[str, ArrayLike],
    high: str,
    low: str,
    *,
    n_boot: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Gap mean(high) - mean(low) with a stratified percentile-bootstrap CI.

    NaN scores are dropped; ``n`` counts the items kept in the two groups
    together. If either group is then empty, value and CI are NaN (``n`` still
    counts the other group's items). Each resample draws both groups' items
    with replacement, each group from itself, and takes the difference of
    means. Promises: the interval lies within
    ``[min(high) - max(low), max(high) - min(low)]``; two constant groups give
    a zero-width interval at the value; deterministic given ``seed``, with the
    draws of the module's resampling contract (group order ``(high, low)``).
    Groups other than ``high`` and ``low`` are ignored. ValueError if
    ``high == low`` or either is not a key of ``values_by_group``.
    """
    _check_counts(n_boot, confidence)
    if high == low:
        raise ValueError(f"high and low must be different groups, got {high!r} twice")
    hi = _drop_nan(_group_vector(values_by_group, high, "values_by_group"))
    lo = _drop_nan(_group_vector(values_by_group, low, "values_by_group"))
    n = int(hi.size + lo.size)
    if hi.size == 0 or lo.size == 0:
        return Estimate(_NAN, _NAN, _NAN, n)
    value = _mean(hi) - _mean(lo)
    low_ci, high_ci = _stratified_bootstrap(
        [hi[None, :], lo[None, :]],
        lambda means: _pair_stat(means[0]),
        value,
        n_boot=n_boot,
        confidence=confidence,
        rng=np.random.default_rng(seed),
    )
    floor, ceiling = float(hi.min() - lo.max()), float(hi.max() - lo.min())
    return Estimate(value, float(np.clip(low_ci, floor, ceiling)), float(np.clip(high_ci, floor, ceiling)), n)


def range_gap(
    values_by_group: Mapping[str, ArrayLike],
    *,
    n_boot: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> RangeGap:
    """Best-minus-worst gap across all groups, max(group means) - min(group means), with a CI.

    NaN scores are dropped and groups left empty are left out; ``n`` counts
    the items kept. ValueError unless at least two groups remain.

    ``best`` and ``worst`` name the groups with the highest and lowest mean.
    Ties (means equal as floats) go to the group whose name sorts first; the
    worst group is chosen among the groups other than ``best``, so with all
    means equal ``best`` is the first name, ``worst`` the second and the value 0.

    CI: stratified percentile bootstrap (group order: sorted names) in which
    every resample recomputes max - min over the groups, so the best and
    worst groups may change from resample to resample. The range of noisy
    means is biased upward in small samples: with groups that truly do not
    differ the bootstrap ranges sit above 0 and the interval can even exclude
    the observed value. The interval lies within ``[0, max - min of all
    scores]``; deterministic given ``seed``.
    """
    _check_counts(n_boot, confidence)
    kept = {g: _drop_nan(as_vector(values_by_group[g], f"values_by_group[{g!r}]")) for g in values_by_group}
    names = sorted(g for g, arr in kept.items() if arr.size)
    if len(names) < 2:
        raise ValueError(f"range_gap needs at least two non-empty groups, got {names}")
    arrays = [kept[g] for g in names]
    means = [_mean(arr) for arr in arrays]
    best_k = int(np.argmax(means))  # argmax/argmin return the first of tied entries
    others = [k for k in range(len(names)) if k != best_k]
    worst_k = others[int(np.argmin([means[k] for k in others]))]
    value = means[best_k] - means[worst_k]
    low_ci, high_ci = _stratified_bootstrap(
        [arr[None, :] for arr in arrays],
        lambda m: _range_stat(m[0]),
        value,
        n_boot=n_boot,
        confidence=confidence,
        rng=np.random.default_rng(seed),
    )
    spread = float(max(arr.max() for arr in arrays) - min(arr.min() for arr in arrays))
    n = int(sum(arr.size for arr in arrays))
    return RangeGap(
        names[best_k],
        names[worst_k],
        value,
        float(np.clip(low_ci, 0.0, spread)),
        float(np.clip(high_ci, 0.0, spread)),
        n,
    )


def gap_change(
    a_by_group: Mapping[str, ArrayLike],
    b_by_group: Mapping[str, ArrayLike],
    *,
    gap: tuple[str, str] | None = None,
    n_boot: int = 10_000,
    n_perm: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedComparison:
    """Change in a group gap from model A (base) to model B (aligned): delta = gap(B) - gap(A).

    ``a_by_group`` and ``b_by_group`` score the same items: they have the same
    groups, and for every group the two arrays are aligned and of equal length
    (ValueError otherwise). Pairs with a NaN on either side are dropped.

    ``gap=(high, low)`` measures mean(high) - mean(low) as :func:`group_gap`
    does, over those two groups only; ``n`` counts their kept pairs, and if
    either has none every float field is NaN. ``gap=None`` measures the range
    max - min over all groups, as :func:`range_gap` does (groups with no kept
    pairs are left out; ValueError unless two remain).

    CI: paired stratified percentile bootstrap - the same item indices, drawn
    within each group by the module's resampling contract, are used for A and
    B, and the statistic is recomputed. p: two-sided paired label-swap
    permutation test; under H0 (A and B exchangeable on each item) each
    item's (a, b) pair is swapped with probability 1/2, independently across
    all items, and p = (1 + #{|stat| >= |delta|}) / (1 + n_perm), with the
    same rounding slack as :func:`paired_difference`. The bootstrap uses
    ``default_rng(seed)`` and the permutation an independent child stream, so
    changing ``n_boot`` never moves p. All pairs identical -> delta 0, CI
    [0, 0], p 1.0. Deterministic given ``seed``.
    """
    _check_counts(n_boot, confidence)
    if n_perm < 1:
        raise ValueError(f"n_perm must be at least 1, got {n_perm}")
    if set(a_by_group) != set(b_by_group):
        raise ValueError(
            f"a and b must score the same groups: got {sorted(a_by_group)} and {sorted(b_by_group)}"
        )
    pairs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for g in sorted(a_by_group):
        x, y = as_vector(a_by_group[g], f"a_by_group[{g!r}]"), as_vector(b_by_group[g], f"b_by_group[{g!r}]")
        if x.size != y.size:
            raise ValueError(
                f"a and b must score the same items: group {g!r} has lengths {x.size} and {y.size}"
            )
        keep = ~(np.isnan(x) | np.isnan(y))
        pairs[g] = (x[keep], y[keep])

    stat: _Statistic
    if gap is None:
        names = [g for g in sorted(pairs) if pairs[g][0].size]
        if len(names) < 2:
            raise ValueError(f"gap_change with gap=None needs at least two non-empty groups, got {names}")
        stat = _range_stat
    else:
        high, low = gap
        if high == low:
            raise ValueError(f"gap must name two different groups, got {high!r} twice")
        for g in gap:
            if g not in pairs:
                raise ValueError(f"unknown group {g!r}: the inputs have {sorted(pairs)}")
        names = [high, low]
        stat = _pair_stat

    a_groups = [pairs[g][0] for g in names]
    b_groups = [pairs[g][1] for g in names]
    n = int(sum(a.size for a in a_groups))
    if any(a.size == 0 for a in a_groups):
        return PairedComparison(_NAN, _NAN, _NAN, _NAN, n, LABEL_SWAP_TEST)
    if all(np.array_equal(a, b) for a, b in zip(a_groups, b_groups)):
        return PairedComparison(0.0, 0.0, 0.0, 1.0, n, LABEL_SWAP_TEST)

    delta = float(stat(np.array([_mean(b) for b in b_groups])) - stat(np.array([_mean(a) for a in a_groups])))
    boot_rng, perm_rng = _streams(seed)
    low_ci, high_ci = _stratified_bootstrap(
        [np.stack([a, b]) for a, b in zip(a_groups, b_groups)],
        lambda means: stat(means[1]) - stat(means[0]),
        delta,
        n_boot=n_boot,
        confidence=confidence,
        rng=boot_rng,
    )
    p = _label_swap_p(a_groups, b_groups, stat, n_perm=n_perm, rng=perm_rng)
    return PairedComparison(delta, low_ci, high_ci, p, n, f"{LABEL_SWAP_TEST} (Monte Carlo, {n_perm})")
