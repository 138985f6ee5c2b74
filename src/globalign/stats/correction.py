"""Multiple-comparison correction for a family of p-values from one table."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["holm"]


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni step-down adjusted p-values, in the input order.

    With the m non-NaN p-values sorted ascending, p_(1) <= ... <= p_(m), the
    adjusted value of p_(i) is min(1, max_{j <= i} (m - j + 1) p_(j)). This is
    statsmodels' ``multipletests(method="holm")``. Promises: every adjusted
    value is >= its raw value and <= 1; adjusted values keep the order of the
    raw ones (ties stay tied); NaN inputs come back NaN and do not count toward
    m. Raises ValueError for values outside [0, 1].
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p_values must be one-dimensional, got shape {p.shape}")
    valid = ~np.isnan(p)
    if np.any((p[valid] < 0.0) | (p[valid] > 1.0)):
        raise ValueError("p-values must lie in [0, 1]")

    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(valid)
    m = idx.size
    if m == 0:
        return out.tolist()
    order = idx[np.argsort(p[idx], kind="stable")]
    scaled = p[order] * np.arange(m, 0, -1)
    # The running max is what makes the procedure step-down: once a hypothesis
    # is kept, no larger p-value may be rejected, so its bound carries forward.
    out[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return out.tolist()
