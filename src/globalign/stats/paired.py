"""Paired comparisons of two models scored on the same items.

Pairing matters: the item-to-item spread is shared by both models, so testing
the per-item differences is far more sensitive than comparing two means.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import binomtest

from .intervals import as_vector, bootstrap_ci, check_confidence, rows_per_chunk

__all__ = ["EXACT_MAX_N", "PairedComparison", "mcnemar", "paired_difference"]

# Up to this many pairs the sign-flip null is enumerated exactly (2^16 patterns,
# about a million multiply-adds); beyond it Monte Carlo is cheaper and close enough.
EXACT_MAX_N = 16
PERMUTATION_TEST = "paired sign-flip permutation"
MCNEMAR_TEST = "McNemar exact"
_NAN = float("nan")


@dataclass(frozen=True)
class PairedComparison:
    """Effect of going from model A to model B: delta = mean(B - A) over the kept pairs."""

    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int
    test: str


def _kept_pairs(a: ArrayLike, b: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs as 1-D float arrays of equal length, minus the pairs where either is NaN."""
    x, y = as_vector(a, "a"), as_vector(b, "b")
    if x.size != y.size:
        raise ValueError(f"a and b must score the same items: got lengths {x.size} and {y.size}")
    keep = ~(np.isnan(x) | np.isnan(y))
    return x[keep], y[keep]


def _tolerance(d: np.ndarray) -> float:
    """Slack for "as extreme as observed": 1e-12, scaled up for differences larger than 1.

    Means of the same numbers summed in another order differ by rounding, which
    grows with their magnitude; an absolute 1e-12 would miss ties at |d| ~ 1e3.
    """
    return 1e-12 * max(1.0, float(np.abs(d).max()))


def sign_flip_p(d: np.ndarray, *, n_perm: int, rng: np.random.Generator) -> tuple[float, bool]:
    """Two-sided sign-flip permutation p-value for mean(d) == 0; returns (p, exact).

    Statistic |mean(d)|. For ``len(d) <= EXACT_MAX_N`` every sign pattern is
    counted (p is exact, at least 2 / 2^n); otherwise ``n_perm`` random patterns
    give p = (1 + #{|stat| >= |obs|}) / (1 + n_perm), which is never 0.
    """
    n = d.size
    threshold = abs(float(d.mean())) - _tolerance(d)
    if n <= EXACT_MAX_N:
        # Patterns s and -s give the same |mean|, so fixing the last sign to +
        # enumerates 2^(n-1) patterns and yields the same fraction as all 2^n.
        codes = np.arange(1 << (n - 1), dtype=np.int64)[:, None]
        bits = (codes >> np.arange(n, dtype=np.int64)) & 1
        stats = np.abs((1 - 2 * bits) @ d) / n
        return float(np.count_nonzero(stats >= threshold)) / float(1 << (n - 1)), True

    if n_perm < 1:
        raise ValueError(f"n_perm must be at least 1, got {n_perm}")
    hits = 0
    step = rows_per_chunk(n)  # bounded memory, as for the bootstrap
    for start in range(0, n_perm, step):
        rows = min(step, n_perm - start)
        signs = rng.integers(0, 2, size=(rows, n), dtype=np.int8) * 2 - 1
        hits += int(np.count_nonzero(np.abs(signs @ d) / n >= threshold))
    return (1.0 + hits) / (1.0 + n_perm), False


def _streams(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Bootstrap and permutation generators for one seed.

    The bootstrap uses ``default_rng(seed)`` exactly as ``mean_ci`` does, so the
    paired CI equals ``mean_ci(b - a, seed=seed)``'s; the permutation stream is
    an independent child, so changing ``n_boot`` never moves the p-value.
    """
    return np.random.default_rng(seed), np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])


def paired_difference(
    a: ArrayLike,
    b: ArrayLike,
    *,
    n_boot: int = 10_000,
    n_perm: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedComparison:
    """Mean per-item difference B - A with a paired bootstrap CI and a sign-flip permutation p.

    ``a`` and ``b`` hold one value per item for the same items, in the same
    order (ValueError if their lengths differ). Pairs with a NaN on either side
    are dropped; ``n`` counts the pairs kept. The CI resamples items (so it is
    the percentile bootstrap of the differences); the p-value is two-sided.
    No pairs -> NaN fields; all differences zero -> delta 0, CI [0, 0], p 1.
    Deterministic given ``seed``.
    """
    check_confidence(confidence)
    x, y = _kept_pairs(a, b)
    d = y - x
    n = int(d.size)
    if n == 0:
        return PairedComparison(_NAN, _NAN, _NAN, _NAN, 0, PERMUTATION_TEST)
    if not np.any(d):
        return PairedComparison(0.0, 0.0, 0.0, 1.0, n, PERMUTATION_TEST)
    boot_rng, perm_rng = _streams(seed)
    low, high = bootstrap_ci(d, n_boot=n_boot, confidence=confidence, rng=boot_rng)
    p, exact = sign_flip_p(d, n_perm=n_perm, rng=perm_rng)
    test = f"{PERMUTATION_TEST} (exact)" if exact else f"{PERMUTATION_TEST} (Monte Carlo, {n_perm})"
    return PairedComparison(float(d.mean()), low, high, p, n, test)


def mcnemar(
    a_correct: ArrayLike,
    b_correct: ArrayLike,
    *,
    n_boot: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedComparison:
    """Paired comparison of binary outcomes (1/True = correct) of two models on the same items.

    delta = mean(b) - mean(a) over pairs where neither is NaN, with a paired
    bootstrap CI; p is the exact two-sided binomial test of the discordant
    pairs (A right/B wrong vs A wrong/B right) at 1/2, and 1.0 when there are
    none. Raises ValueError for lengths that differ or values other than 0/1.
    """
    check_confidence(confidence)
    x, y = _kept_pairs(a_correct, b_correct)
    if not (np.isin(x, (0.0, 1.0)).all() and np.isin(y, (0.0, 1.0)).all()):
        raise ValueError("mcnemar needs binary outcomes: every non-NaN value must be 0 or 1")
    n = int(x.size)
    if n == 0:
        return PairedComparison(_NAN, _NAN, _NAN, _NAN, 0, MCNEMAR_TEST)
    d = y - x
    b_only = int(np.count_nonzero(d > 0))
    discordant = b_only + int(np.count_nonzero(d < 0))
    if discordant == 0:
        return PairedComparison(0.0, 0.0, 0.0, 1.0, n, MCNEMAR_TEST)
    low, high = bootstrap_ci(d, n_boot=n_boot, confidence=confidence, rng=_streams(seed)[0])
    p = float(binomtest(b_only, discordant, 0.5, alternative="two-sided").pvalue)
    return PairedComparison(float(d.mean()), low, high, min(p, 1.0), n, MCNEMAR_TEST)
