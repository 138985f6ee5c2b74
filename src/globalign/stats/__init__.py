"""Statistics behind every globalign table: bootstrap intervals, paired tests, Holm correction, group gaps."""

from .correction import holm
from .gaps import RangeGap, gap_change, group_gap, range_gap
from .intervals import Estimate, mean_ci
from .paired import PairedComparison, mcnemar, paired_difference

__all__ = [
    "Estimate",
    "PairedComparison",
    "RangeGap",
    "gap_change",
    "group_gap",
    "holm",
    "mcnemar",
    "mean_ci",
    "paired_difference",
    "range_gap",
]
