"""One comparison of two backends' (or two paths') continuation scores, shared by the equivalence tests."""

from __future__ import annotations


def assert_same_scores(got, want, tolerance: float, *, per_token: bool = False) -> float:
    """Same candidates, token counts and merge flags; NLL within `tolerance` (per candidate, or per token with
    `per_token`) wherever a candidate has tokens. Returns the largest difference."""
    worst = 0.0
    for row_got, row_want in zip(got, want, strict=True):
        for a, b in zip(row_got, row_want, strict=True):
            assert (a.n_tokens, a.boundary_merge) == (b.n_tokens, b.boundary_merge)
            if a.n_tokens:
                worst = max(worst, abs(a.nll_mean - b.nll_mean) if per_token else abs(a.nll_sum - b.nll_sum))
    assert worst < tolerance, worst
    return worst
