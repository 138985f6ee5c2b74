"""Country rankings from per-question scores (the reward-model axis): ranks, mean ranks with bootstrap
CIs over questions, win rates against a reference country, and Spearman correlations with their
p-values and question-bootstrap CIs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import rankdata, spearmanr

from .intervals import Estimate, check_confidence, rows_per_chunk

__all__ = ["SpearmanResult", "column_mean_cis", "order_spearman", "pair_spearman", "question_ranks", "spearman"]


def question_ranks(scores: ArrayLike, favourable_high: ArrayLike) -> np.ndarray:
    """(questions x countries) scores -> ranks, 1 = most favoured, ties averaged.

    Row q is ranked from its highest score when `favourable_high[q]` (a reward for a positive question)
    and from its lowest otherwise (a reward for a negative question). Scores must be finite.
    """
    s = np.asarray(scores, dtype=np.float64)
    high = np.asarray(favourable_high, dtype=bool)
    if s.ndim != 2 or high.shape != (s.shape[0],):
        raise ValueError(f"scores must be (questions, countries) and favourable_high one flag per question; "
                         f"got {s.shape} and {high.shape}")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite (a NaN or inf would get an arbitrary rank)")
    signed = np.where(high[:, None], -s, s)
    return rankdata(signed, method="average", axis=1)


def column_mean_cis(values: np.ndarray, *, n_boot: int = 10_000, confidence: float = 0.95, seed: int = 0) -> list[Estimate]:
    """Each column's mean over the rows (e.g. a country's mean rank over questions), with a
    percentile bootstrap CI that resamples rows (whole questions, the same for every column).
    Values must be finite."""
    check_confidence(confidence)
    n_q, n_c = values.shape
    means = values.mean(axis=0)
    boot = _bootstrap_column_means(values, n_boot, seed)
    alpha = 1.0 - confidence
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2], axis=0)
    return [Estimate(float(means[c]), float(low[c]), float(high[c]), n_q) for c in range(n_c)]


def _bootstrap_column_means(values: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot x columns) means of row-resampled `values`.

    Each resample is a vector of multinomial counts over the rows, so its column means are one matrix
    product (counts @ values / n) instead of a gather of n x columns values: 10,000 resamples of
    554 questions x 362 columns take a fraction of a second. The same seed draws the same counts
    whatever the column count, so two models resampled with one seed are resampled on the same
    questions (pair_spearman relies on it). Blocks bound the memory of the counts matrix."""
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    n = values.shape[0]
    uniform = np.full(n, 1.0 / n)
    out = np.empty((n_boot, values.shape[1]))
    step = rows_per_chunk(n)
    for start in range(0, n_boot, step):
        rows = min(step, n_boot - start)
        counts = rng.multinomial(n, uniform, size=rows).astype(np.float64)
        out[start : start + rows] = counts @ values / n
    return out


@dataclass(frozen=True)
class SpearmanResult:
    rho: float
    p_value: float
    ci_low: float
    ci_high: float
    n: int  # items correlated (countries)


def spearman(x: ArrayLike, y: ArrayLike) -> tuple[float, float]:
    """Spearman's rho and its two-sided p-value (scipy's)."""
    result = spearmanr(x, y)
    return float(result.statistic), float(result.pvalue)


def _rowwise_pearson(rows: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row with `y` (on ranks: Spearman's rho, ties averaged); NaN for a
    constant row."""
    xc = rows - rows.mean(axis=1, keepdims=True)
    yc = y - y.mean()
    denominator = np.sqrt((xc**2).sum(axis=1) * (yc**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return (xc @ yc) / denominator


def order_spearman(ranks: np.ndarray, columns: list[int], *, n_boot: int = 10_000, confidence: float = 0.95,
                   seed: int = 0) -> SpearmanResult:
    """Spearman between the mean ranks of `columns` (countries in a reference order, most favoured
    first) and their positions 1..k in that order; CI from resampling questions (rows)."""
    check_confidence(confidence)
    sub = ranks[:, columns]
    positions = np.arange(1, len(columns) + 1)
    rho, p = spearman(sub.mean(axis=0), positions)
    boot = _bootstrap_column_means(sub, n_boot, seed)
    rhos = _rowwise_pearson(rankdata(boot, method="average", axis=1), positions.astype(np.float64))
    alpha = 1.0 - confidence
    low, high = np.nanquantile(rhos, [alpha / 2, 1 - alpha / 2])
    return SpearmanResult(rho, p, float(low), float(high), len(columns))


def pair_spearman(ranks_a: np.ndarray, ranks_b: np.ndarray, *, n_boot: int = 10_000, confidence: float = 0.95,
                  seed: int = 0) -> SpearmanResult:
    """Spearman between two models' country mean ranks (same questions, same countries); the CI
    resamples questions, the same ones for both models."""
    check_confidence(confidence)
    if ranks_a.shape != ranks_b.shape:
        raise ValueError(f"both models must rank the same questions and countries: {ranks_a.shape} vs {ranks_b.shape}")
    rho, p = spearman(ranks_a.mean(axis=0), ranks_b.mean(axis=0))
    both = np.concatenate([ranks_a, ranks_b], axis=1)
    boot = _bootstrap_column_means(both, n_boot, seed)
    k = ranks_a.shape[1]
    ra = rankdata(boot[:, :k], method="average", axis=1)
    rb = rankdata(boot[:, k:], method="average", axis=1)
    ac, bc = ra - ra.mean(axis=1, keepdims=True), rb - rb.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        rhos = (ac * bc).sum(axis=1) / np.sqrt((ac**2).sum(axis=1) * (bc**2).sum(axis=1))
    alpha = 1.0 - confidence
    low, high = np.nanquantile(rhos, [alpha / 2, 1 - alpha / 2])
    return SpearmanResult(rho, p, float(low), float(high), k)
