"""Comparisons pair the two models' items by item id, not by the order their records arrive in.

The mean difference and n are the same however items are paired, so these tests check what pairing
decides: the paired bootstrap CI (the CI of the per-item differences) and the p-value. Model B's records
come in another order than model A's, and the values are not symmetric, so pairing by position gives
other differences; each test checks first that its input really tells the two pairings apart.
Expected p-values are counted by hand (binomial for McNemar, every sign pattern for the sign-flip test);
the CI is the percentile bootstrap of the by-id differences (`mean_ci`, tested on its own in test_stats.py).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from globalign.stats import mean_ci
from globalign.tasks import belebele, md3, tydiqa
from globalign.tasks.base import SampleRecord, StatsSettings, TaskSettings

SETTINGS = TaskSettings(stats=StatsSettings(n_boot=2000, n_perm=2000, seed=7))
IDS = ("q0", "q1", "q2", "q3", "q4", "q5")
# Binary outcomes: by id the differences are (0, 1, 1, 1, 0, 0): 3 discordant pairs, all "B right".
A_BINARY = (1, 0, 0, 0, 1, 0)
B_BINARY = (1, 1, 1, 1, 1, 0)
# Scores in [0, 1] (TyDi QA F1): by id the differences are (0.4, 0.1, 0, 0.8, -0.5, 0.5).
A_F1 = (0.2, 0.9, 0.4, 0.0, 1.0, 0.5)
B_F1 = (0.6, 1.0, 0.4, 0.8, 0.5, 1.0)


def _records(model: str, group: str, metric: str, values: tuple[float, ...], reverse: bool) -> list[SampleRecord]:
    rows = [SampleRecord("t", model, item, group, "", "", None, {metric: v}) for item, v in zip(IDS, values)]
    return rows[::-1] if reverse else rows


def _by_id(a: tuple[float, ...], b: tuple[float, ...]) -> np.ndarray:
    return np.array(b, dtype=float) - np.array(a, dtype=float)


def _by_position(a: tuple[float, ...], b: tuple[float, ...]) -> np.ndarray:
    """What a comparison that paired records in arrival order would see (B's records come reversed)."""
    return np.array(b[::-1], dtype=float) - np.array(a, dtype=float)


def _mcnemar_p_by_hand(d: np.ndarray) -> float:
    """Exact two-sided binomial test of the discordant pairs at 1/2: 2 * P(X <= min) capped at 1."""
    up, down = int((d > 0).sum()), int((d < 0).sum())
    n = up + down
    tail = sum(math.comb(n, k) for k in range(min(up, down) + 1)) / 2**n
    return min(1.0, 2 * tail)


def _sign_flip_p_by_hand(d: np.ndarray) -> float:
    """Share of all 2^n sign patterns whose |mean| reaches the observed |mean|."""
    observed = abs(d.mean())
    hits = sum(abs(np.dot(signs, d)) / d.size >= observed - 1e-12 for signs in itertools.product((1, -1), repeat=d.size))
    return hits / 2**d.size


def test_the_inputs_tell_the_two_pairings_apart() -> None:
    by_id, by_pos = _by_id(A_BINARY, B_BINARY), _by_position(A_BINARY, B_BINARY)
    assert by_id.mean() == by_pos.mean()  # the mean cannot tell them apart ...
    assert _mcnemar_p_by_hand(by_id) == 0.25 and _mcnemar_p_by_hand(by_pos) == 0.375  # ... the test can
    f1_id, f1_pos = _by_id(A_F1, B_F1), _by_position(A_F1, B_F1)
    assert f1_id.mean() == pytest.approx(f1_pos.mean())
    assert _sign_flip_p_by_hand(f1_id) != pytest.approx(_sign_flip_p_by_hand(f1_pos))
    assert mean_ci(f1_id, n_boot=2000, seed=7) != mean_ci(f1_pos, n_boot=2000, seed=7)


def _check_mcnemar_row(row, d: np.ndarray) -> None:
    ci = mean_ci(d, n_boot=SETTINGS.stats.n_boot, seed=SETTINGS.stats.seed)
    assert row.n == 6 and row.delta == pytest.approx(0.5)
    assert row.p_value == pytest.approx(_mcnemar_p_by_hand(d)) == pytest.approx(0.25)  # 3 of 3 one way: 2 / 2^3
    assert (row.ci_low, row.ci_high) == pytest.approx((ci.ci_low, ci.ci_high))


def test_md3_comparisons_pair_by_item_id() -> None:
    records = {"base": _records("base", "en_us", "generation_correct", A_BINARY, reverse=False),
               "aligned": _records("aligned", "en_us", "generation_correct", B_BINARY, reverse=True)}
    rows = {r.group: r for r in md3.dialect_comparisons(records, [("base", "aligned")], SETTINGS)
            if r.metric == "generation_accuracy"}
    assert set(rows) == {"all", "en_us"}
    for row in rows.values():
        _check_mcnemar_row(row, _by_id(A_BINARY, B_BINARY))


def test_belebele_comparisons_pair_by_item_id() -> None:
    records = {"base": _records("base", "sw", "correct", A_BINARY, reverse=False),
               "aligned": _records("aligned", "sw", "correct", B_BINARY, reverse=True)}
    rows = {r.group: r for r in belebele.language_comparisons(records, [("base", "aligned")], SETTINGS)}
    assert set(rows) == {"all", "sw"}
    for row in rows.values():
        _check_mcnemar_row(row, _by_id(A_BINARY, B_BINARY))


def test_tydiqa_comparisons_pair_by_item_id() -> None:
    records = {"base": _records("base", "fi", "f1", A_F1, reverse=False),
               "aligned": _records("aligned", "fi", "f1", B_F1, reverse=True)}
    rows = {r.group: r for r in tydiqa.language_comparisons(records, [("base", "aligned")], SETTINGS)}
    assert set(rows) == {"all", "fi"}
    d = _by_id(A_F1, B_F1)
    ci = mean_ci(d, n_boot=SETTINGS.stats.n_boot, seed=SETTINGS.stats.seed)
    for row in rows.values():
        assert row.metric == "f1" and row.n == 6 and row.delta == pytest.approx(d.mean())
        assert row.p_value == pytest.approx(_sign_flip_p_by_hand(d))  # n = 6: the test enumerates exactly
        assert (row.ci_low, row.ci_high) == pytest.approx((ci.ci_low, ci.ci_high))
